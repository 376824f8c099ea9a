"""`medml runs export --mlflow`: round trip through a local SQLite MLflow store, survival
metric names, idempotence, sweeps as parent and children, and the exit-2 errors.

The runs are trained once per module from the shipped configs (small bootstraps); every
export goes to its own SQLite store under tmp_path, read back with MLflow's own client.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from medml_cli.runs.index import flatten
from medml_cli.sweep import expand_sweep, run_sweep
from tests.conftest import CONFIGS, REPO, run_cli

mlflow = pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402

TRIALS = """\
task: heart-disease
data: {type: uci-heart-disease, sites: [cleveland]}
split: {method: kfold, n_splits: 3, stratify: true}
model: {type: logistic-regression}
evaluation: {bootstrap: 20, plots: false}
sweep:
  name: two
  grid:
    model.C: [0.1, 1.0]
  metric: auroc
"""


def _train(config: Path, runs: Path, *extra: str) -> Path:
    result = run_cli("train", config, "--set", "evaluation.bootstrap=50", *extra,
                     "--runs-dir", runs)
    assert result.exit_code == 0, result.stderr
    return Path(result.last_line)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("exported")
    found = {"binary": _train(CONFIGS / "heart_disease_logreg.yaml", folder / "runs"),
             "survival": _train(CONFIGS / "lung_cancer_survival_cox.yaml", folder / "runs",
                                "--set", "evaluation.plots=false")}
    (folder / "two.yaml").write_text(TRIALS)
    found["sweep"] = run_sweep(expand_sweep(folder / "two.yaml"), runs_dir=folder / "sweeps",
                               executor="local", workers=1).path
    return found


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its tables made (3-4 s of migrations), copied per test."""
    path = tmp_path_factory.mktemp("store") / "empty.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(empty_store: Path, tmp_path: Path) -> Path:
    path = tmp_path / "mlflow.db"
    shutil.copyfile(empty_store, path)
    return path


def export(store: Path, *args: object) -> tuple[int, str, str]:
    result = run_cli("runs", "export", *args, "--mlflow", "--tracking-uri",
                     f"sqlite:///{store}")
    return result.exit_code, result.stdout, result.stderr


def all_runs(store: Path) -> list:
    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    experiments = client.search_experiments()
    return client.search_runs([e.experiment_id for e in experiments])


def _decode(param: str):
    """A param as medml wrote it: JSON for non-strings, the string itself otherwise."""
    try:
        return json.loads(param)
    except ValueError:
        return param


def test_binary_run_round_trip(runs, store: Path) -> None:
    code, out, err = export(store, runs["binary"], "--json")
    assert code == 0, err
    (result,) = json.loads(out)
    assert result["action"] == "created"
    (run,) = all_runs(store)
    assert run.info.run_id == result["mlflow_run_id"] and run.info.status == "FINISHED"

    recorded = json.loads((runs["binary"] / "metrics.json").read_text())
    logged = run.data.metrics
    numbers = {k: v for k, v in recorded["metrics"].items() if isinstance(v, (int, float))}
    assert numbers
    for name, value in numbers.items():
        assert logged[name] == pytest.approx(value, rel=1e-12, abs=0)
    for name, (low, high) in recorded["intervals"].items():
        if low is not None:
            assert logged[f"{name}_ci_low"] == pytest.approx(low, rel=1e-12, abs=0)
            assert logged[f"{name}_ci_high"] == pytest.approx(high, rel=1e-12, abs=0)
    for name, value in recorded["baseline"].items():
        if value is None:
            assert f"baseline/{name}" not in logged
        else:
            assert logged[f"baseline/{name}"] == pytest.approx(value, rel=1e-12, abs=0)

    config = flatten(yaml.safe_load((runs["binary"] / "config.yaml").read_text()))
    assert set(run.data.params) == set(config)
    for key, value in config.items():
        assert _decode(run.data.params[key]) == value, key

    tags = run.data.tags
    environment = json.loads((runs["binary"] / "environment.json").read_text())
    assert tags["mlflow.runName"] == runs["binary"].name
    assert tags["medml.task"] == recorded["task"] and tags["medml.problem"] == recorded["problem"]
    assert tags["medml.synthetic"] == "false"
    assert tags["medml.git_commit"] == environment["git_commit"]
    assert tags["medml.medml_version"] == environment["packages"]["medml"]
    ((file, digest),) = environment["data_sha256"].items()
    assert tags["medml.data_sha256"] == digest
    assert Path(tags["medml.run_folder"]) == runs["binary"].resolve()
    status = json.loads((runs["binary"] / "status.json").read_text())
    assert run.info.start_time == datetime.fromisoformat(status["started"]).timestamp() * 1000
    assert run.info.end_time == datetime.fromisoformat(status["ended"]).timestamp() * 1000

    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.md", "report.html", "metrics.json", "config.yaml", "plots", "model"} <= top
    assert "predictions.csv" not in top  # patient-level rows stay home unless asked for
    model = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert "model/card.json" in model
    plots = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {p.name for p in (runs["binary"] / "plots").iterdir()}


