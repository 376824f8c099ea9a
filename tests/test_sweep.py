"""Sweeps (expansion, local and Dask execution, failures, resume) and `runs list/show/compare`.

Trials are tiny diabetes runs (bootstrap 0, no plots), forked from a warm server that has
imported scikit-learn already (tests/test_sweep_warm.py); each is still its own
process.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import typer
import yaml
from typer.testing import CliRunner

from medml_cli.cli.commands import main_callback
from medml_cli.cli.runs import runs_app
from medml_cli.cli.sweep import sweep_command
from medml_cli.errors import ConfigError
from medml_cli.jsonio import read_json, write_json
from medml_cli.runs.directory import pid_alive
from medml_cli.sweep import expand_sweep, run_sweep, trial_id

REPO = Path(__file__).resolve().parents[1]

SMALL = """\
task: diabetes
evaluation: {bootstrap: 0, plots: false}
sweep:
  name: small
  grid:
    model.type: [ridge, svr]
  seeds: [0, 1]
"""


def make_app() -> typer.Typer:
    """The commands as the lead will register them, with medml's --debug/--quiet callback."""
    app = typer.Typer(pretty_exceptions_enable=False)
    app.callback()(main_callback)
    app.command("sweep")(sweep_command)
    app.add_typer(runs_app, name="runs")
    return app


def invoke(*args: object):
    return CliRunner().invoke(make_app(), [str(a) for a in args], catch_exceptions=False)


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def manifest_of(sweep_dir: Path) -> dict:
    return read_json(Path(sweep_dir) / "sweep.json")


def diabetes_csv(folder: Path) -> Path:
    from sklearn.datasets import load_diabetes

    path = folder / "diabetes.csv"
    load_diabetes(as_frame=True, scaled=False).frame.to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------- expansion
