"""Calibration of predicted probabilities: logistic recalibration, ECE, reliability curves.

``calibration_slope_intercept`` reports the two numbers clinical-prediction papers usually
quote (Van Calster et al. 2016, "A calibration hierarchy"):

* calibration slope ``b`` from the logistic recalibration model
  ``logit P(y=1) = a + b * logit(p)`` (ideal 1; below 1 means over-confident predictions);
* calibration intercept = calibration-in-the-large ``a'`` from ``logit P(y=1) = a' + logit(p)``,
  i.e. the slope fixed at 1 with ``logit(p)`` as an offset (ideal 0; above 0 means the model
  under-predicts risk on average). This is NOT the ``a`` of the two-parameter fit, which
  depends on the slope and is hard to read on its own.

Both are unpenalised maximum-likelihood fits by Newton-Raphson in numpy, which avoids
scikit-learn's changing ``penalty`` API and is exact for these one- and two-parameter models.

The slope has no maximum-likelihood estimate when the predictions separate the classes:
every positive at or above every negative in ``logit(p)`` (or every positive at or below),
the likelihood then keeps rising as the slope grows and any finite number a fit stops at is
arbitrary. That is detected exactly from the ordering and the slope is NaN, with
:data:`SEPARATION_WARNING`. Calibration-in-the-large stays defined (one parameter with an
offset has an estimate whenever both classes occur).
"""

from __future__ import annotations

import numpy as np
from sklearn.calibration import calibration_curve

_PROB_CLIP = 1e-6

SEPARATION_WARNING = ("calibration slope undefined: the predictions separate the classes "
                      "perfectly (every positive's predicted risk is at or above every "
                      "negative's), so the logistic recalibration slope grows without bound")
REVERSED_SEPARATION_WARNING = ("calibration slope undefined: the predictions separate the "
                               "classes perfectly in reverse (every positive's predicted risk "
                               "is at or below every negative's), so the logistic "
                               "recalibration slope falls without bound")
CONSTANT_WARNING = ("calibration slope undefined: every prediction is the same (after "
                    f"clipping to [{_PROB_CLIP:g}, 1 - {_PROB_CLIP:g}])")


def _logit(prob: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(prob, dtype=float), _PROB_CLIP, 1 - _PROB_CLIP)
    return np.log(p) - np.log1p(-p)


def _check_binary(y_true, prob) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(float).ravel()
    p = np.asarray(prob, dtype=float).ravel()
    if len(y) != len(p):
        raise ValueError(f"y_true has {len(y)} entries but prob has {len(p)}")
    if len(y) == 0:
        raise ValueError("no predictions to assess")
    if not np.all(np.isin(y, (0.0, 1.0))):
        raise ValueError("y_true must hold only 0 and 1")
    if not np.all(np.isfinite(p)):
        raise ValueError("prob holds NaN or infinite values")
    return y, p


def _newton_logistic(design: np.ndarray, y: np.ndarray, offset: np.ndarray,
                     max_iter: int = 100, tol: float = 1e-10) -> np.ndarray:
    """Unpenalised logistic MLE of ``y ~ design @ beta + offset`` by damped Newton steps."""
    beta = np.zeros(design.shape[1])

    def loglik(b: np.ndarray) -> float:
        eta = design @ b + offset
        # log(1 + exp(eta)) computed stably
        return float(np.sum(y * eta - np.logaddexp(0.0, eta)))

    current = loglik(beta)
    for _ in range(max_iter):
        mu = 1.0 / (1.0 + np.exp(-(design @ beta + offset)))
        grad = design.T @ (y - mu)
        hess = design.T @ (design * (mu * (1 - mu))[:, None])
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        # Halve the step until the likelihood does not drop (guards near-separated data).
        scale = 1.0
        while True:
            candidate = beta + scale * step
            value = loglik(candidate)
            if value >= current - 1e-12:
                break
            scale /= 2
            if scale < 1e-8:  # no ascent direction left: we are at the optimum numerically
                return beta
        beta, current = candidate, value
        if np.max(np.abs(scale * step)) < tol:
            break
    return beta


def slope_problem(y_true, prob) -> str | None:
    """Why the calibration slope has no estimate (a warning sentence), or None if it has one.

    For ``logit P(y=1) = a + b * x`` the estimate exists exactly when the classes overlap in
    ``x``: it does not when max(x of negatives) <= min(x of positives) (complete or
    quasi-complete separation, b -> +inf), in the mirror case (b -> -inf), or when x is
    constant (b is not identifiable).
    """
    y, p = _check_binary(y_true, prob)
    if len(np.unique(y)) < 2:
        return None  # a single class: the whole calibration block is undefined anyway
    lp = _logit(p)
    if np.ptp(lp) == 0:
        return CONSTANT_WARNING
    pos, neg = lp[y == 1], lp[y == 0]
    if neg.max() <= pos.min():
        return SEPARATION_WARNING
    if pos.max() <= neg.min():
        return REVERSED_SEPARATION_WARNING
    return None


