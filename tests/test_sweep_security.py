"""Sweep safety: absurd sizes are refused before anything is built, one sweep folder is run by
one process at a time, and SIGTERM stops every trial process as Ctrl-C does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medml_cli.runs.directory import pid_alive
from tests.conftest import run_cli

MEDML = [sys.executable, "-m", "medml_cli"]

FAST = """\
task: diabetes
model: {type: ridge}
evaluation: {bootstrap: 0, plots: false}
sweep:
  name: fast
  seeds: [0, 1]
"""

# ~3000 trees x 5 folds: far longer than the tests wait, so trials are mid-run when signalled
SLOW = """\
task: diabetes
model: {type: random-forest, n_estimators: 3000}
evaluation: {bootstrap: 0, plots: false}
sweep:
  name: slow
  seeds: [0, 1]
"""


def write(folder: Path, text: str, name: str = "s.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def manifest(sweep_dir: Path) -> dict:
    try:
        return json.loads((sweep_dir / "sweep.json").read_text())
    except (OSError, ValueError):  # not written yet, or mid-replace
        return {}


def wait_for(condition, what: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            pytest.fail(f"the sweep exited ({proc.returncode}) before {what}: "
                        f"{proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the sweep and everything in its session (like kill -9 of the job)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def live_processes_mentioning(text: str) -> list[int]:
    """Pids (not zombies) whose command line mentions ``text``, e.g. a sweep folder."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().decode("utf-8", "replace")
        except OSError:
            continue
        if text in command and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


# --------------------------------------------------------------------------- sizes
def test_a_hundred_million_point_grid_is_refused_before_it_is_built(tmp_path: Path) -> None:
    values = ", ".join(str(v) for v in range(1, 101))
    keys = ("model.alpha", "seed", "split.n_splits", "evaluation.bootstrap")
    path = write(tmp_path, "task: diabetes\nmodel: {type: ridge}\nsweep:\n  grid:\n"
                 + "".join(f"    {key}: [{values}]\n" for key in keys))
    runs = tmp_path / "runs"
    # before the fix this built 10^8 dicts first: a MemoryError (exit 1)
    result = run_cli("sweep", path, "--runs-dir", runs)
    assert result.exit_code == 2, result.stderr
    message = " ".join(result.stderr.split())
    for part in ("100,000,000 trials", "sweep.grid.model.alpha (100 values) x sweep.grid.seed "
                 "(100 values) x sweep.grid.split.n_splits", "limit of 10,000", "Fix:"):
        assert part in message, message
    assert "Traceback" not in result.stderr and not runs.exists()
    result = run_cli("sweep", path, "--dry-run")  # --dry-run counts the same way
    assert result.exit_code == 2 and "100,000,000 trials" in result.stderr