def test_grid_random_seeds_count_and_stable_ids(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", """\
task: diabetes
model: {type: ridge}
sweep:
  grid:
    split.n_splits: [3, 5]
  random:
    trials: 4
    seed: 7
    parameters:
      model.alpha: {distribution: log-uniform, low: 0.01, high: 100}
  seeds: [0, 1]
""")
    sweep = expand_sweep(path)
    assert len(sweep.trials) == 2 * 4 * 2
    assert sweep.name == "s" and sweep.metric == "r2" and sweep.duplicates == 0
    for trial in sweep.trials:
        assert trial.id == hashlib.sha256(trial.config_yaml.encode()).hexdigest()[:12]
        config = yaml.safe_load(trial.config_yaml)
        assert config["seed"] == trial.seed
        assert config["model"]["alpha"] == trial.params["model.alpha"]
        assert 0.01 <= trial.params["model.alpha"] <= 100
    again = expand_sweep(path)
    assert [t.id for t in again.trials] == [t.id for t in sweep.trials]
    assert len({t.id for t in sweep.trials}) == len(sweep.trials)
    # another random seed draws other values: other ids
    other = expand_sweep(path, ["sweep.random.seed=8"])
    assert {t.id for t in other.trials}.isdisjoint({t.id for t in sweep.trials})


def test_inapplicable_parameters_are_dropped_and_duplicates_removed(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", """\
task: diabetes
model: {type: ridge, alpha: 2.0}
sweep:
  grid:
    model.type: [ridge, svr]
    model.alpha: [0.1, 1.0]
  random:
    trials: 3
    parameters:
      model.C: {distribution: uniform, low: 0.5, high: 5}
  seeds: [0, 1, 2]
  conditions:
    model.C: {model.type: [svr]}
""")
    sweep = expand_sweep(path)
    ridge = [t for t in sweep.trials if t.params["model.type"] == "ridge"]
    svr = [t for t in sweep.trials if t.params["model.type"] == "svr"]
    # ridge: 2 alphas x 3 seeds (C dropped by the condition, so the 3 draws collapse);
    # svr: 3 draws of C x 3 seeds (alpha is not an SVR field: dropped, also the base's)
    assert len(ridge) == 6 and len(svr) == 9
    assert sweep.duplicates == 2 * 2 * 3 * 3 - 15
    assert all(t.dropped == ["model.C"] and "model.C" not in t.params for t in ridge)
    assert all("model.alpha" in t.dropped and "model.alpha" not in t.params for t in svr)
    for trial in svr:
        model = yaml.safe_load(trial.config_yaml)["model"]
        assert "alpha" not in model and model["C"] == trial.params["model.C"]


def test_base_file_is_merged_under_the_sweep(tmp_path: Path) -> None:
    write(tmp_path / "bases", "base.yaml", "task: diabetes\nmodel: {type: ridge, alpha: 3.0}\n"
                                           "split: {n_splits: 3}\n")
    path = write(tmp_path, "s.yaml", "base: bases/base.yaml\nsplit: {n_splits: 4}\n"
                                     "sweep: {seeds: [5]}\n")
    (trial,) = expand_sweep(path).trials
    config = yaml.safe_load(trial.config_yaml)
    assert config["model"]["alpha"] == 3.0 and config["split"]["n_splits"] == 4
    assert config["seed"] == 5


@pytest.mark.parametrize("block, expected", [
    ("grd: {model.type: [ridge]}", ["sweep.grd", "did you mean 'grid'"]),
    ("random: {trials: 2, parameters: {model.alpha: {distribution: normal, low: 0, high: 1}}}",
     ["sweep.random.parameters.model.alpha.distribution", "'normal'"]),
    ("random: {trials: 2, parameters: {model.alpha: {distribution: uniform, lo: 0, high: 1}}}",
     ["sweep.random.parameters.model.alpha.lo", "did you mean 'low'"]),
    ("grid: {modle.type: [ridge]}", ["sweep.grid.modle.type", "did you mean 'model'"]),
    ("grid: {model.alfa: [1.0]}", ["sweep.grid.model.alfa", "did you mean 'alpha'"]),
    ("grid: {split.n_fold: [3]}", ["sweep.grid.split.n_fold"]),
    ("grid: {'model..C': [1]}", ["sweep.grid.model..C", "not a dotted path"]),
    ("grid: {model.alpha: []}", ["sweep.grid.model.alpha"]),
    ("metric: auroc", ["sweep.metric", "'auroc'"]),
    ("conditions: {model.alpha: {model.type: svr}}", ["sweep.conditions.model.alpha"]),
    # an invalid trial is an error before anything runs, naming the trial and the field
    ("grid: {model.type: [ridge, svm]}", ["model.type", "trial model.type=svm"]),
    ("grid: {model.alpha: [1.0, -1.0]}", ["model.alpha", "greater than or equal to 0"]),
])
def test_bad_sweep_blocks_name_the_field(tmp_path: Path, block: str, expected: list[str]
                                         ) -> None:
    path = write(tmp_path, "bad.yaml", f"task: diabetes\nsweep:\n  {block}\n")
    with pytest.raises(ConfigError) as info:
        expand_sweep(path)
    text = str(info.value)
    for part in expected:
        assert part in text, text


def test_missing_sweep_block_and_cli_exit_code(tmp_path: Path) -> None:
    path = write(tmp_path, "plain.yaml", "task: diabetes\n")
    result = invoke("sweep", path, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2
    assert "sweep: missing" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_dry_run_creates_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", SMALL)
    runs = tmp_path / "runs"
    result = invoke("sweep", path, "--dry-run", "--runs-dir", runs)
    assert result.exit_code == 0, result.stderr
    ids = [t.id for t in expand_sweep(path).trials]
    assert all(i in result.stdout for i in ids)
    result = invoke("sweep", path, "--dry-run", "--json", "--runs-dir", runs)
    data = json.loads(result.stdout)
    assert [t["id"] for t in data["trials"]] == ids and data["metric"] == "r2"
    assert not runs.exists()


def test_shipped_sweeps_expand() -> None:
    heart = expand_sweep(REPO / "configs" / "sweeps" / "heart_disease_models.yaml")
    assert 20 <= len(heart.trials) <= 28 and heart.metric == "auroc"
    assert {t.params["model.type"] for t in heart.trials} == {
        "svm", "random-forest", "logistic-regression", "gradient-boosting"}
    diabetes = expand_sweep(REPO / "configs" / "sweeps" / "diabetes_models.yaml")
    assert diabetes.metric == "r2" and len({t.seed for t in diabetes.trials}) >= 2


# --------------------------------------------------------------------------- local runs
@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("local")
    sweep = expand_sweep(write(folder, "small.yaml", SMALL))
    result = run_sweep(sweep, runs_dir=folder / "runs", executor="local", workers=2)
    return sweep, result


def test_local_sweep_manifest_matches_trial_dirs(local_sweep) -> None:
    sweep, result = local_sweep
    assert result.all_succeeded and result.counts["completed"] == 4
    path = result.path
    assert path.name.endswith("-sweep-small") and (path / "sweep.yaml").exists()
    manifest = manifest_of(path)
    assert manifest["state"] == "completed" and manifest["metric"] == "r2"
    by_id = {t.id: t for t in sweep.trials}
    assert [t["id"] for t in manifest["trials"]] == list(by_id)
    run_dirs = set()
    for entry in manifest["trials"]:
        run = path / entry["run_dir"]
        run_dirs.add(run.name)
        assert entry["status"] == "completed" and run.parent == path / "trials"
        assert (run / "metrics.json").exists()
        config = (run / "config.yaml").read_text()
        assert config == by_id[entry["id"]].config_yaml
        assert config == (path / "configs" / f"{entry['id']}.yaml").read_text()
        assert entry["metrics"] == read_json(run / "metrics.json")["metrics"]
        assert entry["worker"] and entry["started"] and entry["ended"]
    assert run_dirs == {p.name for p in (path / "trials").iterdir()}
    summary = pd.read_csv(path / "summary.csv")
    assert len(summary) == 4 and set(summary["id"]) == set(by_id)
    assert {"model.type", "seed", "status", "run_dir", "r2", "rmse", "mae"} <= set(summary)
    board = result.leaderboard
    # approx: pandas' fast float parser can read the written repr one ulp off
    assert board["best"]["value"] == pytest.approx(max(summary["r2"]), rel=1e-12, abs=0)
    assert {g["n"] for g in board["per_params"]} == {2}  # two seeds per model type
    assert len(pd.read_csv(path / "leaderboard.csv")) == 2


def test_trial_rerun_alone_gives_identical_metrics(local_sweep, tmp_path: Path) -> None:
    from medml_cli.config.loader import load_experiment_config
    from medml_cli.workflows.train import run_experiment

    _, result = local_sweep
    entry = manifest_of(result.path)["trials"][-1]
    config = result.path / "configs" / f"{entry['id']}.yaml"
    rerun = run_experiment(load_experiment_config(config), runs_dir=tmp_path / "again",
                           config_path=config)
    swept = read_json(result.path / entry["run_dir"] / "metrics.json")
    assert rerun.metrics["metrics"] == swept["metrics"]
    assert trial_id((rerun.path / "config.yaml").read_text()) == entry["id"]


def failing_sweep(folder: Path) -> Path:
    """Two trials; the first reads a missing file, so `medml train` exits 2 for it."""
    data = diabetes_csv(folder)
    return write(folder, "fail.yaml", f"""\
task: tabular-regression
data: {{type: csv, path: {data.name}, target: target}}
model: {{type: ridge}}
evaluation: {{bootstrap: 0, plots: false}}
sweep:
  grid:
    data.path: [missing.csv, {data.name}]
""")


def test_failing_trial_is_recorded_and_the_rest_go_on(tmp_path: Path) -> None:
    result = invoke("sweep", failing_sweep(tmp_path), "--runs-dir", tmp_path / "runs",
                    "--workers", "2")
    assert result.exit_code == 1, result.stderr
    sweep_dir = Path(result.stdout.strip().splitlines()[-1])
    assert sweep_dir.parent == tmp_path / "runs"
    bad, good = manifest_of(sweep_dir)["trials"]
    assert bad["status"] == "failed" and "file not found" in bad["error"]
    assert bad["run_dir"] is None  # data errors are found before a run folder is made
    assert "file not found" in (sweep_dir / "logs" / f"{bad['id']}.log").read_text()
    assert good["status"] == "completed" and (sweep_dir / good["run_dir"]).is_dir()
    assert "1 failed" in result.stderr and "--resume" in result.stderr
    assert len(pd.read_csv(sweep_dir / "summary.csv")) == 2


def test_fail_fast_stops_starting_trials(tmp_path: Path) -> None:
    result = invoke("--quiet", "sweep", failing_sweep(tmp_path), "--runs-dir", tmp_path / "r",
                    "--fail-fast", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["all_succeeded"] is False
    assert data["counts"]["failed"] == 1 and data["counts"]["pending"] == 1
    assert [t["status"] for t in data["trials"]] == ["failed", "pending"]
    assert not list((Path(data["sweep_dir"]) / "trials").iterdir())


def test_timeout_kills_a_trial(tmp_path: Path) -> None:
    # a trial that takes seconds (a warm ridge trial can finish inside the timeout itself)
    path = write(tmp_path, "s.yaml", SMALL.replace("[ridge, svr]", "[random-forest]")
                 .replace("seeds: [0, 1]", "seeds: [0]")
                 .replace("evaluation:", "model: {n_estimators: 3000}\nevaluation:"))
    result = invoke("--quiet", "sweep", path, "--runs-dir", tmp_path / "runs", "--timeout",
                    "0.3", "--json")
    assert result.exit_code == 1
    (trial,) = json.loads(result.stdout)["trials"]
    assert trial["status"] == "failed" and "timed out after 0.3 s" in trial["error"]


def test_resume_after_sigkill(tmp_path: Path) -> None:
    from medml_cli.runs.index import list_runs

    path = write(tmp_path, "s.yaml", SMALL.replace("seeds: [0, 1]", "seeds: [0, 1, 2]")
                 .replace("model.type: [ridge, svr]", "model.type: [ridge]"))
    runs = tmp_path / "runs"
    code = ("import sys; from pathlib import Path; from medml_cli.sweep import expand_sweep, "
            "run_sweep; run_sweep(expand_sweep(Path(sys.argv[1])), runs_dir=Path(sys.argv[2]))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path), str(runs)],
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    sweep_dir = None
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            found = list(runs.glob("*-sweep-small/sweep.json")) if runs.exists() else []
            if found:
                sweep_dir = found[0].parent
                # a warm trial reaches its folder quickly: wait for its status.json too
                with_tmp = list((sweep_dir / "trials").glob(".tmp-*/status.json"))
                done = [t for t in _read_or_empty(found[0]) if t["status"] == "completed"]
                if done and with_tmp:  # one trial finished, the next is mid-run
                    break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        else:
            pytest.fail("the sweep did not get going")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its trial process, like kill -9
        proc.wait()
        proc.stderr.close()
    killed = [read_json(p / "status.json")["pid"] for p in (sweep_dir / "trials").glob(".tmp-*")]
    deadline = time.monotonic() + 10  # SIGKILL is delivered asynchronously
    while any(pid_alive(pid) for pid in killed) and time.monotonic() < deadline:
        time.sleep(0.05)
    before = manifest_of(sweep_dir)
    assert before["state"] == "running"
    done = {t["id"]: t["run_dir"] for t in before["trials"] if t["status"] == "completed"}
    stamps = {i: (sweep_dir / d / "metrics.json").stat().st_mtime_ns for i, d in done.items()}
    # the killed trial's folder is a .tmp- run whose process is gone: interrupted
    states = list_runs(runs).set_index("run")["state"]
    assert "interrupted" in {states[p.name] for p in (sweep_dir / "trials").glob(".tmp-*")}

    result = run_sweep(resume=sweep_dir, workers=2)
    assert result.all_succeeded and result.path == sweep_dir.resolve()
    after = manifest_of(sweep_dir)
    assert after["state"] == "completed" and after["sessions"][-1]["resumed"] is True
    for tid, run_dir in done.items():  # skipped, not re-run: same folder, untouched
        entry = next(t for t in after["trials"] if t["id"] == tid)
        assert entry["run_dir"] == run_dir
        assert (sweep_dir / run_dir / "metrics.json").stat().st_mtime_ns == stamps[tid]
    completed_dirs = [p for p in (sweep_dir / "trials").iterdir()
                      if not p.name.startswith(".") and (p / "metrics.json").exists()]
    assert len(completed_dirs) == 3
    assert {sweep_dir / t["run_dir"] for t in after["trials"]} == set(completed_dirs)
    assert any(t["attempts"] for t in after["trials"])  # the interrupted try is kept


def _read_or_empty(path: Path) -> list[dict]:
    try:
        return read_json(path)["trials"]
    except (OSError, ValueError):
        return []


def test_resume_refuses_a_folder_that_is_not_a_sweep(tmp_path: Path) -> None:
    result = invoke("sweep", "--resume", tmp_path)
    assert result.exit_code == 2 and "not a medml sweep folder" in result.stderr


# --------------------------------------------------------------------------- dask
def two_trials(folder: Path) -> Path:
    return write(folder, "s.yaml", SMALL.replace("seeds: [0, 1]", "seeds: [0]"))


def test_dask_local_cluster_of_worker_threads(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    # medml starts LocalCluster(n_workers=2, threads_per_worker=1, processes=False) itself
    result = run_sweep(expand_sweep(two_trials(tmp_path)), runs_dir=tmp_path / "runs",
                       executor="dask", workers=2)
    assert result.all_succeeded
    manifest = manifest_of(result.path)
    assert manifest["executor"]["kind"] == "dask"
    for entry in manifest["trials"]:
        assert entry["worker"].startswith("tcp://") and entry["host"]
        assert (result.path / entry["run_dir"] / "metrics.json").exists()
        assert isinstance(entry["pid"], int) and entry["pid"] != os.getpid()  # own process
    from medml_cli.sweep import warm

    assert not warm._servers  # the session's warm server closed with the cluster


def test_dask_external_scheduler_and_worker_processes(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    scheduler_file = tmp_path / "scheduler.json"
    common = ["--scheduler-file", str(scheduler_file), "--no-dashboard"]
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler",
                               "--host", "127.0.0.1", "--port", "0", *common],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", "--nthreads", "2",
             "--name", "medml-test-worker", *common],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        address = json.loads(scheduler_file.read_text())["address"]
        result = invoke("--quiet", "sweep", two_trials(tmp_path), "--executor", "dask",
                        "--scheduler", address, "--runs-dir", tmp_path / "runs", "--json")
        assert result.exit_code == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["all_succeeded"] and data["counts"]["completed"] == 2
        manifest = manifest_of(Path(data["sweep_dir"]))
        assert manifest["executor"]["scheduler"] == address
        assert all(t["worker"].startswith("tcp://127.0.0.1") for t in manifest["trials"])
    finally:
        # the worker first: one whose scheduler is gone waits to reconnect before exiting
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_dask_unreachable_scheduler_is_a_usage_error(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        result = invoke("sweep", two_trials(tmp_path), "--executor", "dask", "--scheduler",
                        "tcp://127.0.0.1:9", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "Dask scheduler" in result.stderr
    assert not (tmp_path / "runs").exists()  # checked before the sweep folder is made


# --------------------------------------------------------------------------- runs
@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ridge alpha 1 and 10, svr (with bootstrap CIs), an interrupted and a failed run."""
    from medml_cli.config.loader import validate_config_data
    from medml_cli.workflows.train import run_experiment

    runs = tmp_path_factory.mktemp("index") / "runs"
    for name, model, bootstrap in (("ridge-a1", {"type": "ridge", "alpha": 1.0}, 0),
                                   ("ridge-a10", {"type": "ridge", "alpha": 10.0}, 0),
                                   ("svr", {"type": "svr"}, 50)):
        cfg = validate_config_data({"task": "diabetes", "name": name, "model": model,
                                    "evaluation": {"bootstrap": bootstrap, "plots": False}})
        run_experiment(cfg, runs_dir=runs)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer runs
    killed = runs / f".tmp-killed-{uuid.uuid4().hex}"
    killed.mkdir()
    (killed / "config.yaml").write_text("task: diabetes\nmodel: {type: ridge}\nseed: 3\n")
    write_json(killed / "status.json", {"state": "running", "name": "killed", "pid": gone.pid,
                                        "started": "2026-01-02T12:00:00+00:00"})
    failed = runs / "20260101-000000-broken-abcdef-failed"
    failed.mkdir()
    (failed / "config.yaml").write_text("task: diabetes\nmodel: {type: svr}\nseed: 4\n")
    write_json(failed / "status.json", {"state": "failed", "name": "broken", "error": "boom",
                                        "started": "2026-01-01T00:00:00+00:00",
                                        "ended": "2026-01-01T00:00:01+00:00"})
    return runs


def runs_json(*args: object) -> list[dict]:
    result = invoke("runs", "list", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_runs_list_states_filters_and_sort(runs_dir: Path) -> None:
    rows = runs_json("--runs-dir", runs_dir)
    assert len(rows) == 5
    states = {r["name"]: r["state"] for r in rows}
    assert states == {"ridge-a1": "completed", "ridge-a10": "completed", "svr": "completed",
                      "killed": "interrupted", "broken": "failed"}
    assert [r["name"] for r in runs_json("--runs-dir", runs_dir, "--filter", "state=failed")
            ] == ["broken"]
    assert {r["name"] for r in runs_json("--runs-dir", runs_dir, "--filter", "model=svr")
            } == {"svr", "broken"}
    assert {r["name"] for r in runs_json("--runs-dir", runs_dir, "--filter", "model=ridge",
                                         "--filter", "state=completed")
            } == {"ridge-a1", "ridge-a10"}
    today = date.today().isoformat()
    assert len(runs_json("--runs-dir", runs_dir, "--filter", f"date={today}")) == 3
    assert len(runs_json("--runs-dir", runs_dir, "--filter", "since=2026-01-02")) == 4
    by_r2 = runs_json("--runs-dir", runs_dir, "--sort", "r2")
    r2 = [r["r2"] for r in by_r2 if r["r2"] is not None]
    assert r2 == sorted(r2, reverse=True) and by_r2[-1]["r2"] is None
    rmse = [r["rmse"] for r in runs_json("--runs-dir", runs_dir, "--sort", "rmse")][:3]
    assert rmse == sorted(rmse)  # lower is better: ascending
    assert len(runs_json("--runs-dir", runs_dir, "--sort", "r2", "--limit", "1")) == 1


def test_runs_list_table_csv_and_errors(runs_dir: Path) -> None:
    result = invoke("runs", "list", "--runs-dir", runs_dir)
    assert result.exit_code == 0
    assert "interrupted" in result.stdout and "failed" in result.stdout
    assert "ridge-a10" in result.stdout
    result = invoke("runs", "list", "--runs-dir", runs_dir, "--csv")
    frame = pd.read_csv(__import__("io").StringIO(result.stdout))
    assert len(frame) == 5 and {"run", "state", "task", "model", "r2"} <= set(frame.columns)
    result = invoke("runs", "list", "--runs-dir", runs_dir, "--filter", "modle=svr")
    assert result.exit_code == 2 and "did you mean 'model'" in result.stderr
    result = invoke("runs", "list", "--runs-dir", runs_dir, "--sort", "auroc")
    assert result.exit_code == 2 and "--sort auroc" in result.stderr
    result = invoke("runs", "list", "--runs-dir", runs_dir / "nope")
    assert result.exit_code == 2


def test_runs_show(runs_dir: Path) -> None:
    result = invoke("runs", "show", "svr", "--runs-dir", runs_dir, "--json")
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["state"] == "completed" and info["config"]["model"]["type"] == "svr"
    assert set(info["metrics"]) == {"r2", "rmse", "mae"}
    assert info["intervals"]["r2"][0] < info["metrics"]["r2"] < info["intervals"]["r2"][1]
    assert info["n"]["samples"] == 442
    env = info["environment"]
    assert env["python"] and "scikit-learn" in env["packages"] and env["data_sha256"]
    result = invoke("runs", "show", "svr", "--runs-dir", runs_dir)
    assert "held-out metrics" in result.stdout and "95% CI" in result.stdout
    result = invoke("runs", "show", "broken", "--runs-dir", runs_dir)
    assert result.exit_code == 0 and "boom" in result.stdout
    result = invoke("runs", "show", "ridge", "--runs-dir", runs_dir)  # two runs match
    assert result.exit_code == 2 and "matches 2 runs" in result.stderr


def test_runs_compare(runs_dir: Path) -> None:
    names = [p.name for p in sorted(runs_dir.iterdir()) if "-ridge-a" in p.name]
    result = invoke("runs", "compare", *names, "--runs-dir", runs_dir, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data["config_diff"]) == {"name", "model.alpha"}
    assert sorted(data["config_diff"]["model.alpha"].values()) == [1.0, 10.0]
    assert set(data["metrics"]) == set(names)
    assert all(m["r2"]["value"] is not None for m in data["metrics"].values())
    result = invoke("runs", "compare", names[0], "svr", "--runs-dir", runs_dir)
    assert result.exit_code == 0
    assert "model.type" in result.stdout and "model.C" in result.stdout
    assert "metrics (95% CI)" in result.stdout
    result = invoke("runs", "compare", names[0], "--runs-dir", runs_dir)
    assert result.exit_code == 2
