"""Where ``medml predict --output`` may write, checked before any work is done.

An output path that would lose something is refused unless the user says ``--overwrite``:
the input file itself (``--input x.csv --output x.csv`` would replace the patients' data with
predictions), a path inside a run or sweep folder (its records), or any file that exists.
Pipes, FIFOs and devices (``/dev/stdout``, ``>(gzip > out.gz)``) are written through, and so
is a symlink (its target is replaced, the link stays); ``-`` means stdout.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from medml_cli.errors import MedmlUsageError
from medml_cli.jsonio import write_text_atomic


@dataclass(frozen=True)
class OutputTarget:
    """A checked destination: stdout, a stream to write through, or a regular file path."""

    display: str
    path: Path | None  # None: stdout
    stream: bool = False  # FIFO, character device, socket: open and write, never replace

    def write(self, text: str) -> None:
        """Write ``text`` to stdout, the stream or the file (atomically)."""
        if self.path is None:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        try:
            if self.stream:
                with open(self.path, "w", encoding="utf-8") as handle:
                    handle.write(text)
            else:
                write_text_atomic(self.path, text)
        except OSError as exc:
            raise MedmlUsageError(f"cannot write {self.display}: {exc.strerror or exc}. "
                                  "Choose a writable --output path.") from None


def _record_folder(path: Path) -> Path | None:
    """The run or sweep folder holding ``path`` (at any depth), if any."""
    for folder in path.parents:
        if (folder / "status.json").is_file() and (folder / "config.yaml").is_file():
            return folder
        if (folder / "sweep.json").is_file():
            return folder
    return None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(output: str | Path | None, *, inputs: list[Path], overwrite: bool
                 ) -> OutputTarget:
    """Validate ``--output`` against the inputs and what is on disk; raise exit-2 errors."""
    if output is None or str(output) == "-":
        return OutputTarget("stdout", None)
    given = Path(output).expanduser()
    target = given.resolve()  # through symlinks: the file that would really change
    hint = "choose a new file name, or pass --overwrite if replacing it is what you want"
    if target.is_dir():
        raise MedmlUsageError(f"--output {given} is a folder; give a file path such as "
                              f"{given / 'predictions.csv'}.")
    if not target.parent.is_dir():
        raise MedmlUsageError(f"--output {given}: the folder {target.parent} does not exist; "
                              "create it first or choose another path.")
    try:
        mode = target.stat().st_mode if target.exists() else None
    except OSError as exc:
        raise MedmlUsageError(f"--output {given}: {exc.strerror or exc}.") from None
    if mode is not None and not stat.S_ISREG(mode):
        return OutputTarget(str(given), target, stream=True)  # a pipe or device: nothing lost
    for source in inputs:
        if _same_file(target, Path(source)) or target == Path(source).resolve():
            if not overwrite:
                raise MedmlUsageError(
                    f"--output {given} is the input file {source}: writing predictions there "
                    f"would replace the data they were made from. Fix: {hint}.")
    record = _record_folder(target)
    if record is not None and not overwrite:
        raise MedmlUsageError(
            f"--output {given} lies inside the run or sweep folder {record}, whose files are "
            f"its record (metrics, model, predictions). Fix: write elsewhere, or {hint}.")
    if mode is not None and not overwrite:
        raise MedmlUsageError(f"--output {given} exists already ({target.stat().st_size:,} "
                              f"bytes). Fix: {hint}.")
    return OutputTarget(str(given), target)
