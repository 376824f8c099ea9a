"""Warm trial processes: a small fork server that imports medml, pandas and scikit-learn once
and forks one child per trial, so a sweep stops paying an interpreter's start-up per trial.

The server (``python -m medml_cli.sweep.warm FD``) is started by a sweep (one per session on
the local pool, one per Dask worker process) with the trials' environment, imports
:data:`PRELOAD`, and then waits on a Unix socket. For each request it ``fork()``s a child
that closes the server's files, takes the trial's stdout/stderr files as fds 1 and 2, puts
back the signal handlers a fresh interpreter has, and runs ``medml_cli`` as ``python -m
medml_cli ARGV`` would (:func:`runpy.run_module`); the child leaves through the normal
interpreter exit, so its exit status is the command's exit code. The child is an ordinary
process of its own: it can be signalled, killed with its process tree, and gives back all
its memory when it ends. The server reaps it and reports its pid and exit status through a
pipe the trial's caller reads (:class:`WarmProcess`).

The server itself ignores SIGINT and SIGTERM (a terminal's Ctrl-C reaches the whole process
group; the trials handle it, the server must outlive them to report their exit status) and
ends when the sweep closes its socket or dies. Nothing in it starts threads: ``fork()`` in a
single-threaded process is safe, and OpenBLAS/OpenMP pools are either not started or shut
down around ``fork()`` by their own at-fork handlers. TensorFlow is never imported here;
image trials import it in their child, as a fresh process would.

``MEDML_SWEEP_FRESH=1`` (or ``run_sweep(warm=False)``, ``medml sweep --fresh-processes``)
goes back to one fresh interpreter per trial; so does a platform without ``fork()``.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

#: Set to 1 to run every trial in a fresh interpreter, as before warm processes.
FRESH_ENV = "MEDML_SWEEP_FRESH"

#: What ``medml train`` of a tabular config imports, named as strings: the sweep layer starts
#: the command line as a process (``python -m medml_cli``) and does not import it as code.
PRELOAD = (
    "numpy", "pandas", "scipy.stats", "yaml", "pydantic", "rich.console", "rich.table",
    "typer", "psutil", "skops.io", "joblib",
    "sklearn.base", "sklearn.pipeline", "sklearn.compose", "sklearn.impute",
    "sklearn.preprocessing", "sklearn.model_selection", "sklearn.metrics",
    "sklearn.calibration", "sklearn.inspection", "sklearn.linear_model", "sklearn.svm",
    "sklearn.ensemble", "sklearn.neighbors",
    "medml_cli.plugins", "medml_cli.config.loader", "medml_cli.workflows.train",
    "medml_cli.workflows.train_tabular", "medml_cli.evaluation.report",
    "medml_cli.evaluation.bootstrap", "medml_cli.runs.records", "medml_cli.runs.environment",
    "medml_cli.cli.commands",
)

_HEADER = struct.Struct("!I")
_READY = b"R"


class WarmUnavailable(RuntimeError):
    """The warm server could not be started or has gone; run the trial fresh instead."""


def warm_supported() -> bool:
    """Whether this platform can fork warm trials (POSIX ``fork`` and fd passing)."""
    return hasattr(os, "fork") and hasattr(socket, "send_fds") and sys.platform != "win32"


def warm_wanted(flag: bool | None = None) -> bool:
    """Warm trials unless ``flag`` is False, ``MEDML_SWEEP_FRESH`` is set, or fork is missing."""
    if flag is False or not warm_supported():
        return False
    return flag is True or os.environ.get(FRESH_ENV, "").strip().lower() in ("", "0", "false",
                                                                           "no")


# --------------------------------------------------------------------------- client side
class WarmProcess:
    """One trial forked by a :class:`WarmServer`: the parts of ``subprocess.Popen`` that
    :func:`~medml_cli.sweep.executors.execute_trial` and the sweep's stop code use (``pid``,
    ``returncode``, ``poll``, ``communicate``)."""

    def __init__(self, pid: int, status: IO[bytes], out: IO[bytes], err: IO[bytes]) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._status, self._out, self._err = status, out, err

    def poll(self) -> int | None:
        """The trial's exit code if it has ended, else None (as ``Popen.poll``)."""
        return self.returncode if self.returncode is not None else self._wait(0)

    def _wait(self, timeout: float | None) -> int | None:
        if self.returncode is not None:
            return self.returncode
        ready, _, _ = select.select([self._status], [], [], timeout)
        if not ready:
            return None
        line = self._status.readline()
        if line.startswith(b"exit "):
            self.returncode = os.waitstatus_to_exitcode(int(line.split()[1]))
        else:  # the server died (SIGKILL): wait for the child itself, its status is lost
            import psutil

            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(self.pid)
                while proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    time.sleep(0.05)
            self.returncode = -1
        self._status.close()
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Wait for the trial to end (``subprocess.TimeoutExpired`` after ``timeout`` s, the
        trial still running) and return its stdout and stderr text."""
        if self._wait(timeout) is None:
            raise subprocess.TimeoutExpired("medml train (warm)", timeout or 0)
        texts = []
        for handle in (self._out, self._err):
            handle.seek(0)
            texts.append(handle.read().decode("utf-8", "replace"))
            handle.close()
        return texts[0], texts[1]


class WarmServer:
    """A running fork server; :meth:`start` forks one trial. Thread-safe: the local pool's
    threads share one server."""

    def __init__(self, env: dict[str, str]) -> None:
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._errors = tempfile.TemporaryFile()
        self._lock = threading.Lock()
        self._ready = False
        try:
            # stdout/stderr not a terminal at import, so rich detects no colours, as in a
            # fresh trial whose output goes to pipes
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "medml_cli.sweep.warm", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=self._errors, env=env)
        finally:
            theirs.close()

    def _fail(self, why: str) -> WarmUnavailable:
        self.close()
        self._errors.seek(0)
        tail = self._errors.read().decode("utf-8", "replace").strip().splitlines()[-3:]
        return WarmUnavailable(f"warm trial server {why}" + (": " + " ".join(tail)
                                                             if tail else ""))

    def start(self, argv: list[str], cwd: str | None = None) -> WarmProcess:
        """Fork a child running ``medml ARGV``; returns once it exists (its pid known)."""
        out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        status_r, status_w = os.pipe()
        body = json.dumps({"argv": argv, "cwd": cwd or os.getcwd()}).encode()
        with self._lock:
            try:
                if not self._ready:  # the first request waits for the imports
                    if self._sock.recv(1) != _READY:
                        raise self._fail("did not start")
                    self._ready = True
                socket.send_fds(self._sock, [_HEADER.pack(len(body)) + body],
                                [out.fileno(), err.fileno(), status_w])
            except OSError as exc:
                os.close(status_r)
                raise self._fail(f"is gone ({exc})") from None
            finally:
                os.close(status_w)
        status = os.fdopen(status_r, "rb", buffering=0)
        line = status.readline()
        if not line.startswith(b"pid "):  # the server, or the child before it was named, died
            status.close()
            raise self._fail("lost the trial before it started")
        return WarmProcess(int(line.split()[1]), status, out, err)

    def close(self) -> None:
        """Stop the server (its socket closes; running trials go on to their end)."""
        with contextlib.suppress(OSError):
            self._sock.close()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=5)


_servers: dict[tuple[str, ...], WarmServer] = {}
_servers_lock = threading.Lock()


def shared_server(env: dict[str, str]) -> WarmServer:
    """This process's server for trials with ``env`` (started on first use; one per thread
    setting). Kept for the life of the process: a Dask worker reuses it for every trial."""
    key = tuple(f"{k}={env.get(k, '')}" for k in ("PYTHONPATH", "OMP_NUM_THREADS",
                                                  "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"))
    with _servers_lock:
        server = _servers.get(key)
        if server is None or server.proc.poll() is not None:
            server = _servers[key] = WarmServer(env)
        return server


def close_shared_servers() -> None:
    """Stop this process's shared servers (a sweep that ran Dask workers in this process
    closes them with its cluster; a Dask worker process keeps its own for its life)."""
    with _servers_lock:
        servers = list(_servers.values())
        _servers.clear()
    for server in servers:
        server.close()


# --------------------------------------------------------------------------- server side
def _preload() -> None:
    for name in PRELOAD:
        # a module that cannot be imported fails in the trial that needs it, with its message
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    with contextlib.suppress(Exception):
        importlib.import_module("medml_cli.plugins").load_builtins()
    with contextlib.suppress(Exception):  # read once here: every trial runs these imports
        importlib.import_module("medml_cli.runs.environment").package_versions()


def _name_process(title: str) -> None:
    """Linux: name the child after its trial (``t-<id>``, 15 characters at most) in
    /proc/PID/comm, the way a sweep recognises its trials' processes after a fork."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(15, title.encode()[:15], 0, 0, 0)  # PR_SET_NAME


