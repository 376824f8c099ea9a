"""What a task is: the problem kind, its default data and model, and its metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from medml_cli.registry import PROBLEMS, TASKS

#: A problem type's name (see :mod:`medml_cli.problems`; plug-ins may add more).
Problem = str

CLASSIFICATION_METRICS = (
    "auroc",
    "auprc",
    "accuracy",
    "balanced_accuracy",
    "sensitivity",
    "specificity",
    "ppv",
    "npv",
    "f1",
    "brier",
    "log_loss",
)
REGRESSION_METRICS = ("r2", "rmse", "mae")
#: Multi-class metrics (one-vs-rest AUROCs; ``brier`` is the multi-class Brier score: the mean
#: over patients of the summed squared error over classes). ``per_class`` is reported beside.
MULTICLASS_METRICS = (
    "macro_auroc",
    "weighted_auroc",
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    "brier",
    "log_loss",
)

#: Metrics where a smaller value is better; every other metric is higher-is-better. A
#: per-horizon name such as ``brier@365`` takes the direction of its base name.
LOWER_IS_BETTER = frozenset({"brier", "log_loss", "rmse", "mae", "ece", "integrated_brier"})


def higher_is_better(metric: str) -> bool:
    """Direction of a metric, used by gates, sweeps' leaderboards and run sorting; a plug-in
    problem type names its own lower-is-better metrics in ``lower_is_better``."""
    base = metric.split("@", 1)[0]
    if base in LOWER_IS_BETTER:
        return False
    return not any(base in getattr(entry.obj, "lower_is_better", ())
                   for entry in PROBLEMS.entries())


@dataclass(frozen=True)
class TaskSpec:
    """A registered task. Presets fill in data and model when the config leaves them out."""

    name: str
    problem: Problem
    data_kind: Literal["tabular", "image"]
    summary: str
    default_data: dict[str, Any] | None = None
    default_model: dict[str, Any] | None = None
    default_split: dict[str, Any] | None = None
    positive_label: str = "positive"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metric names reported for the task's problem (its problem type's list)."""
        return PROBLEMS.get(self.problem).metric_names

    @property
    def primary_metric(self) -> str:
        """The headline metric of the task's problem type (auroc, macro_auroc, r2, ...)."""
        return PROBLEMS.get(self.problem).primary_metric


def register_task(spec: TaskSpec) -> TaskSpec:
    """Register a task preset under its name, tagged with its problem and data kind."""
    TASKS.add(spec.name, spec, summary=spec.summary, tags={spec.problem, spec.data_kind})
    return spec
