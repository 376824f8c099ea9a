"""What a data kind (tabular rows, images) does inside the one training workflow.

``medml train`` is written once (:func:`medml_cli.workflows.train.run_experiment`): load the
data, pick the problem type, let the data kind plan its split (refusing bad splits before a
run folder exists), fit and predict the held-out rows, assess them through the problem type,
let the kind save its model, and write predictions, metrics and report. The kind owns only
what differs: split units, how a model is fitted and saved, and its report lines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from medml_cli.problems import ProblemType
from medml_cli.runs.directory import RunDir

ProgressFn = Callable[[int, int, str], None]


@dataclass
class HeldOut:
    """A data kind's held-out predictions and what the rest of the workflow needs of them."""

    #: predictions.csv
    predictions: pd.DataFrame
    truth: np.ndarray
    scores: np.ndarray
    #: one cut-off, one per row (each k-fold row at its fold's threshold), or None
    threshold: Any
    #: metrics.json fields of this kind, after the common head (split, metrics, baseline...)
    summary: dict[str, Any]
    groups: np.ndarray | None = None
    subgroup_frame: pd.DataFrame | None = None
    #: what :meth:`TrainingKind.finish` needs (fitted model, folds, caches...)
    state: dict[str, Any] = field(default_factory=dict)


class TrainingKind:
    """One data kind's part of training; subclasses implement every method."""

    def plan(self, cfg: Any, dataset: Any, problem: ProblemType, *, resume: bool) -> Any:
        """Checks and the split, before any run folder exists (usage errors raise here)."""
        raise NotImplementedError

    def describe(self, cfg: Any, dataset: Any, problem: ProblemType, plan: Any) -> str:
        """The run log's first line: task, data, model, split, seed."""
        raise NotImplementedError

    def fit(self, cfg: Any, dataset: Any, problem: ProblemType, plan: Any, run: RunDir, *,
            progress: ProgressFn | None, resume: bool) -> HeldOut:
        """Fit the model(s) and predict the held-out rows."""
        raise NotImplementedError

    def finish(self, cfg: Any, dataset: Any, problem: ProblemType, held: HeldOut,
               run: RunDir, metrics: dict[str, Any]) -> None:
        """Save the model with its card, write this kind's extra plots and explanations
        (adding their blocks to ``metrics``), and clean up."""
        raise NotImplementedError

    def data_lines(self, dataset: Any) -> list[str]:
        """The report's bullets about the data."""
        raise NotImplementedError
