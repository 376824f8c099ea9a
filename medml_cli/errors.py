"""The exceptions medml raises on purpose, and the exit code each maps to.

Usage errors (bad config, bad data, unknown names, unsafe model files) exit 2; a run that
started and failed, or a metric gate that was not met, exits 1.
"""

from __future__ import annotations


class MedmlError(Exception):
    """Base class: carries a one-paragraph message meant for the user."""

    exit_code = 1


class MedmlUsageError(MedmlError):
    """Something the user gave us is wrong; nothing was run."""

    exit_code = 2


class ConfigError(MedmlUsageError):
    """An experiment config is malformed or invalid.

    ``problems`` holds one line per problem, each naming the field path.
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid config {source}:\n{lines}")


class DataError(MedmlUsageError):
    """Input data are missing, malformed or unusable for the task."""

    def __init__(self, problem: str, fix: str | None = None, *, source: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        self.source = source
        where = f"{source}: " if source else ""
        message = f"data error: {where}{problem}"
        if fix:
            message += f" Fix: {fix}"
        super().__init__(message)


class UnknownNameError(MedmlUsageError, KeyError):
    """A registry lookup failed; the message suggests the closest names."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class ModelLoadError(MedmlUsageError):
    """A saved model is missing, corrupt, or holds types we do not trust."""


class RunNotUsableError(MedmlUsageError):
    """A run directory is missing, incomplete or failed, so it cannot be evaluated or used."""


class RunFailedError(MedmlError):
    """The run started and failed (training error and the like)."""

    exit_code = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM (sent by schedulers, ``timeout``, ``kill``) handled like Ctrl-C: the run is
    renamed ``-interrupted`` and trial processes are stopped; the exit code is 143."""

    exit_code = 143

    def __init__(self) -> None:
        super().__init__("terminated by SIGTERM")
