"""A hospital that never measured a test is still scored, and loudly: only training may
refuse a feature with no values (issue 10, part 1)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from medml_cli.data.sources.uci_heart import load_frame
from tests.conftest import CONFIGS, run_cli

QUICK = ["--set", "evaluation.bootstrap=0", "--set", "evaluation.plots=false"]


@pytest.fixture(scope="module")
def cleveland_run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("missing") / "runs"
    result = run_cli("train", CONFIGS / "heart_disease_logreg.yaml", "--runs-dir", runs, *QUICK)
    assert result.exit_code == 0, result.stderr
    return Path(result.last_line)


def test_switzerland_without_cholesterol_is_scored_with_a_warning(cleveland_run):
    result = run_cli("evaluate", cleveland_run, "--set", "data.sites=[switzerland]")
    assert result.exit_code == 0, result.stderr
    median = load_frame(["cleveland"])["chol"].median()  # what the pipeline learnt
    assert "warning: feature 'chol' is missing in 123 of 123 rows (entirely)" in result.stderr
    assert f"training median {median:.4g}" in result.stderr
    folder = Path(result.last_line)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["n"]["samples"] == 123
    chol = next(m for m in metrics["missing_features"] if m["feature"] == "chol")
    assert chol["share"] == 1.0 and chol["replaced_by"] == [pytest.approx(median)]
    assert any("'chol'" in w for w in metrics["warnings"])
    # features missing in more than half of the Swiss rows are reported too, others are not
    swiss = load_frame(["switzerland"])
    expected = {c for c in ("age", "trestbps", "chol", "fbs", "thalach", "oldpeak", "ca")
                if swiss[c].isna().mean() > 0.5}
    assert expected <= {m["feature"] for m in metrics["missing_features"]}
    assert "age" not in {m["feature"] for m in metrics["missing_features"]}
    report = (folder / "report.md").read_text()
    assert "**Warning:** feature 'chol'" in report


def test_warning_shows_even_when_quiet_and_pooled_sites_still_work(cleveland_run):
    quiet = run_cli("--quiet", "evaluate", cleveland_run, "--set", "data.sites=[switzerland]")
    assert quiet.exit_code == 0 and "feature 'chol'" in quiet.stderr
    pooled = run_cli("evaluate", cleveland_run, "--set",
                     "data.sites=[hungarian,switzerland,va]", "--json")
    assert pooled.exit_code == 0, pooled.stderr
    payload = json.loads(pooled.stdout)
    assert payload["n"]["samples"] == 294 + 123 + 200
    assert payload["warnings"] and all("'chol'" not in w for w in payload["warnings"])


def test_predict_on_an_empty_column_equals_predict_on_the_training_median(cleveland_run,
                                                                          tmp_path):
    frame = load_frame(["hungarian"]).drop(columns=["disease", "num", "site"])
    median = load_frame(["cleveland"])["chol"].median()
    empty, filled = frame.copy(), frame.copy()
    empty["chol"] = None
    filled["chol"] = median
    empty.to_csv(tmp_path / "empty.csv", index=False)
    filled.to_csv(tmp_path / "filled.csv", index=False)
    a = run_cli("predict", cleveland_run, "--input", tmp_path / "empty.csv")
    b = run_cli("predict", cleveland_run, "--input", tmp_path / "filled.csv")
    assert a.exit_code == 0 and b.exit_code == 0, a.stderr + b.stderr
    assert "feature 'chol' is missing in 294 of 294 rows" in a.stderr
    assert "'chol'" not in b.stderr
    pa, pb = pd.read_csv(io.StringIO(a.stdout)), pd.read_csv(io.StringIO(b.stdout))
    pd.testing.assert_series_equal(pa["probability"], pb["probability"])


def test_training_still_refuses_a_feature_with_no_values(tmp_path):
    table = "a,b,y\n" + "".join(f"{i},,{i % 2}\n" for i in range(30))
    (tmp_path / "t.csv").write_text(table)
    (tmp_path / "exp.yaml").write_text("task: tabular-classification\n"
                                       "data: {type: csv, path: t.csv, target: y}\n")
    result = run_cli("train", tmp_path / "exp.yaml", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "no values at all" in result.stderr
    assert not (tmp_path / "runs").exists()
