"""Clinical evaluation through real runs: intervals, thresholds, reports, external sites."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medml_cli.config.loader import validate_config_data
from medml_cli.evaluation.splits import make_folds
from medml_cli.runs.directory import RunDir
from medml_cli.workflows.train import fit_fold, load_dataset
from tests.conftest import CONFIGS, read_metrics

REPORT_SECTIONS = ["## Data", "## Split and model", "## Performance on held-out data",
                   "## Operating threshold", "## Calibration", "## Clinical utility",
                   "## Plots", "## TRIPOD+AI checklist"]


def train(cli, runs_dir, config, *extra) -> Path:
    result = cli("train", config, "--runs-dir", runs_dir, *extra)
    assert result.exit_code == 0, result.stderr
    return Path(result.last_line)


def test_run_has_intervals_calibration_plots_and_full_report(cli, runs_dir):
    run = train(cli, runs_dir, CONFIGS / "heart_disease_logreg.yaml")
    metrics = read_metrics(run)
    assert set(metrics["intervals"]) == set(metrics["metrics"])
    for name, (low, high) in metrics["intervals"].items():
        assert low <= metrics["metrics"][name] <= high, name
    assert metrics["bootstrap_resamples"] == 1000
    assert 0.5 < metrics["calibration"]["calibration_slope"] < 2
    for plot in ("roc.png", "precision_recall.png", "calibration.png", "confusion_matrix.png",
                 "decision_curve.png"):
        assert (run / "plots" / plot).stat().st_size > 1000, plot
    report = (run / "report.md").read_text()
    for section in REPORT_SECTIONS:
        assert section in report, section
    html = (run / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 5
    assert "src='plots/" not in html and 'src="plots/' not in html  # self-contained
    assert "TRIPOD+AI" in html and "SYNTHETIC" not in html
    curve = pd.read_csv(run / "decision_curve.csv")
    assert {"threshold", "model", "treat_all", "treat_none"} <= set(curve.columns)


def test_regression_run_has_residual_plots(cli, runs_dir):
    run = train(cli, runs_dir, CONFIGS / "diabetes_ridge.yaml")
    assert (run / "plots" / "predicted_vs_observed.png").exists()
    assert (run / "plots" / "residuals.png").exists()
    metrics = read_metrics(run)
    low, high = metrics["intervals"]["r2"]
    assert low < metrics["metrics"]["r2"] < high


def test_threshold_is_never_chosen_on_test_rows():
    cfg = validate_config_data({"task": "heart-disease", "model": {"type": "logistic-regression"},
                                "evaluation": {"threshold_method": "youden"}})
    dataset = load_dataset(cfg)
    y = dataset.y.to_numpy()
    train_idx, test_idx = make_folds(y, method="holdout", n_splits=5, test_size=0.3, seed=0,
                                     classify=True, stratify=True, groups=None)[0]
    run = RunDir(path=Path("."), name="t", runs_dir=Path("."), config_text="")
    first = fit_fold(cfg, dataset, train_idx, test_idx, run)
    # Scramble every test label: a threshold chosen on test data would move.
    dataset.y.iloc[test_idx] = np.random.default_rng(0).permutation(y[test_idx])
    dataset.y.iloc[test_idx[:20]] = 1 - dataset.y.iloc[test_idx[:20]]
    second = fit_fold(cfg, dataset, train_idx, test_idx, run)
    assert first.threshold == second.threshold
    assert first.metrics["accuracy"] != second.metrics["accuracy"]  # the test rows did change


def test_youden_threshold_is_stored_and_used_by_predict(cli, runs_dir, tmp_path):
    run = train(cli, runs_dir, CONFIGS / "heart_disease_logreg.yaml",
                "--set", "evaluation.threshold_method=youden")
    metrics = read_metrics(run)
    card = json.loads((run / "model" / "card.json").read_text())
    assert card["threshold"] == metrics["threshold"] != 0.5
    assert len({row["threshold"] for row in metrics["per_fold"]}) > 1  # one per fold
    from medml_cli.data.sources.uci_heart import FEATURES, load_frame

    frame = load_frame(["cleveland"])[["patient_id", *FEATURES]]
    frame.to_csv(tmp_path / "in.csv", index=False)
    result = cli("predict", run, "--input", tmp_path / "in.csv", "--output", tmp_path / "o.csv")
    assert result.exit_code == 0
    out = pd.read_csv(tmp_path / "o.csv")
    assert ((out["probability"] >= card["threshold"]) == out["predicted_class"].astype(bool)).all()


def test_sensitivity_target_and_recalibration(cli, runs_dir):
    run = train(cli, runs_dir, CONFIGS / "heart_disease_svm.yaml",
                "--set", "evaluation.threshold_method=sensitivity",
                "--set", "evaluation.threshold_target=0.9",
                "--set", "evaluation.recalibration=sigmoid",
                "--set", "evaluation.bootstrap=200")
    metrics = read_metrics(run)
    assert metrics["metrics"]["sensitivity"] > 0.8  # chosen on training folds, so near 0.9
    assert "Operating threshold" in (run / "report.md").read_text()


def test_subgroups_with_small_group_warning(cli, runs_dir):
    run = train(cli, runs_dir, CONFIGS / "heart_disease_logreg.yaml",
                "--set", "evaluation.subgroups=[sex, age_band]",
                "--set", "evaluation.min_subgroup_n=100")
    table = pd.read_csv(run / "subgroups.csv")
    assert set(table["variable"]) == {"sex", "age_band"}
    sex = table[table["variable"] == "sex"].set_index("subgroup")
    assert sex["n"].sum() == 303
    assert sex["warning"].fillna("").str.contains("too small").any()  # 97 women < 100


def test_unknown_subgroup_is_a_data_error(cli, runs_dir):
    result = cli("train", CONFIGS / "heart_disease_logreg.yaml", "--runs-dir", runs_dir,
                 "--set", "evaluation.subgroups=[sexx]")
    assert result.exit_code == 2 and "did you mean 'sex'" in result.stderr


def test_external_validation_config_end_to_end(cli, runs_dir):
    run = train(cli, runs_dir, CONFIGS / "heart_disease_external.yaml")
    assert (run / "importance.csv").exists()
    assert (run / "plots" / "permutation_importance.png").exists()
    result = cli("evaluate", run, "--data", CONFIGS / "data" / "heart_disease_other_sites.yaml",
                 "--json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    sites = pd.read_csv(Path(payload["evaluation_dir"]) / "sites.csv").set_index("site")
    assert list(sites.index) == ["hungarian", "switzerland", "va"]
    assert sites.loc["switzerland", "n"] == 123 and sites.loc["va", "events"] == 149
    assert (sites["auroc_low"] <= sites["auroc"]).all()
    report = (Path(payload["evaluation_dir"]) / "report.md").read_text()
    assert "External validation by site" in report and "Missing-data policy" in report


def test_gate_failure_names_value_and_ci(cli, runs_dir):
    run = train(cli, runs_dir, CONFIGS / "heart_disease_logreg.yaml")
    result = cli("evaluate", run, "--fail-under", "auroc=0.99", "--fail-under",
                 "sensitivity=0.5")
    assert result.exit_code == 1
    assert "auroc = 0.9" in result.stderr and "CI" in result.stderr
    assert "sensitivity" not in result.stderr.split("not met")[-1]  # that gate passed
    bad = cli("evaluate", run, "--fail-under", "aucroc=0.5")
    assert bad.exit_code == 2 and "did you mean 'auroc'" in bad.stderr


@pytest.mark.parametrize("n", [0])
def test_bootstrap_can_be_switched_off(cli, runs_dir, n):
    run = train(cli, runs_dir, CONFIGS / "diabetes_ridge.yaml",
                "--set", f"evaluation.bootstrap={n}")
    assert read_metrics(run)["intervals"] == {}
