"""The ``sweep:`` block of a sweep file (grid, random search, distributions, seeds, limits)
and the records of an expanded sweep."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from medml_cli.config.search_space import Distribution
from medml_cli.config.sections import NAME_PATTERN
from medml_cli.schemas import StrictModel
from medml_cli.tasks.base import higher_is_better

STATES = ("pending", "running", "completed", "failed", "interrupted")
MAX_TRIALS = 10_000
ID_LENGTH = 12

ProgressFn = Callable[[int, int, str], None]


# --------------------------------------------------------------------------- the sweep block
class RandomSearch(StrictModel):
    """Random search: ``trials`` draws of ``parameters``, reproducible from ``seed``."""

    trials: int = Field(ge=1, le=MAX_TRIALS, description="Number of random draws.")
    seed: int = Field(0, ge=0, description="Seed of the draws (not the trials' `seed`).")
    parameters: dict[str, Distribution] = Field(min_length=1)


class SweepBlock(StrictModel):
    """The ``sweep:`` block of a sweep file."""

    name: str | None = Field(None, pattern=NAME_PATTERN, description="Default: file stem.")
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(default_factory=dict)
    random: RandomSearch | None = None
    seeds: list[Annotated[int, Field(ge=0, le=2**32 - 1)]] | None = Field(None, min_length=1)
    metric: str | None = None
    conditions: dict[str, dict[str, Any]] = Field(default_factory=dict)


# --------------------------------------------------------------------------- results
@dataclass
class Trial:
    """One complete experiment of a sweep."""

    id: str
    params: dict[str, Any]
    seed: int
    config_yaml: str
    dropped: list[str] = field(default_factory=list)


@dataclass
class Sweep:
    """An expanded sweep: its trials and how to rank them."""

    name: str
    metric: str
    trials: list[Trial]
    task: str = ""
    source: Path | None = None
    overrides: list[str] = field(default_factory=list)
    sweep_yaml: str = ""
    duplicates: int = 0

    @property
    def higher_is_better(self) -> bool:
        """Whether the sweep's metric improves upward."""
        return higher_is_better(self.metric)


@dataclass
class SweepResult:
    """What :func:`run_sweep` did."""

    path: Path
    manifest: dict[str, Any]
    counts: dict[str, int]
    leaderboard: dict[str, Any]

    @property
    def all_succeeded(self) -> bool:
        """True when every trial completed."""
        return self.counts.get("completed", 0) == len(self.manifest["trials"])
