"""Crash safety and concurrency: interrupted or killed runs never look complete, and runs
started together in one folder never collide."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import CONFIGS

LONG_TABULAR = [sys.executable, "-m", "medml_cli", "train", str(CONFIGS / "diabetes_rf.yaml"),
                "--set", "model.n_estimators=3000", "--set", "evaluation.bootstrap=0"]


def start(args: list[str], runs: Path) -> subprocess.Popen:
    return subprocess.Popen([*args, "--runs-dir", str(runs)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_tmp_run(runs: Path, timeout: float = 60) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = list(runs.glob(".tmp-*/log.txt")) if runs.exists() else []
        if found and "fold 1" in found[0].read_text():
            return found[0].parent
        time.sleep(0.1)
    raise AssertionError("the run never started its first fold")


def test_ctrl_c_marks_the_run_interrupted_with_one_clean_line(tmp_path):
    runs = tmp_path / "runs"
    proc = start(LONG_TABULAR, runs)
    wait_for_tmp_run(runs)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.strip()] == [
        "interrupted (Ctrl-C); nothing was completed."]
    (run,) = list(runs.iterdir())
    assert run.name.endswith("-interrupted")
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "interrupted" and "ended" in status
    assert not (run / "metrics.json").exists() and not (run / "model").exists()
    assert out.strip() == ""  # no run path printed: nothing to capture as a result


def test_sigterm_is_handled_like_ctrl_c(tmp_path):
    """What schedulers and `timeout` send: the run is renamed -interrupted, exit 143."""
    runs = tmp_path / "runs"
    proc = start(LONG_TABULAR, runs)
    wait_for_tmp_run(runs)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.strip()] == [
        "terminated (SIGTERM); nothing was completed."]
    (run,) = list(runs.iterdir())
    assert run.name.endswith("-interrupted")
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "interrupted" and status["error"] == "terminated by SIGTERM"
    assert not (run / "metrics.json").exists() and out.strip() == ""


def test_sigkill_leaves_a_temporary_run_marked_running(tmp_path):
    runs = tmp_path / "runs"
    proc = start(LONG_TABULAR, runs)
    run = wait_for_tmp_run(runs)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert run.name.startswith(".tmp-")  # never renamed: cannot be mistaken for a result
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "running" and status["pid"] == proc.pid
    assert not (run / "metrics.json").exists()
    from medml_cli.runs.directory import pid_alive

    assert not pid_alive(status["pid"])


def test_eight_runs_started_together_all_succeed(tmp_path):
    runs = tmp_path / "runs"
    args = [sys.executable, "-m", "medml_cli", "train", str(CONFIGS / "diabetes_ridge.yaml"),
            "--set", "evaluation.bootstrap=100", "--set", "evaluation.plots=false"]
    procs = [start(args, runs) for _ in range(8)]
    outputs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [e for _, e in outputs]
    paths = {Path(out.strip().splitlines()[-1]) for out, _ in outputs}
    assert len(paths) == 8 and {p.parent for p in paths} == {runs}
    assert sorted(runs.iterdir()) == sorted(paths)  # no leftovers, no temporary folders
    metrics = []
    for path in paths:
        assert json.loads((path / "status.json").read_text())["state"] == "completed"
        metrics.append(json.loads((path / "metrics.json").read_text())["metrics"])
        assert (path / "model" / "model.skops").stat().st_size > 0
    assert all(m == metrics[0] for m in metrics)  # same config and seed, same numbers


@pytest.mark.tensorflow
def test_sigint_during_cnn_training(tmp_path):
    from tests.test_lung_ct import TINY

    runs = tmp_path / "runs"
    args = [sys.executable, "-m", "medml_cli", "train", str(CONFIGS / "lung_ct_cnn3d.yaml"),
            *TINY, "--set", "model.epochs=200", "--set", "model.patience=1000"]
    proc = start(args, runs)
    deadline = time.time() + 120
    while time.time() < deadline and not list(runs.glob(".tmp-*/checkpoints/last.keras")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    (run,) = list(runs.iterdir())
    assert run.name.endswith("-interrupted")
    assert json.loads((run / "status.json").read_text())["state"] == "interrupted"
    assert not (run / "metrics.json").exists()
    assert (run / "checkpoints" / "last.keras").exists()  # resumable


def test_medml_writes_only_into_the_runs_dir_and_output(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    config = work / "exp.yaml"
    config.write_text((CONFIGS / "diabetes_ridge.yaml").read_text())
    before = {p for p in tmp_path.rglob("*")}
    env = {**os.environ, "MPLCONFIGDIR": str(tmp_path / "mpl-cache")}
    result = subprocess.run([sys.executable, "-m", "medml_cli", "train", str(config),
                             "--runs-dir", str(work / "runs")], cwd=work, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    created = {p for p in tmp_path.rglob("*")} - before
    outside = [p for p in created if not p.is_relative_to(work / "runs")
               and not p.is_relative_to(tmp_path / "mpl-cache")]
    assert outside == []