def serve(sock_fd: int) -> list[str] | None:
    """The server loop. Returns None when the sweep goes; in a forked child, returns the
    argv the child must run (the caller then runs medml exactly as ``python -m`` would)."""
    sock = socket.socket(fileno=sock_fd)
    fresh = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in fresh:
        signal.signal(sig, signal.SIG_IGN)
    _preload()
    # what the imports made is never garbage: frozen, the collector (and the child's exit,
    # which otherwise walks it) leaves those pages alone, so a trial does not copy the
    # server's whole heap on write; measured: 0.43 s -> 0.13 s from fork to reaped exit
    gc.collect()
    gc.freeze()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)  # a child's exit wakes the select below
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    running: dict[int, int] = {}  # child pid -> its status pipe
    sock.sendall(_READY)
    while True:
        ready, _, _ = select.select([sock, wake_r], [], [])
        if wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 4096)
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            if pid in running:
                fd = running.pop(pid)
                with contextlib.suppress(OSError):
                    os.write(fd, f"exit {status}\n".encode())
                os.close(fd)
        if sock not in ready:
            continue
        try:
            head, fds, _, _ = socket.recv_fds(sock, _HEADER.size, 3)
        except OSError:
            head, fds = b"", []
        if len(head) < _HEADER.size or len(fds) != 3:
            for fd in fds:
                os.close(fd)
            return None  # the sweep closed its end (or died)
        (size,) = _HEADER.unpack(head)
        body = b""
        while len(body) < size:
            chunk = sock.recv(size - len(body))
            if not chunk:
                return None
            body += chunk
        request = json.loads(body)
        out, err, status_fd = fds
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            # the child: none of the server's files, the trial's output, fresh signal state
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for sig, handler in fresh.items():
                signal.signal(sig, handler)
            for fd in (wake_r, wake_w, *running.values()):
                os.close(fd)
            sock.close()
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(out, 1)
            os.dup2(err, 2)
            for fd in (null, out, err):
                os.close(fd)
            os.chdir(request["cwd"])
            name = next((a for a in request["argv"] if a.startswith("t-")), "medml-trial")
            _name_process(name)
            # the pid is reported once the child carries its trial's name
            os.write(status_fd, f"pid {os.getpid()}\n".encode())
            os.close(status_fd)
            return request["argv"]
        os.close(out)
        os.close(err)
        running[pid] = status_fd


def _main() -> None:
    argv = serve(int(sys.argv[1]))
    if argv is None:
        return
    import runpy

    # from here on this process is `python -m medml_cli ARGV`: same argv[0], same exit path
    sys.argv = [str(Path(__file__).resolve().parents[1] / "__main__.py"), *argv]
    runpy.run_module("medml_cli", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _main()
