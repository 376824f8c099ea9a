"""`medml predict --output` never loses a file: not the input, not a run's records, not an
existing file (unless --overwrite); pipes and symlinks are written through."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import CONFIGS, run_cli


@pytest.fixture(scope="module")
def ridge_run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("out") / "runs"
    result = run_cli("train", CONFIGS / "diabetes_ridge.yaml", "--runs-dir", runs,
                     "--set", "evaluation.bootstrap=0", "--set", "evaluation.plots=false")
    assert result.exit_code == 0, result.stderr
    return Path(result.last_line)


@pytest.fixture
def patients(tmp_path) -> Path:
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame.head(20)
    path = tmp_path / "patients.csv"
    frame.rename(columns={"target": "progression"}).to_csv(path, index=False)
    return path


def predict(run: Path, source: Path, output: str | Path, *extra: str):
    return run_cli("predict", run, "--input", source, "--output", output, *extra)


def test_output_that_is_the_input_is_refused_and_the_input_kept(ridge_run, patients):
    before = patients.read_bytes()
    result = predict(ridge_run, patients, patients)
    assert result.exit_code == 2
    assert "is the input file" in result.stderr and "--overwrite" in result.stderr
    assert patients.read_bytes() == before
    # the same file reached through another spelling of the path
    other = patients.parent / "." / patients.name
    assert predict(ridge_run, patients, other).exit_code == 2
    assert patients.read_bytes() == before


def test_output_inside_a_run_folder_is_refused(ridge_run, patients):
    metrics = ridge_run / "metrics.json"
    before = metrics.read_bytes()
    for target in (metrics, ridge_run / "new.csv", ridge_run / "model" / "extra.csv"):
        result = predict(ridge_run, patients, target)
        assert result.exit_code == 2 and "inside the run or sweep folder" in result.stderr
    assert metrics.read_bytes() == before and not (ridge_run / "new.csv").exists()


def test_existing_file_needs_overwrite(ridge_run, patients, tmp_path):
    out = tmp_path / "predictions.csv"
    out.write_text("keep me\n")
    refused = predict(ridge_run, patients, out)
    assert refused.exit_code == 2 and "exists already" in refused.stderr
    assert out.read_text() == "keep me\n"
    replaced = predict(ridge_run, patients, out, "--overwrite")
    assert replaced.exit_code == 0, replaced.stderr
    assert list(pd.read_csv(out).columns)[:2] == ["id", "prediction"]


def test_symlink_is_written_through(ridge_run, patients, tmp_path):
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    assert predict(ridge_run, patients, link).exit_code == 2  # its target exists
    result = predict(ridge_run, patients, link, "--overwrite")
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and len(pd.read_csv(real)) == 20


def test_fifo_is_written_through_and_stays_a_fifo(ridge_run, patients, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    result = predict(ridge_run, patients, fifo)
    reader.join(timeout=60)
    assert result.exit_code == 0, result.stderr
    assert received and received[0].startswith("id,prediction")
    assert fifo.is_fifo()


def test_dash_means_stdout_and_folders_are_refused(ridge_run, patients, tmp_path):
    result = predict(ridge_run, patients, "-")
    assert result.exit_code == 0 and result.stdout.startswith("id,prediction")
    assert not Path("-").exists()
    folder = predict(ridge_run, patients, tmp_path)
    assert folder.exit_code == 2 and "is a folder" in folder.stderr
    missing = predict(ridge_run, patients, tmp_path / "nope" / "out.csv")
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
