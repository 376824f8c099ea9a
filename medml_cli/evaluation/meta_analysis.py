"""Random-effects meta-analysis of one performance measure across groups (e.g. hospitals).

Internal-external cross-validation gives one estimate per held-out group with its standard
error. The random-effects model ``y_i ~ N(mu, v_i + tau^2)`` says how well the model does on
average (``mu``) and how much that varies between groups (``tau^2``); the 95 % prediction
interval is where a *new* group's value is expected to fall (Riley, Higgins & Deeks, BMJ
2011;342:d549), which is what a hospital about to adopt the model wants to know.

* ``tau^2`` by DerSimonian–Laird (method of moments) or REML (Fisher scoring, started at the
  DL value; Viechtbauer 2005, J Educ Behav Stat 30:261), truncated at 0;
* ``mu`` with a Wald interval; the prediction interval uses a t distribution with k - 2
  degrees of freedom (Higgins, Thompson & Spiegelhalter 2009), so it needs k >= 3 groups;
* Cochran's Q with its chi-squared p-value, and I^2 = tau^2 / (tau^2 + s^2), where s^2 is the
  "typical" within-group variance (Higgins & Thompson 2002); for DL this equals (Q - df) / Q.

These are the estimators of metafor's ``rma(method="DL"/"REML")``; the tests check DL against
a hand-computed example and both against metafor's published BCG-vaccine results.
Measures are pooled on the scale where they are roughly normal (AUROC and C-index on the
logit scale, RMSE on the log scale: Debray et al., BMJ 2017;356:i6460) and reported back on
their own scale.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

#: The scales a measure can be pooled on: (transform, back-transform).
SCALES = {
    "identity": (lambda x: x, lambda x: x),
    "logit": (lambda x: np.log(x) - np.log1p(-x), lambda x: 1.0 / (1.0 + np.exp(-x))),
    "log": (np.log, np.exp),
}


@dataclass(frozen=True)
class PooledEstimate:
    """A random-effects summary, back on the measure's own scale (except ``tau2``, ``se``,
    which are on the pooling scale named by ``scale``)."""

    estimate: float
    low: float
    high: float
    prediction_low: float | None
    prediction_high: float | None
    tau2: float
    i2: float
    q: float
    q_p: float
    k: int
    se: float
    method: str
    scale: str

    def as_json(self) -> dict[str, Any]:
        """The fields as a plain dict (metrics.json)."""
        return asdict(self)


def _check(estimates: Any, variances: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(estimates, dtype=float).ravel()
    v = np.asarray(variances, dtype=float).ravel()
    if len(y) != len(v):
        raise ValueError(f"{len(y)} estimates but {len(v)} variances")
    if len(y) < 2:
        raise ValueError("a meta-analysis needs at least two groups")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v)) and np.all(v > 0)):
        raise ValueError("estimates must be finite and variances finite and positive")
    return y, v


def _cochran_q(y: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, float]:
    """The fixed-effect (inverse-variance) weights and Cochran's Q about their mean."""
    w = 1.0 / v
    mu = np.sum(w * y) / np.sum(w)
    return w, float(np.sum(w * (y - mu) ** 2))


def dersimonian_laird_tau2(estimates: Any, variances: Any) -> float:
    """The method-of-moments between-group variance, max(0, (Q - (k-1)) / C)."""
    y, v = _check(estimates, variances)
    w, q = _cochran_q(y, v)
    c = np.sum(w) - np.sum(w ** 2) / np.sum(w)
    return max(0.0, (q - (len(y) - 1)) / float(c))


def reml_tau2(estimates: Any, variances: Any, *, tol: float = 1e-10,
              max_iter: int = 200) -> float:
    """The restricted-maximum-likelihood between-group variance (Fisher scoring)."""
    y, v = _check(estimates, variances)
    tau2 = dersimonian_laird_tau2(y, v)
    for _ in range(max_iter):
        w = 1.0 / (v + tau2)
        mu = np.sum(w * y) / np.sum(w)
        # the REML score equation solved for tau^2 (Viechtbauer 2005, eq. 12)
        updated = max(0.0, float(np.sum(w ** 2 * ((y - mu) ** 2 - v)) / np.sum(w ** 2)
                                 + 1.0 / np.sum(w)))
        if abs(updated - tau2) < tol:
            return updated
        tau2 = updated
    return tau2


def random_effects(estimates: Any, variances: Any, *, method: str = "reml",
                   confidence: float = 0.95, scale: str = "identity") -> PooledEstimate:
    """Pool per-group ``estimates`` (already on the pooling ``scale``) with their sampling
    ``variances``; the estimate and both intervals are returned on the measure's own scale."""
    y, v = _check(estimates, variances)
    if method not in ("reml", "dl"):
        raise ValueError(f"method must be 'reml' or 'dl'; got {method!r}")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}; got {scale!r}")
    k = len(y)
    w_fixed, q = _cochran_q(y, v)
    tau2 = dersimonian_laird_tau2(y, v) if method == "dl" else reml_tau2(y, v)
    w = 1.0 / (v + tau2)
    mu = float(np.sum(w * y) / np.sum(w))
    se = float(math.sqrt(1.0 / np.sum(w)))
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    typical = (k - 1) * np.sum(w_fixed) / (np.sum(w_fixed) ** 2 - np.sum(w_fixed ** 2))
    i2 = float(tau2 / (tau2 + typical)) if tau2 > 0 else 0.0
    back = SCALES[scale][1]
    pred_low = pred_high = None
    if k >= 3:
        half = float(stats.t.ppf(0.5 + confidence / 2, k - 2)) * math.sqrt(tau2 + se ** 2)
        pred_low, pred_high = float(back(mu - half)), float(back(mu + half))
    return PooledEstimate(
        estimate=float(back(mu)), low=float(back(mu - z * se)), high=float(back(mu + z * se)),
        prediction_low=pred_low, prediction_high=pred_high, tau2=float(tau2), i2=i2, q=q,
        q_p=float(stats.chi2.sf(q, k - 1)), k=k, se=se, method=method, scale=scale)


def to_scale(values: Any, scale: str) -> np.ndarray:
    """``values`` on the pooling ``scale`` (NaN where the transform is undefined, e.g. an
    AUROC of exactly 0 or 1 on the logit scale)."""
    x = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = SCALES[scale][0](x)
    return np.where(np.isfinite(out), out, np.nan)


def bootstrap_standard_error(draws: Any, scale: str, *, min_draws: int = 20) -> float:
    """The standard deviation of bootstrap ``draws`` on the pooling ``scale``: the standard
    error a meta-analysis takes. NaN with fewer than ``min_draws`` defined resamples."""
    if draws is None:
        return float("nan")
    x = np.asarray(draws, dtype=float)
    if scale == "logit":  # a resample at exactly 0 or 1 would be infinite: nudge it inside
        x = np.clip(x, 1e-4, 1 - 1e-4)
    values = to_scale(x, scale)
    values = values[np.isfinite(values)]
    return float(np.std(values, ddof=1)) if len(values) >= min_draws else float("nan")
