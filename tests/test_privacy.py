"""Privacy: a run made from DICOM files carries pixel-derived results and the ids the user
chose (file names), never the identifying tags inside the files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.imaging.test_dicom_series import PHI, write_slice

pytestmark = pytest.mark.tensorflow


def test_dicom_run_records_no_patient_identifiers(tmp_path):
    rows = ["file,label"]
    for patient in range(6):
        folder = tmp_path / "series" / f"p{patient}"
        folder.mkdir(parents=True)
        for i in range(6):
            write_slice(folder / f"{i}.dcm", i, series_uid=f"1.2.3.{patient}")
            rows.append(f"p{patient}/{i}.dcm,{int(i >= 3)}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "exp.yaml").write_text(
        "task: lung-ct\n"
        "data: {type: dicom-series, root: series, labels: labels.csv, image_size: [16, 16]}\n"
        "split: {test_size: 0.34, val_size: 0.34}\n"
        "model: {type: cnn2d, filters: [4], dense_units: 4, epochs: 1}\n"
        "evaluation: {bootstrap: 50, explain: gradcam, explain_n: 2}\n")
    runs = tmp_path / "runs"
    result = run_cli("train", tmp_path / "exp.yaml", "--runs-dir", runs)
    assert result.exit_code == 0, result.stderr
    run = Path(result.last_line)
    checked = 0
    for path in run.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for secret in PHI:
                assert secret.encode() not in content, (secret, path)
            checked += 1
    assert checked > 10
    assert PHI[0] not in result.stdout + result.stderr
