"""What every workflow writes about held-out predictions, written once: the rows of
``predictions.csv`` and the head of ``metrics.json``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from medml_cli.problems import ProblemType


def prediction_table(
    problem: ProblemType,
    *,
    ids: np.ndarray,
    truth: np.ndarray,
    scores: np.ndarray,
    classes: list[str],
    threshold: Any = None,
    baseline: np.ndarray | None = None,
    fold: int | None = None,
    groups: tuple[str, np.ndarray] | None = None,
    threshold_column: bool = False,
    meta: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Held-out rows: id, [group], truth, score column(s), [threshold], decision column(s),
    [baseline score(s)], [fold], then extra per-row columns (e.g. ``site``)."""
    # DESIGN's contract: the first column is `id` (the user's id column, or row numbers)
    columns: dict[str, Any] = {"id": np.asarray(ids)}
    if groups is not None:
        columns[groups[0]] = np.asarray(groups[1])
    columns.update(problem.truth_columns(truth))
    columns.update(problem.score_columns(scores, classes))
    if threshold_column and problem.uses_threshold:
        columns["threshold"] = threshold
    columns.update(problem.decision_columns(scores, threshold, classes))
    if baseline is not None:
        columns.update(problem.score_columns(baseline, classes, "baseline_"))
    if fold is not None:
        columns["fold"] = fold
    if meta is not None:
        for column in meta.columns:
            columns[column] = meta[column].to_numpy()
    # one frame built at once: inserting column by column cost more than the rows did
    return pd.DataFrame(columns, index=pd.RangeIndex(len(columns["id"])))


def prediction_output(problem: ProblemType, ids: Any, scores: np.ndarray, threshold: Any,
                      classes: list[str], warnings: Any) -> pd.DataFrame:
    """``medml predict``'s table: ``id``, the problem type's columns, and ``warnings`` last
    (so the established columns keep their places)."""
    return pd.DataFrame({"id": np.asarray(ids), **problem.output_columns(scores, threshold,
                                                                         classes),
                         "warnings": np.asarray(warnings, dtype=object)})


def record_head(cfg: Any, problem: ProblemType, *, synthetic: bool) -> dict[str, Any]:
    """The fields every training run's metrics.json starts with."""
    return {"task": cfg.task, "problem": problem.name, "model": cfg.model.type,
            "data": cfg.data.type, "synthetic": synthetic}


def card_fields(cfg: Any, problem: ProblemType, *, model_format: str, input_kind: str,
                threshold: float | None, synthetic: bool) -> dict[str, Any]:
    """The model-card fields every trained model has (format, task, problem, threshold...);
    each data kind adds what predict needs to read its inputs."""
    import medml_cli

    return {"format": model_format, "file": f"model.{model_format}", "task": cfg.task,
            "problem": problem.name, "model": cfg.model.type, "input_kind": input_kind,
            "threshold": threshold if problem.uses_threshold else None,
            "threshold_method": cfg.evaluation.threshold_method
            if problem.uses_threshold else None,
            "synthetic_data": synthetic, "medml_version": medml_cli.__version__,
            **problem.card_fields()}
