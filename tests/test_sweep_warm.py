"""Warm trial processes (medml_cli/sweep/warm.py): a forked trial is its own process that
behaves like ``python -m medml_cli``, gives the same run as ``medml train``, and the
fresh-interpreter path stays one switch away. Also the leaderboard's optimism note."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from rich.console import Console

from medml_cli.jsonio import read_json
from medml_cli.sweep import expand_sweep, leaderboard, run_sweep
from medml_cli.sweep.executors import trial_env
from medml_cli.sweep.warm import FRESH_ENV, WarmServer, warm_wanted

REPO = Path(__file__).resolve().parents[1]

ONE_TRIAL = """\
task: heart-disease
data: {type: uci-heart-disease, sites: [cleveland]}
model: {type: logistic-regression}
evaluation: {bootstrap: 50, plots: false}
sweep:
  name: one
  grid:
    model.C: [0.5]
"""


@pytest.fixture
def server():
    warm = WarmServer(trial_env(None))
    yield warm
    warm.close()


def test_forked_trial_is_its_own_process_with_cli_exit_codes(server, tmp_path: Path) -> None:
    long_run = ["--quiet", "train", str(REPO / "configs" / "diabetes_rf.yaml"),
                "--set", "model.n_estimators=3000", "--set", "evaluation.bootstrap=0",
                "--runs-dir", str(tmp_path / "runs"), "--name", "t-0123456789ab", "--json"]
    proc = server.start(long_run)
    child = psutil.Process(proc.pid)
    assert child.ppid() == server.proc.pid and child.name() == "t-0123456789ab"
    # the warm parent never loads TensorFlow (image trials import it in their child)
    maps = Path(f"/proc/{server.proc.pid}/maps").read_text()
    assert "tensorflow" not in maps and "_pywrap" not in maps
    with pytest.raises(subprocess.TimeoutExpired):
        proc.communicate(timeout=0.05)
    deadline = time.time() + 60  # SIGTERM once medml train has its handler and run folder
    while not list((tmp_path / "runs").glob(".tmp-*/log.txt")) and time.time() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip() == "terminated (SIGTERM); nothing was completed." and out == ""
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.endswith("-interrupted")
    # the server outlives its trials: a usage error next, then a SIGKILLed one
    bad = server.start(["--quiet", "train", str(tmp_path / "missing.yaml")])
    out, err = bad.communicate(timeout=60)
    assert bad.returncode == 2 and "missing.yaml" in err
    hung = server.start(long_run)
    psutil.Process(hung.pid).kill()
    hung.communicate(timeout=30)
    assert hung.returncode == -signal.SIGKILL and server.proc.poll() is None


@pytest.mark.slow
def test_warm_trial_gives_the_run_of_medml_train(tmp_path: Path) -> None:
    sweep_file = tmp_path / "one.yaml"
    sweep_file.write_text(ONE_TRIAL)
    result = run_sweep(expand_sweep(sweep_file), runs_dir=tmp_path / "runs", warm=True)
    assert result.all_succeeded
    manifest = read_json(result.path / "sweep.json")
    assert manifest["executor"]["processes"] == "warm"
    (trial,) = manifest["trials"]
    assert "fresh interpreter" not in (result.path / "logs" / f"{trial['id']}.log").read_text()
    config = result.path / "configs" / f"{trial['id']}.yaml"
    done = subprocess.run([sys.executable, "-m", "medml_cli", "--quiet", "train", str(config),
                           "--runs-dir", str(tmp_path / "plain"), "--json"],
                          capture_output=True, text=True, timeout=120, check=True)
    plain = read_json(Path(json.loads(done.stdout.splitlines()[-1])["run_dir"]) /
                      "metrics.json")
    warm = read_json(result.path / trial["run_dir"] / "metrics.json")
    assert warm["intervals"] and warm["metrics"] == plain["metrics"]
    assert warm["intervals"] == plain["intervals"]


@pytest.mark.slow
def test_fresh_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FRESH_ENV, raising=False)
    assert warm_wanted() and not warm_wanted(False)
    monkeypatch.setenv(FRESH_ENV, "1")
    assert not warm_wanted()
    sweep_file = tmp_path / "one.yaml"
    sweep_file.write_text(ONE_TRIAL.replace("bootstrap: 50", "bootstrap: 0"))
    result = run_sweep(expand_sweep(sweep_file), runs_dir=tmp_path / "runs")
    assert result.all_succeeded
    assert read_json(result.path / "sweep.json")["executor"]["processes"] == "fresh"


def test_leaderboard_says_its_best_is_optimistic() -> None:
    from medml_cli.cli.sweep import _print_leaderboard

    trials = [{"id": f"t{i}", "status": "completed", "params": {"model.C": c}, "seed": 0,
               "metrics": {"auroc": v}, "intervals": {}, "run_dir": f"trials/{i}"}
              for i, (c, v) in enumerate([(0.1, 0.8), (1.0, 0.9), (10.0, 0.85)])]
    board = leaderboard({"metric": "auroc", "trials": trials})
    assert board["best"]["id"] == "t1"
    assert "optimistic" in board["note"] and "best of 3 trials" in board["note"]
    assert "`tune:`" in board["note"] and "nested cross-validation" in board["note"]
    assert leaderboard({"metric": "auroc", "trials": trials[:1]})["note"] is None
    console = Console(file=io.StringIO(), width=200)
    _print_leaderboard({"name": "s", "counts": {"completed": 3}}, board, console)
    assert "optimistic: it is the best of 3 trials" in console.file.getvalue()
