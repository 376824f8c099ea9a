"""Running trials: one ``medml train`` process per trial, on a local pool or a Dask cluster, and
stopping every trial's process tree on Ctrl-C / SIGTERM.

A trial's process is forked from a warm server that has imported medml already
(:mod:`medml_cli.sweep.warm`), or, with ``warm`` off or without ``fork()``, a fresh
interpreter; either way it is its own process running ``medml --quiet train ... --json``."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medml_cli.errors import MedmlUsageError
from medml_cli.sweep.manifest import _utc_now
from medml_cli.sweep.warm import WarmProcess, WarmServer, WarmUnavailable, shared_server


def trial_argv(config_path: Path | str, trials_dir: Path | str, tid: str) -> list[str]:
    """The ``medml`` arguments of one trial: an ordinary ``medml train``."""
    return ["--quiet", "train", str(config_path), "--runs-dir", str(trials_dir),
            "--name", f"t-{tid}", "--json"]


def trial_command(config_path: Path | str, trials_dir: Path | str, tid: str) -> list[str]:
    """The command that runs one trial in a fresh interpreter."""
    return [sys.executable, "-m", "medml_cli", *trial_argv(config_path, trials_dir, tid)]


def trial_env(threads: int | None) -> dict[str, str]:
    """The environment of a trial process (and of the warm server its children fork from):
    this medml_cli importable, and BLAS thread pools capped to ``threads``."""
    env = dict(os.environ)
    # the child must import the same medml_cli as this process, installed or not
    package_parent = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH"))
                                        if p)
    if threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, str(threads))
    return env


def _error_summary(stderr: str) -> str:
    """The message of a failed trial: its first line, joined to the next when that only
    introduces a list (``error: invalid config X:``)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("Traceback", "File "))] or lines
    if not lines:
        return ""
    text = re.sub(r"^(error|failed|internal error): ", "", lines[0])
    if text.endswith(":") and len(lines) > 1:
        text += " " + lines[1].lstrip("- ")
    return text[:500]


def _find_run_dir(trials_dir: Path, tid: str, known: set[str]) -> Path | None:
    """The run folder a trial's process left, when it did not print it (failures)."""
    candidates = [p for p in trials_dir.glob(f"*t-{tid}-*") if p.is_dir() and p.name not in known]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


#: A terminal's Ctrl-C (or a scheduler's SIGTERM to the whole job) reaches the trials too:
#: they get this long to stop on their own before the sweep signals them, since a second
#: signal inside ``medml train``'s clean-up could keep it from renaming its run.
OWN_STOP_WAIT = 1.0
#: Then SIGTERM, and this long to stop cleanly before the trial and its children are killed.
STOP_GRACE = 10.0


def _process_tree(pid: int) -> list[Any]:
    """psutil handles of ``pid`` and its descendants. Taken while the parent lives: once it
    dies its children are re-parented and can no longer be found from it."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _running(proc: Any) -> bool:
    import psutil

    try:  # is_running() also compares start times, so a reused pid is not mistaken for it
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stop_trial_processes(pids: list[int], *, own_wait: float = OWN_STOP_WAIT,
                         grace: float = STOP_GRACE) -> None:
    """Stop trial processes and every process they started, for certain: give them
    ``own_wait`` s to stop on their own, then SIGTERM (``medml train`` stops as on Ctrl-C and
    renames its run ``-interrupted``; unlike SIGINT it is not ignored by trials of a sweep
    started in the background), then after ``grace`` s SIGKILL whatever is left of each
    process tree. A Ctrl-C while waiting skips straight to the kill."""
    import psutil

    roots = [tree[0] for pid in pids if (tree := _process_tree(pid))]
    known: dict[int, Any] = {}

    def collect() -> None:
        for root in roots:
            if _running(root):
                for proc in _process_tree(root.pid):
                    known.setdefault(proc.pid, proc)

    def wait(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while any(_running(r) for r in roots) and time.monotonic() < deadline:
            time.sleep(0.05)

    try:
        collect()
        wait(own_wait)
        collect()
        for root in roots:
            if _running(root):
                with contextlib.suppress(psutil.Error):
                    root.send_signal(signal.SIGTERM)
        wait(grace)
    finally:
        collect()
        for proc in known.values():
            if _running(proc):
                with contextlib.suppress(psutil.Error):
                    proc.kill()


def _kill_tree(pid: int) -> None:
    stop_trial_processes([pid], own_wait=0, grace=0)


TrialProcess = subprocess.Popen | WarmProcess


def _watch_abort(proc: TrialProcess, marker: str) -> threading.Event:
    """Stop ``proc`` once the file ``marker`` exists (how an interrupted sweep reaches trials
    on Dask workers, which may be other machines sharing the folder). Set the returned event
    when the trial has ended."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            if os.path.exists(marker):
                stop_trial_processes([proc.pid])
                return

    threading.Thread(target=watch, name=f"medml-abort-{proc.pid}", daemon=True).start()
    return done


