"""Decision-curve analysis (Vickers & Elkin 2006): net benefit across threshold probabilities.

At threshold probability ``pt`` a false positive is worth ``pt / (1 - pt)`` true positives, so
net benefit = TP/n - FP/n * pt/(1 - pt), calling a patient positive when ``prob >= pt``: a
probability exactly equal to the threshold counts as positive, as in the operating threshold
and in the ``dcurves`` package (whose binary net benefit this matches, tested with tied
scores on the grid).

The default grid is 0.01, 0.02, ..., 0.99 built as exact fractions ``k / 100``: the same
floating-point numbers as a score computed as ``k / 100`` (e.g. a random forest's vote share
over 100 trees), so such a score lands on the documented side of its threshold. Grids from
``linspace(0.01, 0.99, 99)`` miss ``k / 100`` by one ulp at 25 of 99 points.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def default_thresholds() -> np.ndarray:
    """0.01, 0.02, ..., 0.99, each exactly ``k / 100`` (the double nearest to it)."""
    return np.arange(1, 100) / 100


def _check(y_true, prob, thresholds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(int).ravel()
    p = np.asarray(prob, dtype=float).ravel()
    pt = np.atleast_1d(np.asarray(thresholds, dtype=float))
    if len(y) != len(p) or len(y) == 0:
        raise ValueError(f"y_true ({len(y)}) and prob ({len(p)}) must be non-empty and equal")
    if np.any((pt <= 0) | (pt >= 1)):
        raise ValueError("threshold probabilities must lie strictly between 0 and 1")
    return y, p, pt


def net_benefit(y_true, prob, thresholds) -> np.ndarray:
    """Net benefit of the model at each threshold probability (``prob >= pt`` is positive)."""
    y, p, pt = _check(y_true, prob, thresholds)
    n = len(y)
    tp = _at_or_above(p[y == 1], pt)
    fp = _at_or_above(p[y == 0], pt)
    return tp / n - fp / n * pt / (1 - pt)


def _at_or_above(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """How many of ``values`` are >= each threshold (a NaN never is), by one sort."""
    ordered = np.sort(values[~np.isnan(values)])
    return len(ordered) - np.searchsorted(ordered, thresholds, side="left")


def decision_curve(y_true, prob, thresholds=None) -> pd.DataFrame:
    """Columns threshold, model, treat_all, treat_none (= 0) for each threshold.

    ``thresholds`` defaults to :func:`default_thresholds` (0.01 to 0.99 in exact hundredths).
    """
    if thresholds is None:
        thresholds = default_thresholds()
    y, p, pt = _check(y_true, prob, thresholds)
    prevalence = float(np.mean(y == 1))
    return pd.DataFrame({
        "threshold": pt,
        "model": net_benefit(y, p, pt),
        "treat_all": prevalence - (1 - prevalence) * pt / (1 - pt),
        "treat_none": np.zeros(len(pt)),
    })