def test_what_mlflow_prints_never_reaches_stdout(runs, store: Path, monkeypatch) -> None:
    """Against a tracking server MLflow prints "View run ... at: URL" to stdout after each
    run it logs (found exporting to a real `mlflow server`: it broke --json). MLflow's own
    switch is turned off during the export, and whatever it still prints goes to stderr."""
    import os

    from mlflow.tracking._tracking_service import client as service

    original = service.TrackingServiceClient.set_terminated
    seen = []

    def noisy(self, run_id, *args, **kwargs):
        seen.append(os.environ.get("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"))
        print(f"View run {run_id} at: http://server/#/runs/{run_id}")
        return original(self, run_id, *args, **kwargs)

    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)
    monkeypatch.setattr(service.TrackingServiceClient, "set_terminated", noisy)
    code, out, err = export(store, runs["binary"], "--json")
    assert code == 0, err
    (result,) = json.loads(out)
    assert result["url"] is None  # a database store has no web page
    assert "View run" in err and "View run" not in out
    assert seen == ["true"]
    assert "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT" not in os.environ  # put back


def test_a_tracking_server_run_gets_its_page_address() -> None:
    from medml_cli.export.mlflow import _Exporter

    exporter = _Exporter.__new__(_Exporter)  # no connection needed for the address
    exporter.uri = "http://mlflow.hospital.example:5000/"
    assert exporter.run_url("4", "abc") == \
        "http://mlflow.hospital.example:5000/#/experiments/4/runs/abc"
    exporter.uri = "sqlite:///mlflow.db"
    assert exporter.run_url("4", "abc") is None


def _evaluate(run: Path) -> Path:
    result = run_cli("--quiet", "evaluate", run, "--set", "evaluation.bootstrap=20")
    assert result.exit_code == 0, result.stderr
    return Path(result.last_line)


def test_evaluations_are_children_of_their_run(runs, store: Path, tmp_path: Path) -> None:
    """Each `medml evaluate` folder becomes a child MLflow run with its own metrics and
    report; one evaluated later is added on the next export, the others are not copied."""
    run = tmp_path / runs["binary"].name
    shutil.copytree(runs["binary"], run)
    first = _evaluate(run)
    code, out, err = export(store, run, "--json")
    assert code == 0, err
    parent, child = json.loads(out)
    assert (parent["kind"], child["kind"]) == ("run", "evaluation")
    assert child["parent_run_id"] == parent["mlflow_run_id"]
    assert child["run"] == f"{run.name}/evaluations/{first.name}"

    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    logged = client.get_run(child["mlflow_run_id"])
    assert logged.data.tags["mlflow.parentRunId"] == parent["mlflow_run_id"]
    assert logged.data.tags["medml.kind"] == "evaluation"
    recorded = json.loads((first / "metrics.json").read_text())
    for name, value in recorded["metrics"].items():
        if isinstance(value, (int, float)):
            assert logged.data.metrics[name] == value, name
    low, high = recorded["intervals"]["auroc"]
    assert (logged.data.metrics["auroc_ci_low"], logged.data.metrics["auroc_ci_high"]) == \
        (low, high)
    assert _decode(logged.data.params["evaluation"]) == recorded["evaluation"]
    files = {a.path for a in client.list_artifacts(child["mlflow_run_id"])}
    assert {"metrics.json", "report.md"} <= files
    assert "predictions.csv" not in files

    second = _evaluate(run)
    code, out, err = export(store, run, "--json")
    assert code == 0, err
    actions = [(r["run"].rsplit("/", 1)[-1], r["action"]) for r in json.loads(out)]
    assert actions == [(run.name, "skipped"), (first.name, "skipped"), (second.name, "created")]
    assert len(all_runs(store)) == 3