def _start_trial(task: dict[str, Any], server: WarmServer | None) -> tuple[TrialProcess, str]:
    """The trial's process, forked warm when ``task["warm"]`` (from ``server``, or this
    process's shared one), else fresh; and a note for the log when warm had to fall back."""
    env = trial_env(task.get("threads"))
    if task.get("warm"):
        try:
            warm = server if server is not None else shared_server(env)
            return warm.start(trial_argv(task["config"], task["trials_dir"], task["id"])), ""
        except WarmUnavailable as exc:
            note = f"--- {exc}; this trial ran in a fresh interpreter\n"
    else:
        note = ""
    proc = subprocess.Popen(trial_command(task["config"], task["trials_dir"], task["id"]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return proc, note


def execute_trial(task: dict[str, Any], on_start: Callable[[TrialProcess], None] | None = None,
                  server: WarmServer | None = None) -> dict[str, Any]:
    """Run one trial's process to the end and describe the outcome (never raises for a
    failing trial). ``task`` holds id, config, trials_dir, log, timeout, threads, known,
    warm, and optionally ``abort``: a file whose appearance stops the trial."""
    tid = task["id"]
    trials_dir = Path(task["trials_dir"])
    started, t0 = _utc_now(), time.perf_counter()
    proc, note = _start_trial(task, server)
    if on_start is not None:
        on_start(proc)
    ended = _watch_abort(proc, task["abort"]) if task.get("abort") else threading.Event()
    timed_out = False
    try:
        out, err = proc.communicate(timeout=task.get("timeout"))
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_tree(proc.pid)  # its children too: one holding the pipes would hang us
        out, err = proc.communicate()
    except BaseException:
        stop_trial_processes([proc.pid])
        proc.communicate()
        raise
    finally:
        ended.set()
    result: dict[str, Any] = {
        "id": tid, "returncode": proc.returncode, "pid": proc.pid, "host": socket.gethostname(),
        "started": started, "ended": _utc_now(),
        "seconds": round(time.perf_counter() - t0, 3), "error": None, "run_dir": None,
        "metrics": None, "intervals": None,
    }
    if task.get("log"):
        with contextlib.suppress(OSError), open(task["log"], "a", encoding="utf-8") as handle:
            handle.write(f"{note}--- trial {tid} started {started}, exit code {proc.returncode}\n"
                         f"--- stdout\n{out}--- stderr\n{err}")
    payload = None
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                payload = json.loads(line)
            break
    if proc.returncode == 0 and isinstance(payload, dict) and payload.get("run_dir"):
        result.update(status="completed", run_dir=payload["run_dir"],
                      metrics=payload.get("metrics"), intervals=payload.get("intervals"))
        return result
    found = _find_run_dir(trials_dir, tid, set(task.get("known") or ()))
    result["run_dir"] = str(found) if found else None
    if timed_out:
        result.update(status="failed", error=f"timed out after {task['timeout']:g} s; the "
                                             "trial's process was killed")
    elif proc.returncode in (130, 143, -signal.SIGINT, -signal.SIGTERM, -signal.SIGKILL):
        result.update(status="interrupted",
                      error=_error_summary(err) or f"killed (exit code {proc.returncode})")
    else:
        result.update(status="failed",
                      error=_error_summary(err) or f"exit code {proc.returncode}")
    return result


def _dask_trial(task: dict[str, Any]) -> dict[str, Any]:
    """Dask task: skip if the sweep has stopped (fail-fast), else run the trial process."""
    from distributed import Event, get_worker

    worker = get_worker()
    if Event(task["stop_event"]).is_set() or os.path.exists(task["abort"]):
        return {"id": task["id"], "status": "cancelled"}
    result = execute_trial(task)
    result["worker"] = worker.address
    return result


def _warm_up_worker(threads: int | None) -> None:
    """Dask ``client.run`` target: start this worker's warm server now, so its imports overlap
    the submission of the trials instead of delaying the worker's first one."""
    shared_server(trial_env(threads))


def connect_dask(workers: int, scheduler: str | None) -> tuple[Any, Any]:
    """A ``distributed.Client``: to ``scheduler`` (address or scheduler file), or to a
    LocalCluster of ``workers`` single-threaded worker processes started here. Returns
    (client, cluster or None); the caller closes both."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise MedmlUsageError("--executor dask needs dask.distributed: pip install "
                              "'dask[distributed]'") from None
    if scheduler is None:
        import logging

        # worker threads in this process: each trial is its own process (forked from the
        # session's warm server), so a worker only waits on it; worker processes would each
        # cost an interpreter start and a warm server of their own before the first trial
        # CRITICAL: the workers share this process, so while a stopped sweep (Ctrl-C,
        # SIGTERM) closes the cluster, a worker's heartbeat to the closing scheduler would
        # print a traceback on the sweep's stderr; a failed task still reaches the sweep as
        # its future's exception, and a trial's failure as its own result
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=False,
                               protocol="tcp", dashboard_address=None,
                               silence_logs=logging.CRITICAL)
        return Client(cluster), cluster
    try:
        # the connect timeout is dask's distributed.comm.timeouts.connect (default 30 s)
        if Path(scheduler).is_file():
            return Client(scheduler_file=scheduler), None
        return Client(scheduler), None
    except (OSError, TimeoutError, ValueError) as exc:
        raise MedmlUsageError(f"cannot connect to the Dask scheduler {scheduler}: {exc}. "
                              "Check the address (tcp://host:8786) or the scheduler file."
                              ) from None