@pytest.mark.parametrize("block, expected", [
    # each factor is allowed on its own; their product is not
    ("grid: {model.alpha: [VALUES]}\n  random: {trials: 1000, parameters: "
     "{split.n_splits: {distribution: int-uniform, low: 2, high: 9}}}\n  seeds: [0, 1]",
     ["200,000 trials", "sweep.grid.model.alpha (100 values)", "sweep.random.trials (1,000)",
      "sweep.seeds (2)"]),
    ("random: {trials: 100000000, parameters: {model.alpha: "
     "{distribution: uniform, low: 0, high: 1}}}",
     ["sweep.random.trials", "100000000 random trials", "limit of 10,000", "Fix:"]),
])
def test_absurd_random_searches_are_refused(tmp_path: Path, block: str, expected: list[str]
                                            ) -> None:
    block = block.replace("VALUES", ", ".join(str(v) for v in range(1, 101)))
    path = write(tmp_path, f"task: diabetes\nmodel: {{type: ridge}}\nsweep:\n  {block}\n")
    result = run_cli("sweep", path, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2, result.stderr
    message = " ".join(result.stderr.split())
    for part in expected:
        assert part in message, message
    assert "Traceback" not in result.stderr and not (tmp_path / "runs").exists()


# --------------------------------------------------------------------------- one process
def pending_sweep(tmp_path: Path, text: str = FAST) -> Path:
    """A sweep folder whose two trials all still have to run (each timed out at once)."""
    result = run_cli("--quiet", "sweep", write(tmp_path, text), "--runs-dir",
                     tmp_path / "runs", "--timeout", "0.001")
    assert result.exit_code == 1, result.stderr
    return Path(result.last_line)


@pytest.mark.slow
def test_a_second_resume_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    # trials of seconds: a warm ridge trial can finish while the second resume is refused
    sweep_dir = pending_sweep(tmp_path, SLOW.replace("3000", "600"))
    holder = subprocess.Popen([*MEDML, "--quiet", "sweep", "--resume", str(sweep_dir)],
                              start_new_session=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: manifest(sweep_dir).get("pid") == holder.pid and any(
            t["status"] == "running" for t in manifest(sweep_dir)["trials"]),
            "the first resume started a trial", holder)
        before = manifest(sweep_dir)
        second = subprocess.run([*MEDML, "sweep", "--resume", str(sweep_dir)],
                                capture_output=True, text=True, timeout=120)
        assert holder.poll() is None, "the first resume ended before the check: inconclusive"
    finally:
        kill_group(holder)  # the holder and its trial, like kill -9 of the job
        holder.stdout.close()
        holder.stderr.close()
    assert second.returncode == 2, second.stderr
    message = " ".join(second.stderr.split())
    for part in (f"{sweep_dir} is in use by another medml sweep", f"pid {holder.pid}",
                 "started 20", "run the same trials twice", f"kill {holder.pid}",
                 f"medml sweep --resume {sweep_dir}"):
        assert part in message, message
    assert "Traceback" not in second.stderr
    # the refused process changed nothing: the holder's trial is still recorded as running
    after = manifest(sweep_dir)
    assert [t["status"] for t in after["trials"]] == [t["status"] for t in before["trials"]]
    assert after["pid"] == holder.pid

    killed = [t["pid"] for t in after["trials"] if t["status"] == "running"]
    deadline = time.monotonic() + 10  # SIGKILL is delivered asynchronously
    while any(pid_alive(p) for p in killed) and time.monotonic() < deadline:
        time.sleep(0.05)
    # the kernel released the dead holder's lock: a resume runs, and each trial runs once
    result = run_cli("--quiet", "sweep", "--resume", sweep_dir, "--workers", "2", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["counts"]["completed"] == 2
    completed = [p for p in (sweep_dir / "trials").iterdir()
                 if not p.name.startswith(".") and (p / "metrics.json").exists()]
    assert sorted(p.name for p in completed) == sorted(
        Path(t["run_dir"]).name for t in data["trials"])


@pytest.mark.slow
def test_two_resumes_started_together_run_each_trial_once(tmp_path: Path) -> None:
    # the race the manifest's own pid could not close: both read it before either wrote it
    sweep_dir = pending_sweep(tmp_path)
    procs = [subprocess.Popen([*MEDML, "--quiet", "sweep", "--resume", str(sweep_dir)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outputs
    refused = next(err for p, (_, err) in zip(procs, outputs, strict=True) if p.returncode == 2)
    assert "in use by another medml sweep" in refused and "Traceback" not in refused
    runs = [p for p in (sweep_dir / "trials").iterdir()]
    assert len(runs) == 2 and all((p / "metrics.json").exists() for p in runs)  # once each
    assert manifest(sweep_dir)["counts"]["completed"] == 2


def test_a_stale_lock_file_does_not_block(tmp_path: Path) -> None:
    sweep_dir = pending_sweep(tmp_path)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    # what a killed sweep leaves: its details in the file, but no process holding the flock
    (sweep_dir / "sweep.lock").write_text(json.dumps(
        {"pid": gone.pid, "host": os.uname().nodename, "started": "2026-01-01T00:00:00"}))
    data = manifest(sweep_dir)
    data.update(state="running", pid=gone.pid)  # and a manifest that says it is running
    (sweep_dir / "sweep.json").write_text(json.dumps(data))
    result = run_cli("--quiet", "sweep", "--resume", sweep_dir, "--timeout", "0.001", "--json")
    assert result.exit_code == 1, result.stderr  # it ran (the trials timed out again)
    assert "in use" not in result.stderr
    trials = json.loads(result.stdout)["trials"]
    assert all("timed out" in t["error"] for t in trials)
    assert (sweep_dir / "sweep.lock").read_text() == ""  # released: no holder named


# --------------------------------------------------------------------------- SIGTERM
def trial_pids(sweep_dir: Path) -> set[int]:
    """Every trial process pid the sweep folder records: manifest and run folders."""
    pids = {t["pid"] for t in manifest(sweep_dir).get("trials", []) if t.get("pid")}
    for status in (sweep_dir / "trials").glob("*/status.json"):
        pids.add(json.loads(status.read_text())["pid"])
    return pids


def trials_inside_their_runs(sweep_dir: Path, n: int) -> bool:
    """n trials have made their run folder and started training in it."""
    logs = list((sweep_dir / "trials").glob(".tmp-*/log.txt")) if sweep_dir.exists() else []
    return len([log for log in logs if "task diabetes" in log.read_text()]) == n


def sigterm_mid_sweep(tmp_path: Path, *args: str) -> tuple[Path, subprocess.Popen, str]:
    runs = tmp_path / "runs"
    proc = subprocess.Popen([*MEDML, "sweep", str(write(tmp_path, SLOW)), "--runs-dir",
                             str(runs), "--workers", "2", *args], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: list(runs.glob("*-sweep-slow/sweep.json")), "the sweep folder", proc)
        (sweep_dir,) = runs.glob("*-sweep-slow")
        wait_for(lambda: trials_inside_their_runs(sweep_dir, 2), "both trials training", proc)
        proc.send_signal(signal.SIGTERM)  # to the sweep only, as `kill` or a scheduler does
        _, err = proc.communicate(timeout=120)
    finally:
        kill_group(proc)
    return sweep_dir, proc, err


def assert_stopped_and_resumable(sweep_dir: Path, proc: subprocess.Popen, err: str) -> None:
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM)" in err and f"--resume {sweep_dir}" in err, err
    assert "Traceback" not in err
    pids = trial_pids(sweep_dir)
    assert len(pids) == 2
    # nothing of the sweep outlives it: not the trials, nor anything naming its folder
    assert [p for p in pids if pid_alive(p)] == []
    assert live_processes_mentioning(str(sweep_dir)) == []
    data = manifest(sweep_dir)
    assert data["state"] == "interrupted"
    assert [t["status"] for t in data["trials"]] == ["interrupted", "interrupted"]
    for trial in data["trials"]:  # each stopped cleanly: its run says so, with no metrics
        run = sweep_dir / trial["run_dir"]
        assert run.name.endswith("-interrupted"), run
        assert json.loads((run / "status.json").read_text())["state"] == "interrupted"
        assert not (run / "metrics.json").exists()
    # --resume runs them again (here with a timeout, so the test stays short)
    result = run_cli("--quiet", "sweep", "--resume", sweep_dir, "--timeout", "0.001", "--json")
    assert result.exit_code == 1, result.stderr
    for trial in manifest(sweep_dir)["trials"]:
        assert trial["status"] == "failed" and "timed out" in trial["error"]
        assert [a["status"] for a in trial["attempts"]] == ["interrupted"]


@pytest.mark.slow
def test_sigterm_stops_every_trial_of_a_local_sweep(tmp_path: Path) -> None:
    assert_stopped_and_resumable(*sigterm_mid_sweep(tmp_path))


@pytest.mark.slow
def test_sigterm_stops_every_trial_of_a_dask_local_cluster_sweep(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    assert_stopped_and_resumable(*sigterm_mid_sweep(tmp_path, "--executor", "dask"))
