"""Runs written by an earlier medml (no format_version in their records) stay readable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from medml_cli.data.sources.uci_heart import FEATURES, load_frame
from medml_cli.runs.records import read_card, read_metrics, read_status

OLD_RUNS = Path(__file__).parent / "data" / "runs_v1"


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    shutil.copytree(OLD_RUNS, runs, ignore=shutil.ignore_patterns("README.md"))
    return next(p for p in runs.iterdir() if p.is_dir())


def test_old_records_read_as_version_1(old_run):
    assert "format_version" not in json.loads((old_run / "metrics.json").read_text())
    assert read_metrics(old_run).format_version == 1
    assert read_status(old_run).format_version == 1
    assert read_card(old_run / "model").format_version == 1
    assert read_metrics(old_run).metrics["auroc"] == pytest.approx(0.9169591156343219)


def test_old_run_lists_evaluates_and_predicts(cli, old_run, tmp_path):
    listed = cli("runs", "list", "--runs-dir", old_run.parent, "--json")
    assert listed.exit_code == 0, listed.stderr
    assert '"completed"' in listed.stdout and "0.9169" in listed.stdout
    evaluated = cli("evaluate", old_run, "--fail-under", "auroc=0.9")
    assert evaluated.exit_code == 0, evaluated.stderr
    again = json.loads((Path(evaluated.last_line) / "metrics.json").read_text())
    old = json.loads((old_run / "metrics.json").read_text())
    assert again["metrics"] == pytest.approx(old["metrics"])
    assert again["format_version"] == 2  # what the current version writes
    patients = tmp_path / "p.csv"
    load_frame(["hungarian"]).head(4)[["patient_id", *FEATURES]].to_csv(patients, index=False)
    out = tmp_path / "out.csv"
    predicted = cli("predict", old_run, "--input", patients, "--output", out)
    assert predicted.exit_code == 0, predicted.stderr
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["id", "probability", "predicted_class", "predicted_label",
                                   "warnings"]
