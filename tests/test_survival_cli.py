"""Time-to-event runs end to end through the CLI: the shipped lung-cancer config, a user's
CSV coded dead/alive, evaluation with per-horizon gates, external data, prediction, and the
bad inputs the survival problem type refuses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import CONFIGS, run_cli

pytest.importorskip("sksurv", reason="scikit-survival is a medml dependency")


def _train(config, runs_dir, *extra) -> Path:
    result = run_cli("train", str(config), "--runs-dir", str(runs_dir), *extra)
    assert result.exit_code == 0, result.stderr
    return Path(result.last_line)


def cohort_csv(path: Path, n: int = 240, seed: int = 3) -> Path:
    """Exponential survival driven by age and stage, administrative censoring at 1500 days,
    event coded dead/alive."""
    rng = np.random.default_rng(seed)
    age = rng.normal(62, 9, n).round()
    stage = rng.choice(["I", "II", "III"], n)
    hazard = np.exp(0.04 * (age - 62) + np.select([stage == "II", stage == "III"], [0.5, 1.1],
                                                  0.0)) / 600
    event_time = rng.exponential(1 / hazard)
    censor_time = np.minimum(rng.uniform(200, 2500, n), 1500)
    time = np.maximum(np.minimum(event_time, censor_time).round(), 1)
    frame = pd.DataFrame({"mrn": [f"m{i:04d}" for i in range(n)], "age": age, "stage": stage,
                          "noise": rng.normal(size=n), "days": time,
                          "vital": np.where(event_time <= censor_time, "dead", "alive")})
    frame.to_csv(path, index=False)
    return path


def cohort_config(folder: Path, model: str = "{type: cox}", extra: str = "") -> Path:
    cohort_csv(folder / "cohort.csv")
    config = folder / "cohort.yaml"
    config.write_text(
        "name: cohort\nseed: 5\ntask: tabular-survival\n"
        "data: {type: csv, path: cohort.csv, time: days, event: vital, event_value: dead, "
        "time_unit: days, id_column: mrn}\n"
        f"model: {model}\nsplit: {{method: kfold, n_splits: 5}}\n"
        "evaluation: {bootstrap: 200" + extra + "}\n")
    return config


@pytest.fixture(scope="module")
def lung_run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("lung") / "runs"
    return _train(CONFIGS / "lung_cancer_survival_cox.yaml", runs,
                  "--set", "evaluation.bootstrap=200")


@pytest.fixture(scope="module")
def cohort_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cohort")
    return _train(cohort_config(folder), folder / "runs")


def test_shipped_lung_config_records_every_survival_metric(lung_run):
    metrics = json.loads((lung_run / "metrics.json").read_text())
    assert metrics["problem"] == "survival" and metrics["primary_metric"] == "c_index"
    horizons = metrics["survival"]["horizons"]
    assert len(horizons) == 3 and horizons == sorted(horizons)
    names = {"c_index", "c_index_uno", "integrated_brier"} | {
        f"{m}@{h:g}" for h in horizons for m in ("auroc", "brier", "calibration_slope")}
    assert names <= set(metrics["metrics"])
    for name in names:
        low, high = metrics["intervals"][name]
        assert low <= metrics["metrics"][name] <= high, name
    assert 0.65 < metrics["metrics"]["c_index"] < 0.78
    assert metrics["baseline"]["c_index"] == pytest.approx(0.5)
    assert metrics["n"] == {"samples": 137, "events": 128, "censored": 9}
    follow = metrics["survival"]["follow_up"]
    assert follow["events"] == 128 and follow["max_time"] == 999


def test_predictions_table_holds_outcome_and_curves(lung_run):
    frame = pd.read_csv(lung_run / "predictions.csv")
    metrics = json.loads((lung_run / "metrics.json").read_text())
    assert list(frame.columns[:4]) == ["id", "time", "event", "risk"]
    for h in metrics["survival"]["horizons"]:
        assert f"survival_at_{h:g}" in frame
    curves = frame.filter(like="survival_at_").filter(regex="^survival").to_numpy()
    assert np.all(np.diff(curves, axis=1) <= 1e-12)  # S(t) never increases in t
    assert sorted(frame["fold"].unique()) == [0, 1, 2, 3, 4]


def test_plots_report_and_card(lung_run):
    for name in ("km_by_risk_group.png", "time_dependent_auc.png",
                 "survival_calibration.png", "decision_curve.png"):
        assert (lung_run / "plots" / name).stat().st_size > 1000
    report = (lung_run / "report.md").read_text()
    for text in ("Outcome, censoring and follow-up", "Calibration at the horizons",
                 "Clinical utility (decision curves)", "reverse Kaplan", "c_index_uno"):
        assert text in report
    card = json.loads((lung_run / "model" / "card.json").read_text())
    assert card["problem"] == "survival" and card["survival"]["horizons"]
    calibration = pd.read_csv(lung_run / "survival_calibration.csv")
    assert {"horizon", "predicted", "observed", "observed_low", "observed_high"} <= set(
        calibration.columns)


def test_evaluate_rescoring_and_gates(lung_run):
    metrics = json.loads((lung_run / "metrics.json").read_text())
    h = f"{metrics['survival']['horizons'][1]:g}"
    passed = run_cli("evaluate", str(lung_run), "--fail-under", "c_index=0.65",
                     "--fail-under", f"auroc@{h}=0.6")
    assert passed.exit_code == 0, passed.stderr
    again = json.loads((Path(passed.last_line) / "metrics.json").read_text())
    assert again["metrics"]["c_index"] == pytest.approx(metrics["metrics"]["c_index"])
    failed = run_cli("evaluate", str(lung_run), "--fail-under", "c_index=0.95")
    assert failed.exit_code == 1
    lower = run_cli("evaluate", str(lung_run), "--fail-under", "integrated_brier=0.01")
    assert lower.exit_code == 1 and "lower is better" in lower.stderr + lower.stdout
    unknown = run_cli("evaluate", str(lung_run), "--fail-under", "auroc@12345=0.6")
    assert unknown.exit_code == 2 and f"auroc@{h}" in unknown.stderr


def test_predict_gives_risk_survival_and_median(lung_run, tmp_path):
    from medml_cli.data.sources.survival_builtin import survival_table

    rows = survival_table("veterans-lung-cancer").drop(columns=["survival_days", "dead"])
    rows.head(12).to_csv(tmp_path / "patients.csv", index=False)
    out = tmp_path / "risk.csv"
    result = run_cli("predict", str(lung_run), "--input", str(tmp_path / "patients.csv"),
                     "--output", str(out))
    assert result.exit_code == 0, result.stderr
    frame = pd.read_csv(out)
    horizons = json.loads((lung_run / "metrics.json").read_text())["survival"]["horizons"]
    assert list(frame.columns) == ["id", "risk", *[f"survival_at_{h:g}" for h in horizons],
                                   "median_survival", "warnings"]
    assert frame["id"].iloc[0] == "veterans-lung-cancer-001"
    surv = frame[[f"survival_at_{h:g}" for h in horizons]].to_numpy()
    assert np.all((surv >= 0) & (surv <= 1)) and np.all(np.diff(surv, axis=1) <= 0)
    # higher risk, lower survival: the two scores rank patients the same way
    assert np.corrcoef(frame["risk"], surv[:, 1])[0, 1] < -0.9


def test_user_csv_dead_alive_and_external_evaluation(cohort_run, tmp_path):
    metrics = json.loads((cohort_run / "metrics.json").read_text())
    assert metrics["metrics"]["c_index"] > 0.6  # age and stage drive the hazard
    external = cohort_csv(tmp_path / "other_site.csv", n=150, seed=11)
    result = run_cli("evaluate", str(cohort_run), "--data", str(external))
    assert result.exit_code == 0, result.stderr
    scored = json.loads((Path(result.last_line) / "metrics.json").read_text())
    assert scored["evaluation"] == "external" and scored["n"]["samples"] == 150
    assert scored["metrics"]["c_index"] > 0.6


def test_same_seed_same_metrics(cohort_run, tmp_path):
    again = _train(cohort_config(tmp_path), tmp_path / "runs")
    first = json.loads((cohort_run / "metrics.json").read_text())
    second = json.loads((again / "metrics.json").read_text())
    assert first["metrics"] == second["metrics"] and first["intervals"] == second["intervals"]


def test_horizon_beyond_follow_up_is_refused_before_a_run(tmp_path):
    config = cohort_config(tmp_path, extra=", horizons: [365, 5000]")
    result = run_cli("train", str(config), "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 2
    assert "evaluation.horizons: 5000" in result.stderr and "follow-up" in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_external_data_with_shorter_follow_up_is_refused(cohort_run, tmp_path):
    frame = pd.read_csv(cohort_csv(tmp_path / "short.csv", n=120, seed=2))
    frame["days"] = frame["days"].clip(upper=100)
    frame.to_csv(tmp_path / "short.csv", index=False)
    result = run_cli("evaluate", str(cohort_run), "--data", str(tmp_path / "short.csv"))
    assert result.exit_code == 2 and "beyond the follow-up" in result.stderr


def test_model_that_does_not_fit_survival_is_a_config_error(tmp_path):
    config = cohort_config(tmp_path, model="{type: random-forest}")
    result = run_cli("train", str(config), "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 2
    assert "random-survival-forest" in result.stderr and "cox" in result.stderr


def test_other_survival_models_train(tmp_path):
    for model in ("{type: random-survival-forest, n_estimators: 30}",
                  "{type: gradient-boosting-survival, n_estimators: 30}",
                  "{type: cox, l1_ratio: 0.5, alpha: 0.01}"):
        folder = tmp_path / model.split(",")[0].split(":")[1].strip()
        folder.mkdir()
        run = _train(cohort_config(folder, model=model, extra=", plots: false"),
                     folder / "runs", "--set", "evaluation.bootstrap=0")
        assert json.loads((run / "metrics.json").read_text())["metrics"]["c_index"] > 0.55


def test_subgroups_and_permutation_importance(tmp_path):
    config = cohort_config(tmp_path, extra=", subgroups: [stage, age_band], "
                                           "explain: permutation, importance_repeats: 2")
    run = _train(config, tmp_path / "runs")
    metrics = json.loads((run / "metrics.json").read_text())
    rows = {(r["variable"], str(r["subgroup"])): r for r in metrics["subgroups"]}
    assert {("stage", "I"), ("stage", "II"), ("stage", "III")} <= set(rows)
    for row in rows.values():
        assert row["events"] <= row["n"]
        if row["events"] >= 5:
            assert row["c_index_low"] <= row["c_index"] <= row["c_index_high"]
    assert sum(r["n"] for (v, _), r in rows.items() if v == "stage") == 240
    importance = {r["feature"]: r["importance_mean"]
                  for r in metrics["explanations"]["importance"]}
    # the hazard depends on age and stage, not on the noise column
    assert importance["age"] > importance["noise"] and importance["stage"] > importance["noise"]
    assert "Subgroups" in (run / "report.md").read_text()


def test_holdout_grouped_by_patient_and_runs_list(tmp_path):
    frame = pd.read_csv(cohort_csv(tmp_path / "cohort.csv"))
    frame["patient"] = [f"pt{i // 2}" for i in range(len(frame))]  # two rows per patient
    frame["mrn"] = [f"row{i}" for i in range(len(frame))]
    frame.to_csv(tmp_path / "cohort.csv", index=False)
    config = tmp_path / "grouped.yaml"
    config.write_text(
        "name: grouped\nseed: 1\ntask: tabular-survival\n"
        "data: {type: csv, path: cohort.csv, time: days, event: vital, event_value: dead, "
        "id_column: mrn, group_column: patient}\n"
        "split: {method: holdout, test_size: 0.3}\nevaluation: {bootstrap: 100}\n")
    run = _train(config, tmp_path / "runs")
    predictions = pd.read_csv(run / "predictions.csv")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n"]["patients"] == predictions["patient"].nunique()
    # every patient's two rows sit on the same side of the split
    assert (predictions.groupby("patient").size() == 2).all()
    again = run_cli("evaluate", str(run))
    assert again.exit_code == 0, again.stderr
    rescored = json.loads((Path(again.last_line) / "metrics.json").read_text())
    assert rescored["metrics"]["c_index"] == pytest.approx(metrics["metrics"]["c_index"])
    listing = run_cli("runs", "list", "--runs-dir", str(tmp_path / "runs"))
    assert listing.exit_code == 0 and "c_index" in listing.stdout


def test_evaluate_refuses_new_horizons(lung_run):
    result = run_cli("evaluate", str(lung_run), "--set", "evaluation.horizons=[30]")
    assert result.exit_code == 2 and "fixed when a survival run is trained" in result.stderr
