"""Checks on paths a user gives as data, made before anything is opened; file hashes.

Opening a FIFO blocks until something writes to it, and ``/dev/zero`` or ``/dev/urandom``
never end, so a device, FIFO or socket given as a data file would hang medml or fill memory.
Every reader of a user-given path calls :func:`require_regular_file` first; a symlink to a
regular file is fine (``os.stat`` follows links). ``os.stat`` itself never blocks.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from medml_cli.errors import DataError

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def file_kind(path: Path | str) -> str | None:
    """None for a regular file (or a symlink to one), else what ``path`` is, in words."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a broken symbolic link" if os.path.islink(path) else "missing"
    except OSError as exc:  # e.g. a permission error on a parent folder
        return f"unreadable ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def require_regular_file(path: Path | str, role: str, *, fix: str | None = None) -> Path:
    """Return ``path`` if it is a regular file (or a link to one), else raise a DataError.

    ``role`` names where the path came from, e.g. "`data.path`" or "--input", so the
    message can say what to change; ``fix`` replaces the default advice (e.g. for a file
    found inside a data folder: "remove it from the folder").
    """
    path = Path(path)
    kind = file_kind(path)
    if kind is None:
        return path
    if kind == "missing":
        raise DataError(f"file not found: {path}.", f"check {role} (relative paths in a "
                        "config are read from the config file's folder).", source=str(path))
    raise DataError(
        f"{path} ({role}) is {kind}, not a regular file; medml reads data only from regular "
        "files, because a device or pipe may never end or may block forever.",
        fix or f"point {role} at a regular file (a symbolic link to one is fine); to use a "
        "stream, save it to a file first.",
        source=str(path),
    )


def open_regular_file(path: Path | str, role: str) -> int:
    """An O_RDONLY descriptor of ``path``, checked to be a regular file after opening.

    O_NONBLOCK makes opening a FIFO return at once instead of waiting for a writer, and the
    fstat closes the gap between the check and the open (the path could be swapped).
    """
    require_regular_file(path, role)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DataError(f"{path} ({role}) is not a regular file.",
                            f"point {role} at a regular file.", source=str(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def sha256_file(path: Path) -> str:
    """sha256 of a regular file's bytes (a FIFO or device is refused, never read)."""
    digest = hashlib.sha256()
    with os.fdopen(open_regular_file(path, "the data path"), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
