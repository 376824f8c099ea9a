"""End to end through the real CLI: train, evaluate, predict, and what must be refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from medml_cli.data.sources.uci_heart import FEATURES, load_frame
from tests.conftest import CONFIGS, read_metrics, write_config

TABULAR_CONFIGS = sorted(
    p for p in CONFIGS.glob("*.yaml")
    if yaml.safe_load(p.read_text())["task"] in ("heart-disease", "diabetes")
)
RUN_FILES = ["config.yaml", "status.json", "metrics.json", "predictions.csv", "model",
             "environment.json", "log.txt", "report.md"]


def train(cli, config, runs_dir, *extra):
    result = cli("train", config, "--runs-dir", runs_dir, *extra)
    assert result.exit_code == 0, result.stderr
    run = Path(result.last_line)
    assert run.parent == runs_dir and run.is_dir()
    return run


def patients_csv(tmp_path: Path, n: int = 5) -> Path:
    frame = load_frame(["hungarian"]).head(n)
    path = tmp_path / "patients.csv"
    frame[["patient_id", *FEATURES]].to_csv(path, index=False)
    return path


@pytest.mark.parametrize("config", TABULAR_CONFIGS, ids=lambda p: p.stem)
def test_shipped_config_trains_evaluates_predicts(cli, runs_dir, tmp_path, config):
    # the tuned config as shipped runs 6 studies of 40 trials (3.5 min here, a fifth of the
    # suite); its files and commands are the same with fewer trials, and the full search is
    # measured by benchmarks/tuning_nested_cv.py
    extra = ("--set", "tune.trials=6") if config.stem == "heart_disease_tuned" else ()
    run = train(cli, config, runs_dir, *extra)
    for name in RUN_FILES:
        assert (run / name).exists(), name
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "completed"
    metrics = read_metrics(run)
    env = json.loads((run / "environment.json").read_text())
    assert env["data_sha256"] and env["packages"]["scikit-learn"]
    assert "python" in env
    predictions = pd.read_csv(run / "predictions.csv")
    assert len(predictions) == metrics["n"]["samples"]
    assert predictions["fold"].nunique() == metrics["split"]["folds"]
    assert metrics["split"]["folds"] == (4 if metrics["split"]["method"] == "leave-group-out"
                                         else 5)  # four hospitals, or 5-fold CV

    evaluation = cli("evaluate", run)
    assert evaluation.exit_code == 0, evaluation.stderr
    out = Path(evaluation.last_line)
    assert out.parent == run / "evaluations"
    again = json.loads((out / "metrics.json").read_text())
    assert again["metrics"] == pytest.approx(metrics["metrics"], nan_ok=True)

    if metrics["problem"] == "regression":
        from sklearn.datasets import load_diabetes

        frame = load_diabetes(scaled=False, as_frame=True).frame.head(4)
        inputs = tmp_path / "in.csv"
        frame.drop(columns="target").to_csv(inputs, index=False)
        expected_columns = ["id", "prediction", "warnings"]
    else:
        inputs = patients_csv(tmp_path)
        expected_columns = ["id", "probability", "predicted_class", "predicted_label",
                            "warnings"]
    output = tmp_path / "pred.csv"
    result = cli("predict", run, "--input", inputs, "--output", output)
    assert result.exit_code == 0, result.stderr
    predicted = pd.read_csv(output)
    assert list(predicted.columns) == expected_columns
    assert len(predicted) == len(pd.read_csv(inputs))


def test_heart_disease_metrics_beat_the_baseline(cli, runs_dir):
    metrics = read_metrics(train(cli, CONFIGS / "heart_disease_logreg.yaml", runs_dir))
    assert metrics["metrics"]["auroc"] >= 0.88
    assert metrics["baseline"]["auroc"] <= 0.55
    assert metrics["n"] == {"samples": 303, "events": 139, "non_events": 164}


def test_same_config_and_seed_give_identical_metrics(cli, runs_dir):
    first = train(cli, CONFIGS / "heart_disease_rf.yaml", runs_dir)
    second = train(cli, CONFIGS / "heart_disease_rf.yaml", runs_dir)
    assert first != second  # distinct run directories, even within one second
    a, b = read_metrics(first), read_metrics(second)
    a.pop("seconds"), b.pop("seconds")
    assert a == b
    assert (first / "predictions.csv").read_bytes() == (second / "predictions.csv").read_bytes()


def test_different_seed_changes_the_split(cli, runs_dir):
    a = read_metrics(train(cli, CONFIGS / "heart_disease_rf.yaml", runs_dir))
    b = read_metrics(train(cli, CONFIGS / "heart_disease_rf.yaml", runs_dir, "--set", "seed=1"))
    assert a["metrics"]["auroc"] != b["metrics"]["auroc"]


def test_json_output_and_name(cli, runs_dir):
    result = cli("train", CONFIGS / "diabetes_ridge.yaml", "--runs-dir", runs_dir,
                 "--name", "my-run", "--json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert "-my-run-" in Path(payload["run_dir"]).name
    assert payload["metrics"]["r2"] > 0.45


def test_holdout_split_reevaluates_with_the_saved_model(cli, runs_dir):
    run = train(cli, CONFIGS / "heart_disease_rf.yaml", runs_dir,
                "--set", "split.method=holdout", "--set", "split.test_size=0.3")
    metrics = read_metrics(run)
    assert metrics["n"]["samples"] == 91
    evaluation = cli("evaluate", run, "--json")
    assert evaluation.exit_code == 0
    assert json.loads(evaluation.stdout)["metrics"] == pytest.approx(metrics["metrics"])


def test_evaluate_on_another_site_and_gates(cli, runs_dir, tmp_path):
    run = train(cli, CONFIGS / "heart_disease_logreg.yaml", runs_dir)
    data = write_config(tmp_path, "data: {type: uci-heart-disease, sites: [hungarian]}\n",
                        "hungarian.yaml")
    ok = cli("evaluate", run, "--data", data, "--fail-under", "auroc=0.5", "--json")
    assert ok.exit_code == 0, ok.stderr
    payload = json.loads(ok.stdout)
    assert payload["n"]["samples"] == 294 and payload["gates"][0]["passed"]
    failed = cli("evaluate", run, "--data", data, "--fail-under", "auroc=0.999")
    assert failed.exit_code == 1
    assert "auroc" in failed.stderr and "0.999" in failed.stderr
    # evaluations never overwrite each other
    assert len(list((run / "evaluations").iterdir())) == 2


def test_evaluate_on_a_csv(cli, runs_dir, tmp_path):
    run = train(cli, CONFIGS / "heart_disease_logreg.yaml", runs_dir)
    frame = load_frame(["va"])
    path = tmp_path / "va.csv"
    frame[["patient_id", *FEATURES, "disease"]].to_csv(path, index=False)
    result = cli("evaluate", run, "--data", path, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["n"] == {"samples": 200, "events": 149, "non_events": 51}


def test_predict_refuses_missing_columns_and_bad_types(cli, runs_dir, tmp_path):
    run = train(cli, CONFIGS / "heart_disease_logreg.yaml", runs_dir)
    frame = pd.read_csv(patients_csv(tmp_path))
    frame.drop(columns=["chol", "thal"]).to_csv(tmp_path / "missing.csv", index=False)
    result = cli("predict", run, "--input", tmp_path / "missing.csv")
    assert result.exit_code == 2
    assert "chol" in result.stderr and "thal" in result.stderr
    frame["age"] = frame["age"].astype(object)
    frame.loc[2, "age"] = "sixty"
    frame.to_csv(tmp_path / "typed.csv", index=False)
    result = cli("predict", run, "--input", tmp_path / "typed.csv")
    assert result.exit_code == 2
    assert "'age'" in result.stderr and "row 3" in result.stderr
    extra = pd.read_csv(patients_csv(tmp_path)).assign(shoe_size=42)
    extra.to_csv(tmp_path / "extra.csv", index=False)
    result = cli("predict", run, "--input", tmp_path / "extra.csv")
    assert result.exit_code == 0 and "shoe_size" in result.stderr


def test_tampered_or_foreign_model_files_are_refused(cli, runs_dir, tmp_path):
    run = train(cli, CONFIGS / "diabetes_ridge.yaml", runs_dir)
    inputs = tmp_path / "in.csv"
    from sklearn.datasets import load_diabetes

    load_diabetes(scaled=False, as_frame=True).frame.head(3).to_csv(inputs, index=False)
    model = run / "model" / "model.skops"
    original = model.read_bytes()
    model.write_bytes(original[: len(original) // 2])  # truncated
    result = cli("predict", run, "--input", inputs)
    assert result.exit_code == 2 and "changed since it was saved" in result.stderr
    import pickle

    model.write_bytes(pickle.dumps({"not": "a model"}))  # a pickle renamed as a model
    result = cli("predict", run, "--input", inputs)
    assert result.exit_code == 2 and "Traceback" not in result.stderr


def test_data_errors_leave_no_run_directory(cli, runs_dir, tmp_path):
    (tmp_path / "t.csv").write_text("a,y\n1,0\n2,0\n3,0\n")
    config = write_config(tmp_path, "task: tabular-classification\n"
                                    "data: {type: csv, path: t.csv, target: y}\n")
    result = cli("train", config, "--runs-dir", runs_dir)
    assert result.exit_code == 2 and "single class" in result.stderr
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_a_failing_fit_marks_the_run_failed(cli, runs_dir, monkeypatch):
    import medml_cli.workflows.train_tabular as training

    def explode(*args, **kwargs):
        raise RuntimeError("solver diverged")

    monkeypatch.setattr(training, "_fit_quietly", explode)
    result = cli("train", CONFIGS / "diabetes_ridge.yaml", "--runs-dir", runs_dir)
    assert result.exit_code == 1
    assert "solver diverged" in result.stderr
    (run,) = list(runs_dir.iterdir())
    assert run.name.endswith("-failed")
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and "solver diverged" in status["error"]
    assert not (run / "metrics.json").exists()
    evaluation = cli("evaluate", run)
    assert evaluation.exit_code == 2 and "failed" in evaluation.stderr


def test_unwritable_runs_dir(cli, tmp_path):
    if os.geteuid() == 0:
        target = Path("/proc/medml-runs")  # not creatable even for root
    else:
        target = tmp_path / "ro"
        target.mkdir()
        target.chmod(0o500)
    result = cli("train", CONFIGS / "diabetes_ridge.yaml", "--runs-dir", target)
    assert result.exit_code == 2
    assert "runs directory" in result.stderr


def test_help_does_not_import_tensorflow():
    code = ("import sys, medml_cli.cli as c\n"
            "from typer.testing import CliRunner\n"
            "r = CliRunner().invoke(c.app, ['--help'])\n"
            "assert r.exit_code == 0\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]


def test_tabular_training_does_not_import_tensorflow(tmp_path):
    code = ("import sys\n"
            "from medml_cli.config import load_experiment_config\n"
            "from medml_cli.workflows.train import run_experiment\n"
            f"cfg = load_experiment_config({str(CONFIGS / 'diabetes_ridge.yaml')!r})\n"
            f"run_experiment(cfg, runs_dir=__import__('pathlib').Path({str(tmp_path)!r}))\n"
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_listing_commands(cli):
    models = cli("models", "list", "--json")
    assert models.exit_code == 0
    names = {m["name"] for m in json.loads(models.stdout)}
    assert {"svm", "random-forest", "logistic-regression", "gradient-boosting", "ridge",
            "svr"} <= names
    forest = json.loads(cli("models", "list", "*forest*", "--json").stdout)
    assert [m["name"] for m in forest] == ["random-forest", "random-survival-forest"]
    assert "n_estimators" in forest[0]["fields"]
    assert cli("tasks", "list").exit_code == 0
    data = json.loads(cli("data", "list", "--json").stdout)
    assert {"uci-heart-disease", "diabetes", "csv"} <= {d["name"] for d in data}
