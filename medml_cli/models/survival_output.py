"""What a fitted survival model predicts: a risk score and S(t | x) on the caller's times.

Works on a fitted Pipeline (preprocessing + scikit-survival estimator) or a bare estimator,
without the methods scikit-survival patches onto sklearn's Pipeline when it is imported: a
pipeline loaded with skops may be used before (or without) that import.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _split(model: Any, X: Any) -> tuple[Any, Any]:
    """The final estimator and ``X`` transformed by every step before it."""
    steps = getattr(model, "steps", None)
    if steps is None:
        return model, X
    for _, step in steps[:-1]:
        if step is not None and step != "passthrough":
            X = step.transform(X)
    return steps[-1][1], X


def as_times(times: Any) -> np.ndarray:
    """``times`` as a flat float array; non-finite times are a ValueError."""
    out = np.asarray(times, dtype=float).reshape(-1)
    if not np.isfinite(out).all():
        raise ValueError("times must be finite numbers")
    return out


def step_values(grid: np.ndarray, values: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Right-continuous step curves ``values`` (n, len(grid)) read at ``times``: 1 before the
    first grid time, the last value carried beyond the last one."""
    index = np.searchsorted(grid, times, side="right") - 1
    out = values[:, np.clip(index, 0, None)]
    out[:, index < 0] = 1.0
    return out


def _curves_at(estimator: Any, Xt: Any, times: np.ndarray) -> np.ndarray:
    grid = getattr(estimator, "unique_times_", None)
    if grid is not None:
        # one (n, len(grid)) array instead of n StepFunction objects
        try:
            values = estimator.predict_survival_function(Xt, return_array=True)
        except TypeError:  # an estimator without return_array
            values = None
        if values is not None and np.ndim(values) == 2 and np.shape(values)[1] == len(grid):
            return step_values(np.asarray(grid, dtype=float), np.asarray(values, float), times)
    functions = estimator.predict_survival_function(Xt)
    out = np.empty((len(functions), len(times)))
    for i, fn in enumerate(functions):
        # read x and y directly: calling a StepFunction raises outside its domain
        curve = fn.a * np.asarray(fn.y, dtype=float)[None, :] + fn.b
        out[i] = step_values(np.asarray(fn.x, dtype=float), curve, times)[0]
    return out


def predict_risk_and_survival(model: Any, X: Any, times: Any) -> tuple[np.ndarray, np.ndarray]:
    """Risk score (n,), higher = higher risk, and S(t | x) at each of ``times`` (n, len(times)).

    S is 1 before the model's first time and keeps its last value beyond its last time.
    """
    estimator, Xt = _split(model, X)
    times = as_times(times)
    risk = np.asarray(estimator.predict(Xt), dtype=float).reshape(-1)
    return risk, _curves_at(estimator, Xt, times)


def median_survival_time(surv: Any, times: Any) -> np.ndarray:
    """The first of ``times`` (ascending) where S(t) <= 0.5, per row of ``surv``
    (n, len(times)); NaN where the curve stays above 0.5 within ``times``."""
    times = as_times(times)
    surv = np.atleast_2d(np.asarray(surv, dtype=float))
    if surv.shape[1] != len(times):
        raise ValueError(f"surv has {surv.shape[1]} columns but there are {len(times)} times")
    if np.any(np.diff(times) < 0):
        raise ValueError("times must be in ascending order")
    reached = surv <= 0.5
    out = times[reached.argmax(axis=1)]
    out[~reached.any(axis=1)] = np.nan
    return out
