"""Run directories: created atomically, recorded as they go, found and read back.

A run is built in ``.tmp-<name>-<uuid>/`` and renamed to ``<YYYYmmdd-HHMMSS>-<name>-<hash>/``
only once every file is written, so a directory with a final name is a complete run. A run
that fails is renamed with a ``-failed`` (or ``-interrupted``) suffix and its ``status.json``
says why; a run killed outright stays under its ``.tmp-`` name with status ``running``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from medml_cli.errors import MedmlError, RunFailedError, RunNotUsableError
from medml_cli.jsonio import read_run_json, write_json, write_text_atomic
from medml_cli.runs.records import (
    ENVIRONMENT,
    METRICS,
    STATUS,
    read_status,
    write_environment,
    write_metrics,
    write_status,
)

#: Run files that are typed records: RunDir.write_json hands them to their one writer.
_RECORD_WRITERS: dict[str, Any] = {STATUS: write_status, METRICS: write_metrics,
                                   ENVIRONMENT: write_environment}


def utc_now() -> str:
    """The current UTC time as ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


@dataclass
class RunDir:
    """A run being written. ``path`` is the temporary folder until :meth:`finish`."""

    path: Path
    name: str
    runs_dir: Path
    config_text: str
    started: str = field(default_factory=utc_now)
    logger: logging.Logger | None = None

    def file(self, name: str) -> Path:
        """Path of ``name`` inside the run directory."""
        return self.path / name

    def write_json(self, name: str, data: Any) -> None:
        """Write ``data`` as JSON to ``name`` in the run directory, atomically. The typed
        records (status.json, metrics.json, environment.json) go through their writer in
        :mod:`medml_cli.runs.records`, which validates them and adds ``format_version``."""
        writer = _RECORD_WRITERS.get(name)
        if writer is not None:
            writer(self.path, data)
        else:
            write_json(self.path / name, data)

    def write_text(self, name: str, text: str) -> None:
        """Write ``text`` to ``name`` in the run directory, atomically."""
        write_text_atomic(self.path / name, text)

    def status(self, state: str, **extra: Any) -> None:
        """Write status.json with ``state`` and any extra fields."""
        write_status(self.path, {
            "state": state,
            "name": self.name,
            "started": self.started,
            "pid": os.getpid(),
            **({"ended": utc_now()} if state != "running" else {}),
            **extra,
        })

    def log(self, message: str) -> None:
        """Log ``message`` to the run's log, if it has one."""
        if self.logger is not None:
            self.logger.info(message)


def _final_name(name: str, config_text: str) -> str:
    # The random part makes names unique even for runs started in the same second.
    digest = hashlib.sha256(f"{config_text}{uuid.uuid4()}".encode()).hexdigest()[:6]
    return f"{_stamp()}-{name}-{digest}"


def _rename_unique(src: Path, runs_dir: Path, name: str, config_text: str, suffix: str) -> Path:
    for _ in range(20):
        target = runs_dir / (_final_name(name, config_text) + suffix)
        try:
            os.rename(src, target)  # atomic on one filesystem; fails if target is non-empty
            if target.exists():
                return target
        except FileExistsError:
            continue
        except OSError as exc:
            if target.exists():
                continue
            raise exc
    raise RunFailedError(f"could not give run {src} a unique name")


def _make_logger(path: Path) -> logging.Logger:
    logger = logging.getLogger(f"medml.run.{uuid.uuid4().hex}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return logger


def _close_logger(logger: logging.Logger | None) -> None:
    if logger is None:
        return
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)


def ensure_runs_dir(runs_dir: Path) -> Path:
    """Create the runs directory and check it is writable, else raise RunNotUsableError."""
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        probe = runs_dir / f".write-test-{uuid.uuid4().hex}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise RunNotUsableError(
            f"cannot write to the runs directory {runs_dir} ({exc.strerror or exc}). "
            "Pass a writable folder with --runs-dir."
        ) from None
    return runs_dir


