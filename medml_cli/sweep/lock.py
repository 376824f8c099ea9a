"""One process per sweep folder: an exclusive ``flock`` on ``sweep.lock``."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from medml_cli.errors import RunNotUsableError
from medml_cli.sweep.manifest import _utc_now

LOCK_NAME = "sweep.lock"


class SweepBusyError(RunNotUsableError):
    """Another process holds the sweep folder's lock (exit 2)."""


class SweepLock:
    """An exclusive ``flock`` on ``<sweep>/sweep.lock``, held for a whole sweep session, so two
    sessions never run the same pending trials. The kernel drops it when its holder dies
    (even by SIGKILL), so a killed sweep never blocks a resume; the file's text (pid, host,
    start time) only names the holder in the message."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.fd: int | None = None
        self.supported = True

    def __enter__(self) -> SweepLock:
        try:
            import fcntl
        except ImportError:  # not POSIX: no flock
            self.supported = False
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by children
        except OSError as exc:
            raise RunNotUsableError(
                f"cannot open the lock file {self.path}: {exc.strerror}. A sweep needs write "
                "access to its folder; check its permissions.") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder(fd)
            os.close(fd)
            raise SweepBusyError(self._busy_message(holder)) from None
        except OSError:
            # a filesystem without flock (some network mounts): run unlocked, as before locks
            os.close(fd)
            self.supported = False
            return self
        self.fd = fd
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": _utc_now(),
                "command": " ".join(sys.argv)[:500]}
        with contextlib.suppress(OSError):  # only informative: never fail a sweep over it
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)  # the holder has gone; the file stays (see __init__)
        os.close(self.fd)  # closing the only descriptor releases the flock
        self.fd = None

    @staticmethod
    def _holder(fd: int) -> dict[str, Any]:
        # the holder may not have written its details yet (it takes the lock first)
        for _ in range(20):
            with contextlib.suppress(OSError, ValueError):
                info = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
                if isinstance(info, dict):
                    return info
            time.sleep(0.05)
        return {}

    def _busy_message(self, holder: dict[str, Any]) -> str:
        pid, host = holder.get("pid"), holder.get("host")
        started = holder.get("started")
        who = (f"pid {pid}" + (f" on host {host}" if host else "")
               + (f", started {started}" if started else "")) if pid else "details not written"
        stop = (f"stop it (kill {pid}" + (f" on {host}" if host and host != socket.gethostname()
                                         else "") + ")") if pid else "stop it"
        return (f"sweep folder {self.folder} is in use by another medml sweep ({who}; it holds "
                f"{self.path}). Two sweeps on one folder would run the same trials twice. "
                f"Wait for it to finish, or {stop}, then run `medml sweep --resume "
                f"{self.folder}` again.")