def test_a_damaged_evaluation_stops_the_export_before_anything_is_sent(
        runs, store: Path, tmp_path: Path) -> None:
    run = tmp_path / runs["binary"].name
    shutil.copytree(runs["binary"], run)
    (_evaluate(run) / "metrics.json").write_text("{not json")
    code, _, err = export(store, run)
    assert code == 2
    assert "an evaluation's metrics" in err and "medml evaluate" in err
    assert all_runs(store) == []


def test_survival_metric_names_are_mapped(runs, store: Path) -> None:
    code, _, err = export(store, runs["survival"], "--with-predictions")
    assert code == 0, err
    (run,) = all_runs(store)
    recorded = json.loads((runs["survival"] / "metrics.json").read_text())["metrics"]
    horizons = [name for name in recorded if "@" in name]
    assert horizons
    back = {name.replace("_at_", "@"): value for name, value in run.data.metrics.items()
            if not name.startswith("baseline/") and not name.endswith(("_ci_low", "_ci_high"))}
    assert back.keys() == {k for k, v in recorded.items() if v is not None}
    for name in horizons:
        assert math.isclose(back[name], recorded[name], rel_tol=1e-12)
    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    assert "predictions.csv" in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_exporting_twice_makes_one_mlflow_run(runs, store: Path) -> None:
    assert export(store, runs["binary"])[0] == 0
    code, out, _ = export(store, runs["binary"].name, "--runs-dir", runs["binary"].parent)
    assert code == 0 and "already exported as" in out
    assert len(all_runs(store)) == 1


def test_an_export_that_died_halfway_is_replaced(runs, store: Path, monkeypatch) -> None:
    from mlflow.exceptions import MlflowException

    def lost(*args, **kwargs):
        raise MlflowException("connection to the artifact store lost")

    with monkeypatch.context() as patch:
        patch.setattr(MlflowClient, "log_artifacts", lost)
        code, _, err = export(store, runs["binary"])
    assert code == 1 and "artifact store lost" in err and "again" in err
    (first,) = all_runs(store)
    assert first.info.status == "FAILED"
    code, out, _ = export(store, runs["binary"], "--json")
    (result,) = json.loads(out)
    assert code == 0 and result["action"] == "replaced"
    (again,) = all_runs(store)
    assert again.info.status == "FINISHED" and again.info.run_id != first.info.run_id
    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    assert "model" in {a.path for a in client.list_artifacts(again.info.run_id)}


def test_sweep_is_a_parent_with_its_trials_as_children(runs, store: Path) -> None:
    code, out, err = export(store, runs["sweep"], "--json")
    assert code == 0, err
    results = json.loads(out)
    manifest = json.loads((runs["sweep"] / "sweep.json").read_text())
    assert [r["kind"] for r in results] == ["sweep", "trial", "trial"]
    logged = {r.info.run_id: r for r in all_runs(store)}
    assert len(logged) == 3
    parent = logged[results[0]["mlflow_run_id"]]
    children = [logged[r["mlflow_run_id"]] for r in results[1:]]
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    assert parent.data.tags["medml.sweep"] == runs["sweep"].name
    best = manifest["leaderboard"]["best"]
    assert parent.data.metrics["best_auroc"] == pytest.approx(best["value"], rel=1e-12)
    assert json.loads(parent.data.params["sweep.grid.model.C"]) == [0.1, 1.0]
    trial_dirs = {(runs["sweep"] / t["run_dir"]).name for t in manifest["trials"]}
    assert {c.data.tags["mlflow.runName"] for c in children} == trial_dirs
    # again: nothing new, and every line says so
    code, out, _ = export(store, runs["sweep"], "--json")
    assert code == 0 and {r["action"] for r in json.loads(out)} == {"skipped"}
    assert len(all_runs(store)) == 3


