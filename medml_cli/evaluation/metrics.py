"""Held-out metrics with the names DESIGN.md fixes.

They are computed by the bootstrap's vectorised code (one pass, no per-call parameter
validation), which ``tests/test_metrics.py`` checks against scikit-learn's functions.
"""

from __future__ import annotations

import numpy as np

from medml_cli.evaluation.bootstrap import _metrics_for_weights


def score_predictions(problem: str, y_true: np.ndarray, score: np.ndarray,
                      threshold: float | np.ndarray = 0.5) -> dict[str, float]:
    """Every metric of ``problem`` for one set of predictions.

    Classification: threshold-free metrics on the score (clipped to [0, 1]); the others call
    ``score >= threshold`` positive (``threshold`` may be one value per row). A ratio with a
    zero denominator is NaN. Computed by the same vectorised code as the bootstrap, which the
    tests check against scikit-learn's own functions metric by metric.
    """
    y = np.asarray(y_true)
    values = _metrics_for_weights(problem, y, np.asarray(score, dtype=float),
                                  np.ones((1, len(y))), threshold)
    return {name: float(v[0]) for name, v in values.items()}


def sample_counts(problem: str, y_true: np.ndarray, groups: np.ndarray | None = None) -> dict:
    """What every figure rests on: rows, events (positives), patients."""
    counts = {"samples": int(len(y_true))}
    if problem != "regression":
        counts["events"] = int(np.sum(np.asarray(y_true) == 1))
        counts["non_events"] = int(np.sum(np.asarray(y_true) == 0))
    if groups is not None:
        counts["patients"] = int(len(np.unique(groups)))
    return counts
