"""Running a sweep: ``run_sweep`` (a new sweep or ``--resume``), the session loop that starts
trials on an executor, records them in the manifest and stops them on Ctrl-C / SIGTERM.

See :mod:`medml_cli.sweep` for the sweep file, the executors and resume."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any, Literal

from medml_cli.errors import MedmlUsageError, RunNotUsableError
from medml_cli.runs.directory import pid_alive
from medml_cli.runs.records import read_metrics
from medml_cli.sweep.executors import (
    OWN_STOP_WAIT,
    STOP_GRACE,
    TrialProcess,
    _dask_trial,
    _kill_tree,
    _process_tree,
    _warm_up_worker,
    connect_dask,
    execute_trial,
    stop_trial_processes,
    trial_env,
)
from medml_cli.sweep.lock import SweepBusyError, SweepLock
from medml_cli.sweep.manifest import (
    Manifest,
    _completed_run,
    _create,
    _rel,
    _trial_config_text,
    _trial_process_alive,
    _utc_now,
    count_states,
    leaderboard,
    read_manifest,
    write_summary,
)
from medml_cli.sweep.spec import ProgressFn, Sweep, SweepResult
from medml_cli.sweep.warm import WarmServer, close_shared_servers, warm_wanted


def _prepare_resume(path: Path, *, locked: bool = True) -> dict[str, Any]:
    """Read a sweep folder's manifest and decide which trials must run again. The caller
    holds the folder's :class:`SweepLock` (``locked``); without flock support the manifest's
    own pid is the only sign of a sweep still running."""
    path = Path(path)
    manifest = read_manifest(path)
    here = socket.gethostname()
    if not locked and manifest.get("state") == "running" and manifest.get("host") == here \
            and pid_alive(manifest.get("pid")):
        raise SweepBusyError(f"sweep {path.name} is still running (pid {manifest['pid']}); "
                             "wait for it or stop it before resuming.")
    for trial in manifest["trials"]:
        text = _trial_config_text(path, trial)
        run_dir = path / trial["run_dir"] if trial.get("run_dir") else None
        if trial["status"] == "completed" and run_dir is not None and _completed_run(run_dir):
            continue
        if trial["status"] == "running" and _trial_process_alive(trial):
            raise SweepBusyError(
                f"trial {trial['id']} of sweep {path.name} is still running as pid "
                f"{trial['pid']} (left by the stopped sweep); wait for it or kill it, then "
                "resume.")
        # a trial that finished after its sweep was killed left a complete run: adopt it
        adopted = [p for p in (path / "trials").glob(f"*-t-{trial['id']}-*")
                   if not p.name.startswith(".") and _completed_run(p, text)]
        best = max(adopted, key=lambda p: p.stat().st_mtime) if adopted else None
        metrics = None
        if best is not None:
            with contextlib.suppress(RunNotUsableError):  # damaged: run the trial again
                metrics = read_metrics(best)
        if best is not None and metrics is not None:
            trial.update(status="completed", run_dir=_rel(best, path), error=None,
                         metrics=metrics.metrics, intervals=metrics.intervals)
            continue
        if trial["status"] == "running":
            trial["status"] = "interrupted"
            trial["error"] = trial.get("error") or "the sweep stopped while this trial ran"
        if trial["status"] != "pending":
            trial["attempts"].append({k: trial.get(k) for k in
                                      ("status", "run_dir", "error", "started", "ended")})
        trial["status"] = "pending"
    return manifest


def run_sweep(
    sweep: Sweep | None = None,
    *,
    runs_dir: Path = Path("runs"),
    executor: Literal["local", "dask"] = "local",
    workers: int = 1,
    scheduler: str | None = None,
    resume: Path | None = None,
    fail_fast: bool = False,
    timeout: float | None = None,
    progress: ProgressFn | None = None,
    warm: bool | None = None,
) -> SweepResult:
    """Run every trial of ``sweep`` (or the unfinished ones of the sweep folder ``resume``)
    in separate processes; write the manifest, summary.csv and leaderboard.

    Trial processes are forked from a warm server (:mod:`medml_cli.sweep.warm`) unless
    ``warm`` is False, ``MEDML_SWEEP_FRESH=1`` is set, or the platform has no ``fork()``;
    then each is a fresh interpreter.

    A failing trial is recorded and the rest go on (unless ``fail_fast``). Ctrl-C marks the
    running trials interrupted, leaves the rest pending, and re-raises KeyboardInterrupt.
    """
    if (sweep is None) == (resume is None):
        raise MedmlUsageError("give either a sweep (a sweep file) or resume=SWEEP_DIR")
    if executor not in ("local", "dask"):
        raise MedmlUsageError(f"unknown executor '{executor}'; use local or dask")
    if workers < 1:
        raise MedmlUsageError(f"workers must be at least 1, got {workers}")
    if timeout is not None and timeout <= 0:
        raise MedmlUsageError(f"timeout must be positive, got {timeout}")
    with contextlib.ExitStack() as stack:
        if resume is not None:
            path = Path(resume).resolve()
            read_manifest(path)  # a folder that is not a sweep gets no lock file
            lock = stack.enter_context(SweepLock(path))  # before reading what to run
            data = _prepare_resume(path, locked=lock.supported)
        client, cluster = connect_dask(workers, scheduler) if executor == "dask" \
            else (None, None)
        if cluster is not None:  # its workers are threads here, sharing one warm server
            stack.callback(close_shared_servers)
            stack.callback(_close_quietly, cluster)
        if client is not None:
            stack.callback(_close_quietly, client)  # the client first (LIFO)
        if sweep is not None:
            path, data = _create(sweep, Path(runs_dir))
            stack.enter_context(SweepLock(path))  # a fresh folder: nobody else holds it
        return _run(path, data, client, executor=executor, workers=workers,
                    scheduler=scheduler, resumed=resume is not None, fail_fast=fail_fast,
                    timeout=timeout, progress=progress, warm=warm_wanted(warm))


def _close_quietly(resource: Any) -> None:
    with contextlib.suppress(Exception):
        resource.close()


def _run(path: Path, data: dict[str, Any], client: Any, *, executor: str, workers: int,
         scheduler: str | None, resumed: bool, fail_fast: bool, timeout: float | None,
         progress: ProgressFn | None, warm: bool) -> SweepResult:
    # trials sharing this machine get an even share of its cores (not on a remote cluster)
    threads = max(1, (os.cpu_count() or 1) // workers) \
        if workers > 1 and (executor == "local" or scheduler is None) else None
    data.update(state="running", pid=os.getpid(), host=socket.gethostname(),
                executor={"kind": executor, "workers": workers, "scheduler": scheduler,
                          "timeout": timeout, "threads_per_trial": threads,
                          "processes": "warm" if warm else "fresh"})
    data["sessions"].append({"started": _utc_now(), "ended": None, "executor": executor,
                             "workers": workers, "resumed": resumed})
    manifest = Manifest(path / "sweep.json", data)
    manifest.save()
    todo = [t for t in data["trials"] if t["status"] != "completed"]
    runner = _SweepRunner(manifest, path, todo, fail_fast=fail_fast, timeout=timeout,
                          threads=threads, progress=progress, warm=warm)
    state = "interrupted"
    try:
        if executor == "local":
            runner.run_local(workers)
        else:
            runner.run_dask(client)
        state = "completed" if all(t["status"] == "completed" for t in data["trials"]) \
            else "failed"
    except BaseException as exc:
        exc.sweep_path = path  # type: ignore[attr-defined]  # the CLI says how to resume
        raise
    finally:
        with manifest.lock:
            for trial in data["trials"]:
                if trial["status"] == "running":  # only after Ctrl-C or a crash of ours
                    trial.update(status="interrupted", ended=_utc_now(),
                                 error=trial.get("error") or "the sweep was interrupted")
            data["state"] = state
            data["sessions"][-1]["ended"] = _utc_now()
            data["leaderboard"] = leaderboard(data)
            manifest.save()
        write_summary(path, data)
    return SweepResult(path=path, manifest=data, counts=count_states(data["trials"]),
                       leaderboard=data["leaderboard"])


class _SweepRunner:
    """Drives the trials of one sweep session through an executor."""

    def __init__(self, manifest: Manifest, path: Path, todo: list[dict[str, Any]], *,
                 fail_fast: bool, timeout: float | None, threads: int | None,
                 progress: ProgressFn | None, warm: bool = False) -> None:
        self.manifest = manifest
        self.path = path
        self.todo = todo
        self.fail_fast = fail_fast
        self.timeout = timeout
        self.threads = threads
        self.progress = progress
        self.warm = warm
        self.done = len(manifest.data["trials"]) - len(todo)
        self.total = len(manifest.data["trials"])

    def task(self, trial: dict[str, Any]) -> dict[str, Any]:
        known = [Path(a["run_dir"]).name for a in trial["attempts"] if a.get("run_dir")]
        return {"id": trial["id"], "config": str(self.path / trial["config"]),
                "trials_dir": str(self.path / "trials"),
                "log": str(self.path / "logs" / f"{trial['id']}.log"),
                "timeout": self.timeout, "threads": self.threads, "known": known,
                "warm": self.warm}

    def record(self, result: dict[str, Any]) -> bool:
        """Store a finished trial; True when the sweep should stop (fail-fast)."""
        fields = {k: result.get(k) for k in ("status", "error", "host", "pid", "started",
                                             "ended", "seconds", "metrics", "intervals")}
        fields["run_dir"] = _rel(result.get("run_dir"), self.path)
        if result.get("worker") is not None:
            fields["worker"] = result["worker"]
        self.manifest.update(result["id"], **fields)
        self.done += 1
        if self.progress:
            self.progress(self.done, self.total, f"trial {result['id']} {result['status']}")
        return self.fail_fast and result["status"] != "completed"

    def _report_start(self) -> None:
        if self.progress:
            self.progress(self.done, self.total, f"{self.done}/{self.total} trials")

    # ----------------------------------------------------------------- local threads
    def run_local(self, workers: int) -> None:
        from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

        stop = threading.Event()  # start no more trials (fail-fast, Ctrl-C)
        abort = threading.Event()  # and kill the running ones (Ctrl-C)
        procs: dict[str, TrialProcess] = {}
        # one warm server for this session's trials, importing while the first is prepared
        server = WarmServer(trial_env(self.threads)) if self.warm and self.todo else None

        def work(trial: dict[str, Any]) -> dict[str, Any] | None:
            if stop.is_set():
                return None

            def on_start(proc: TrialProcess) -> None:
                procs[trial["id"]] = proc
                if abort.is_set():  # Ctrl-C came between the check above and this start
                    _kill_tree(proc.pid)
                self.manifest.update(trial["id"], status="running", pid=proc.pid,
                                     host=socket.gethostname(), started=_utc_now(),
                                     worker=threading.current_thread().name, error=None,
                                     run_dir=None, ended=None)

            try:
                return execute_trial(self.task(trial), on_start=on_start, server=server)
            finally:
                procs.pop(trial["id"], None)

        self._report_start()
        queue = iter(self.todo)
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="local")
        running: set[Future] = set()

        def submit_next() -> None:
            # one trial per free worker: with fail-fast nothing new starts after a failure
            trial = next(queue, None)
            if trial is not None and not stop.is_set():
                running.add(pool.submit(work, trial))

        try:
            for _ in range(workers):
                submit_next()
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    running.discard(future)
                    result = future.result()
                    if result is not None and self.record(result):
                        stop.set()
                    submit_next()
        except BaseException:
            stop.set()
            abort.set()
            # every running trial and its children are gone before the sweep records them
            stop_trial_processes([proc.pid for proc in list(procs.values())])
            pool.shutdown(wait=True, cancel_futures=True)
            for future in running:  # keep what the stopped trials said (run folder, error)
                if future.done() and not future.cancelled() and future.exception() is None \
                        and future.result() is not None:
                    with contextlib.suppress(Exception):
                        self.record(future.result())
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if server is not None:
                server.close()

    # ----------------------------------------------------------------- dask
    def run_dask(self, client: Any) -> None:
        from distributed import Event, as_completed

        stop_name = f"medml-sweep-stop-{uuid.uuid4().hex}"
        # Ctrl-C/SIGTERM: a file every worker sees (they share the folder) and watches
        abort = self.path / f".abort-{uuid.uuid4().hex}"
        futures: dict[Any, dict[str, Any]] = {}
        try:
            stop = Event(stop_name, client=client)
            if self.warm and self.todo:  # workers that join later start theirs on first use
                with contextlib.suppress(Exception):
                    client.run(_warm_up_worker, self.threads)
            self._report_start()
            for trial in self.todo:
                spec = {**self.task(trial), "stop_event": stop_name, "abort": str(abort)}
                key = f"medml-trial-{trial['id']}-{uuid.uuid4().hex[:8]}"
                futures[client.submit(_dask_trial, spec, key=key, pure=False)] = trial
                # dask does not tell the client when a task starts: "running" means submitted
                self.manifest.update(trial["id"], status="running", error=None, run_dir=None,
                                     worker=None, pid=None, started=None, ended=None)
            for future in as_completed(list(futures)):
                trial = futures[future]
                try:
                    result = future.result()
                except CancelledError:
                    self.manifest.update(trial["id"], status="pending")
                    continue
                except Exception as exc:  # the worker died, or the task could not run
                    result = {"id": trial["id"], "status": "failed", "ended": _utc_now(),
                              "error": f"dask: {type(exc).__name__}: {exc}"[:500]}
                if result.get("status") == "cancelled":
                    self.manifest.update(trial["id"], status="pending")
                    continue
                if self.record(result) and not stop.is_set():
                    stop.set()  # queued tasks see it and return without starting
        except BaseException:
            self._abort_dask(client, stop_name, abort, list(futures))
            raise
        finally:
            abort.unlink(missing_ok=True)

    def _abort_dask(self, client: Any, stop_name: str, abort: Path, futures: list[Any]) -> None:
        """Stop every trial of an interrupted Dask sweep: queued ones never start, running
        ones see the abort file and stop their process tree, and the sweep waits for them
        (a worker closed under a running trial would leave it orphaned)."""
        from distributed import Event, wait

        try:
            with contextlib.suppress(Exception):
                Event(stop_name, client=client).set()
            abort.touch()
            with contextlib.suppress(Exception):
                wait(futures, timeout=OWN_STOP_WAIT + STOP_GRACE + 5)
            for future in futures:  # keep what the stopped trials said (run folder, error)
                with contextlib.suppress(Exception):
                    result = future.result(timeout=1) if future.status == "finished" else {}
                    if result.get("status") not in (None, "cancelled") and \
                            self.manifest.by_id[result["id"]]["status"] == "running":
                        self.record(result)
        finally:
            with contextlib.suppress(Exception):
                client.cancel(futures)
            # a LocalCluster's trials are our descendants: none may outlive the sweep
            stop_trial_processes(self._local_trial_pids(), own_wait=0, grace=2)

    def _local_trial_pids(self) -> list[int]:
        """Trial processes of this sweep among this process's descendants."""
        import psutil

        trials_dir = str(self.path / "trials")
        # a warm trial runs under its server's command line, named t-<id> (/proc/PID/comm)
        names = {f"t-{trial['id']}" for trial in self.todo}
        pids = []
        for proc in _process_tree(os.getpid())[1:]:
            with contextlib.suppress(psutil.Error):
                command = proc.cmdline()
                if proc.name() in names or ("medml_cli" in command and "train" in command
                                            and trials_dir in command):
                    pids.append(proc.pid)
        return pids