@contextlib.contextmanager
def create_run_dir(runs_dir: Path, name: str, config_text: str,
                   existing: Path | None = None) -> Iterator[RunDir]:
    """Make a run in a temporary folder and rename it into place when the block succeeds.

    With ``existing`` (``--resume``), an interrupted run's folder is reused instead.
    """
    runs_dir = ensure_runs_dir(Path(runs_dir))
    if existing is None:
        tmp = runs_dir / f".tmp-{name}-{uuid.uuid4().hex}"
        tmp.mkdir()  # exclusive: the uuid makes a clash impossible, mkdir makes it loud
    else:
        # move it back under a temporary name while it runs, so it never looks complete
        tmp = runs_dir / f".tmp-{name}-{uuid.uuid4().hex}"
        os.rename(existing, tmp)
    run = RunDir(path=tmp, name=name, runs_dir=runs_dir, config_text=config_text)
    if existing is not None:
        run.started = read_status(tmp).started or run.started
    run.logger = _make_logger(tmp / "log.txt")
    if existing is None:
        run.write_text("config.yaml", config_text)
    run.status("running", **({"resumed": utc_now()} if existing is not None else {}))
    run.log(f"run {name} {'resumed' if existing is not None else 'started'} in {tmp}")
    try:
        yield run
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        state = "interrupted" if interrupted else "failed"
        message = ((str(exc) or "interrupted by the user (Ctrl-C)") if interrupted
                   else _error_text(exc))
        with contextlib.suppress(Exception):
            run.log(f"run {state}: {message}")
            run.status(state, error=message, error_type=type(exc).__name__)
        _close_logger(run.logger)
        with contextlib.suppress(Exception):
            run.path = _rename_unique(tmp, runs_dir, name, config_text, f"-{state}")
        if isinstance(exc, MedmlError) or interrupted or not isinstance(exc, Exception):
            if isinstance(exc, MedmlError):
                exc.run_path = run.path  # type: ignore[attr-defined]
            raise
        failure = RunFailedError(
            f"the run failed: {message}. The partial record is in {run.path} "
            "(status.json says failed)."
        )
        failure.run_path = run.path  # type: ignore[attr-defined]
        raise failure from exc
    run.log("run completed")
    run.status("completed")
    _close_logger(run.logger)
    run.path = _rename_unique(tmp, runs_dir, name, config_text, "")


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --------------------------------------------------------------------------- reading runs
def resumable_run(run_path: Path) -> Path:
    """Check that ``run_path`` is an interrupted image run with a checkpoint to resume from,
    or an interrupted tuned run (``tune:``) with its studies."""
    run_path = Path(run_path)
    if not (run_path / "status.json").exists():
        raise RunNotUsableError(f"{run_path} is not a medml run directory (no status.json).")
    status = read_status(run_path, strict=True)
    if status.state == "completed":
        raise RunNotUsableError(f"run {run_path.name} is already completed; nothing to resume.")
    if status.state == "running" and pid_alive(status.pid):
        raise RunNotUsableError(f"run {run_path.name} is still running (pid {status.pid}).")
    if (run_path / "tune" / "studies.db").is_file():
        # a tuned tabular run: its finished trials are in the studies; the rest is refitted
        _check_resume_config(run_path / "config.yaml")
        return run_path
    if not (run_path / "checkpoints" / "last.keras").exists() or \
            not (run_path / "checkpoints" / "train_state.json").exists():
        raise RunNotUsableError(
            f"run {run_path.name} has no checkpoint to resume from (it stopped before its "
            "first epoch ended, or is neither a CNN nor a tuned run). Train again with its "
            "config.yaml.")
    # checked here, before the run folder is reopened: a damaged file found mid-resume
    # would fail the run and rename it -failed, losing the checkpoint it could resume from
    _check_resume_config(run_path / "config.yaml")
    _check_checkpoint(run_path / "checkpoints")
    return run_path


def _check_resume_config(path: Path) -> None:
    from medml_cli.config.loader import load_experiment_config
    from medml_cli.errors import ConfigError

    if not path.is_file():
        raise RunNotUsableError(f"{path} (the run's config) is missing, so the run cannot be "
                                "resumed. Fix: restore it, or train again from your own config.")
    try:
        load_experiment_config(path)
    except ConfigError as exc:
        problems = "; ".join(exc.problems)
        raise RunNotUsableError(
            f"{path} (the run's config) cannot be used: {problems}. It was damaged or edited "
            "after the run started. Fix: restore it, or train again from your own config."
        ) from None


def _check_checkpoint(folder: Path) -> None:
    fix = (f"delete {folder} and train again with the run's config.yaml (the checkpoint "
           "cannot be trusted)")
    state_path = folder / "train_state.json"
    state = read_run_json(state_path, dict, what="the checkpoint's training state", fix=fix)
    epoch = state.get("epoch")
    shapes = {"history": dict, "rng_states": dict, "best_epoch": int, "best": (int, float),
              "monitor": str}
    bad = [key for key, kind in shapes.items()
           if state.get(key) is not None and not isinstance(state[key], kind)]
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
        bad.insert(0, "epoch")
    if bad:
        raise RunNotUsableError(f"{state_path} (the checkpoint's training state) has an "
                                f"invalid {', '.join(bad)}; it was damaged or edited. Fix: {fix}.")
    last = folder / "last.keras"
    if not zipfile.is_zipfile(last):  # a .keras file is a zip archive; cheap to check here
        raise RunNotUsableError(f"{last} (the last checkpoint) is not a Keras archive; it is "
                                f"truncated or damaged. Fix: {fix}.")


def pid_alive(pid: object) -> bool:
    """Whether a process of this machine still runs; a zombie (killed, not yet reaped by its
    parent) counts as gone, so its run shows as interrupted rather than running."""
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (macOS) or no access: trust kill(pid, 0)
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def open_completed_run(run_path: Path) -> Path:
    """Check that ``run_path`` is a finished run that evaluate/predict can use."""
    run_path = Path(run_path)
    if not run_path.exists():
        raise RunNotUsableError(
            f"run directory {run_path} does not exist. `medml train` prints the path of the run "
            "it made as its last line; pass that."
        )
    if not (run_path / "status.json").exists() or not (run_path / "config.yaml").exists():
        raise RunNotUsableError(
            f"{run_path} is not a medml run directory (no status.json / config.yaml). "
            "Pass a folder that `medml train` created under runs/."
        )
    status = read_status(run_path, strict=True)
    if status.state != "completed":
        why = f": {status.error}" if status.error else ""
        raise RunNotUsableError(
            f"run {run_path.name} is {status.state}{why}. Only completed runs can be evaluated "
            "or used for prediction; train again with its config.yaml."
        )
    missing = [f for f in ("metrics.json", "model") if not (run_path / f).exists()]
    if (run_path / "model").exists() and not (run_path / "model").is_dir():
        missing.append("model/ (a file stands in its place)")
    if missing:
        raise RunNotUsableError(
            f"run {run_path.name} is incomplete (missing {', '.join(missing)} in {run_path}). "
            "Train again with its config.yaml."
        )
    return run_path