def test_failed_run_is_exit_2(tmp_path: Path, monkeypatch) -> None:
    import medml_cli.workflows.train_tabular as training

    def explode(*args, **kwargs):
        raise RuntimeError("solver diverged")

    monkeypatch.setattr(training, "_fit_quietly", explode)
    result = run_cli("train", CONFIGS / "diabetes_ridge.yaml", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 1
    (failed,) = (tmp_path / "runs").iterdir()
    store = tmp_path / "mlflow.db"
    code, out, err = export(store, failed)
    assert code == 2 and "is failed" in err and "solver diverged" in err
    assert not store.exists()  # checked before anything was sent


def test_no_target_and_bad_store_are_exit_2(runs, tmp_path: Path) -> None:
    result = run_cli("runs", "export", runs["binary"])
    assert result.exit_code == 2 and "--mlflow" in result.stderr
    result = run_cli("runs", "export", runs["binary"], "--mlflow", "--tracking-uri",
                     f"file:{tmp_path / 'mlruns'}")
    assert result.exit_code == 2 and "sqlite:///" in result.stderr
    result = run_cli("runs", "export", runs["binary"], "--mlflow", "--tracking-uri",
                     "bogus://somewhere")
    assert result.exit_code == 2 and "bogus://somewhere" in result.stderr


def test_unreachable_server_fails_fast(runs) -> None:
    started = time.monotonic()
    result = run_cli("runs", "export", runs["binary"], "--mlflow", "--tracking-uri",
                     "http://127.0.0.1:9")
    assert result.exit_code == 2 and "no MLflow tracking server answered" in result.stderr
    assert time.monotonic() - started < 15


def test_missing_mlflow_says_how_to_install(runs, monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "mlflow" or m.startswith("mlflow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError
    result = run_cli("runs", "export", runs["binary"], "--mlflow")
    assert result.exit_code == 2
    assert 'pip install -e ".[mlflow]"' in result.stderr and "medml[mlflow]" in result.stderr


def test_help_does_not_import_mlflow() -> None:
    code = ("import sys; from medml_cli.cli import app; from typer.testing import CliRunner; "
            "r = CliRunner().invoke(app, ['runs', 'export', '--help']); "
            "assert r.exit_code == 0, r.output; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('mlflow', 'tensorflow')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"


def test_names_and_long_values_fit_mlflow_limits() -> None:
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, validate_param_and_metric_name

    from medml_cli.export.mlflow import TRUNCATED, config_params, mlflow_name

    assert mlflow_name("calibration_slope@365") == "calibration_slope_at_365"
    odd = mlflow_name("age (years)@1.5")
    assert odd == "age _years__at_1.5" and validate_param_and_metric_name(odd)
    params, truncated = config_params({"data": {"columns": ["x" * 50] * 200, "type": "csv"},
                                       "seed": 3, "tune": None, "flag": True})
    assert truncated == ["data.columns"]
    assert len(params["data.columns"]) == MAX_PARAM_VAL_LENGTH
    assert params["data.columns"].endswith(TRUNCATED)
    assert (params["data.type"], params["seed"], params["tune"], params["flag"]) == \
        ("csv", "3", "null", "true")


def test_resumed_sweep_updates_its_parent(runs, store: Path, tmp_path: Path) -> None:
    sweep = tmp_path / runs["sweep"].name
    shutil.copytree(runs["sweep"], sweep)
    assert export(store, sweep)[0] == 0
    # as a resume that finished a better trial leaves it: a new best in the leaderboard
    manifest = json.loads((sweep / "sweep.json").read_text())
    manifest["leaderboard"]["best"]["value"] = 0.99
    (sweep / "sweep.json").write_text(json.dumps(manifest))
    code, out, _ = export(store, sweep, "--json")
    actions = [r["action"] for r in json.loads(out)]
    assert code == 0 and actions == ["updated", "skipped", "skipped"]
    parent = next(r for r in all_runs(store) if r.data.tags.get("medml.kind") == "sweep")
    assert parent.data.metrics["best_auroc"] == 0.99 and len(all_runs(store)) == 3
