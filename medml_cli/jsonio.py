"""Atomic JSON writes (temp file + os.replace), and reads of run records that fail cleanly."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from medml_cli.errors import MedmlUsageError, RunNotUsableError

#: What every damaged-record message ends with, unless the caller knows a better fix.
RUN_FIX = ("restore the original file, or train again with the run's config.yaml "
           "(`medml train RUN/config.yaml`)")

_TYPE_NAMES = {dict: "a JSON object", list: "a JSON array", str: "a string",
               float: "a number", int: "an integer", bool: "true or false"}


def _clean(value: Any) -> Any:
    """NaN and inf are not JSON; write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _clean(value.item())
    return value


def write_text_atomic(path: Path, text: str) -> None:
    """Write text to ``path`` via a temporary file and rename: readers never see half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    """Write data as indented JSON atomically; NaN and infinity are refused."""
    write_text_atomic(path, json.dumps(_clean(data), indent=2, allow_nan=False) + "\n")


def read_json(path: Path) -> Any:
    """Read a JSON file."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in _TYPE_NAMES.items():
        if type(value) is kind:
            return name
    return type(value).__name__


def read_run_json(path: Path, expected_type: type = dict, *, what: str = "",
                  fix: str = RUN_FIX,
                  error: type[MedmlUsageError] = RunNotUsableError) -> Any:
    """Read one JSON file of a run record, or raise ``error`` (exit 2) naming the file.

    Every record a command reads goes through here, so a missing, unreadable, garbled or
    wrongly shaped file is one clean message instead of a traceback. ``what`` says what the
    file is for, e.g. "the run's status".
    """
    path = Path(path)
    label = f"{path}{f' ({what})' if what else ''}"
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise error(f"{label} is missing, so the run cannot be used. Fix: {fix}.") from None
    except json.JSONDecodeError as exc:
        raise error(f"{label} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                    f"{exc.msg}); it was damaged or edited after it was written. Fix: {fix}."
                    ) from None
    except (OSError, ValueError) as exc:  # permissions, a folder, bytes that are not UTF-8
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise error(f"{label} cannot be read ({type(exc).__name__}: {reason}). "
                    f"Fix: {fix}.") from None
    if not isinstance(data, expected_type) or (expected_type is not bool
                                               and isinstance(data, bool)):
        wanted = _TYPE_NAMES.get(expected_type, expected_type.__name__)
        raise error(f"{label} holds {_json_type(data)} where {wanted} was expected; it was "
                    f"damaged or edited after it was written. Fix: {fix}.")
    return data
