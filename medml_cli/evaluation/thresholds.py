"""Choosing the operating threshold of a binary classifier (``score >= threshold`` is positive).

Thresholds chosen on data should come from validation/out-of-fold predictions, not the test
set they are then reported on; this module only does the arithmetic.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_curve

METHODS = ("fixed", "youden", "sensitivity", "specificity")


def _check_value(method: str, value: float | None) -> float:
    if value is None:
        raise ValueError(f"threshold method '{method}' needs a value in (0, 1)")
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"threshold method '{method}' needs a value in (0, 1); got {value}")
    return value


def _finite_threshold(threshold: float, score: np.ndarray) -> float:
    """Replace roc_curve's leading ``inf`` ("call nobody positive") by a finite cut-off."""
    if np.isfinite(threshold):
        return float(threshold)
    above_all = float(np.nextafter(score.max(), np.inf))
    # Probabilities stay in [0, 1]; at 1.0 a score of exactly 1.0 would still be positive.
    if score.min() >= 0.0 and score.max() <= 1.0:
        return min(1.0, above_all)
    return above_all


def choose_threshold(y_true, score, *, method: str, value: float | None = None) -> float:
    """The cut-off for ``method``.

    * ``fixed``: ``value`` itself;
    * ``youden``: maximises sensitivity + specificity - 1 over the ROC thresholds (the highest
      such threshold on ties);
    * ``sensitivity``: the highest threshold whose sensitivity is >= ``value``;
    * ``specificity``: the lowest threshold whose specificity is >= ``value``.

    Raises ValueError for an unknown method, a target outside (0, 1), or data that are not
    binary with both classes present.
    """
    if method not in METHODS:
        raise ValueError(f"unknown threshold method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "fixed":
        return _check_value(method, value)
    target = _check_value(method, value) if method != "youden" else None

    y = np.asarray(y_true).ravel()
    s = np.asarray(score, dtype=float).ravel()
    if len(y) != len(s):
        raise ValueError(f"y_true has {len(y)} entries but score has {len(s)}")
    if not np.all(np.isfinite(s)):
        raise ValueError("score holds NaN or infinite values")
    classes = np.unique(y)
    if len(classes) != 2 or not np.all(np.isin(classes, (0, 1))):
        raise ValueError(f"choosing a threshold needs both classes 0 and 1 in y_true; "
                         f"got classes {classes.tolist()}")

    # drop_intermediate=False keeps every distinct score as a candidate cut-off.
    fpr, tpr, cuts = roc_curve(y.astype(int), s, drop_intermediate=False)
    # cuts descend, so tpr and fpr ascend along the arrays.
    if method == "youden":
        best = int(np.argmax(tpr - fpr))  # first maximum = highest threshold among ties
    elif method == "sensitivity":
        best = int(np.flatnonzero(tpr >= target - 1e-12)[0])
    else:  # specificity: the ok thresholds form a prefix (cuts[0] = inf has specificity 1)
        best = int(np.flatnonzero(1.0 - fpr >= target - 1e-12)[-1])
    return _finite_threshold(cuts[best], s)