def calibration_slope_intercept(y_true, prob) -> tuple[float, float]:
    """(calibration slope, calibration-in-the-large intercept); see the module docstring.

    ``prob`` is clipped to [1e-6, 1 - 1e-6] before the logit. Returns (nan, nan) when
    ``y_true`` holds a single class (both fits diverge), and a NaN slope when the slope has
    no estimate (:func:`slope_problem`: the predictions separate the classes, or are all
    equal); calibration-in-the-large is still estimated then.
    """
    fits = calibration_with_errors(y_true, prob)
    return (fits["calibration_slope"][0], fits["calibration_intercept"][0])


def calibration_with_errors(y_true, prob) -> dict[str, tuple[float, float]]:
    """``calibration_intercept`` (in-the-large) and ``calibration_slope``, each as (estimate,
    standard error), the errors from the inverse observed information of the same fits as
    :func:`calibration_slope_intercept` (what a meta-analysis across hospitals pools). NaN
    where the estimate does not exist (a single class; a separated or constant slope)."""
    y, p = _check_binary(y_true, prob)
    nan = (float("nan"), float("nan"))
    if len(np.unique(y)) < 2:
        return {"calibration_intercept": nan, "calibration_slope": nan}
    lp = _logit(p)
    ones = np.ones((len(y), 1))
    citl = float(_newton_logistic(ones, y, lp)[0])
    mu = 1.0 / (1.0 + np.exp(-(citl + lp)))
    out = {"calibration_intercept": (citl, float(1.0 / np.sqrt(np.sum(mu * (1 - mu)))))}
    if slope_problem(y, p) is not None:
        out["calibration_slope"] = nan
        return out
    design = np.column_stack([ones, lp])
    beta = _newton_logistic(design, y, np.zeros(len(y)))
    mu = 1.0 / (1.0 + np.exp(-(design @ beta)))
    covariance = np.linalg.inv(design.T @ (design * (mu * (1 - mu))[:, None]))
    out["calibration_slope"] = (float(beta[1]), float(np.sqrt(covariance[1, 1])))
    return out


def _bin_ids(prob: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    """Bin of each probability, with scikit-learn's ``calibration_curve`` edges and rule."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1; got {n_bins}")
    if strategy == "quantile":
        edges = np.percentile(prob, np.linspace(0, 100, n_bins + 1))
    elif strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        raise ValueError(f"strategy must be 'uniform' or 'quantile'; got {strategy!r}")
    return np.searchsorted(edges[1:-1], prob)


def expected_calibration_error(y_true, prob, n_bins: int = 10,
                               strategy: str = "uniform") -> float:
    """Sum over bins of (bin share of rows) x |mean predicted probability - observed rate|."""
    y, p = _check_binary(y_true, prob)
    p = np.clip(p, 0.0, 1.0)
    ids = _bin_ids(p, n_bins, strategy)
    total = np.bincount(ids, minlength=n_bins).astype(float)
    gap = np.abs(np.bincount(ids, weights=p, minlength=n_bins)
                 - np.bincount(ids, weights=y, minlength=n_bins))
    # sum_b (n_b / n) * |sum_p / n_b - sum_y / n_b| = sum_b |sum_p - sum_y| / n
    return float(np.sum(gap[total > 0]) / len(y))


def reliability_curve(y_true, prob, n_bins: int = 10,
                      strategy: str = "quantile") -> dict[str, np.ndarray]:
    """Mean predicted vs observed rate per non-empty bin, with the rows in each bin."""
    y, p = _check_binary(y_true, prob)
    p = np.clip(p, 0.0, 1.0)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    counts = np.bincount(_bin_ids(p, n_bins, strategy), minlength=n_bins)
    return {"prob_pred": prob_pred, "prob_true": prob_true, "counts": counts[counts > 0]}


def calibration_summary(y_true, prob) -> dict[str, float | str]:
    """calibration_slope, calibration_intercept (in-the-large), brier and ECE (10 uniform bins).

    When the slope has no estimate it is NaN (``null`` in metrics.json) and a ``warning`` key
    says why (:func:`slope_problem`).
    """
    y, p = _check_binary(y_true, prob)
    p = np.clip(p, 0.0, 1.0)
    slope, intercept = calibration_slope_intercept(y, p)
    summary: dict[str, float | str] = {
        "calibration_slope": slope,
        "calibration_intercept": intercept,
        "brier": float(np.mean((y - p) ** 2)),
        "ece": expected_calibration_error(y, p),
    }
    problem = slope_problem(y, p)
    if problem is not None:
        summary["warning"] = problem
    return summary
