"""Censoring-aware survival metrics, vectorised over bootstrap resamples.

Every metric takes ``time`` (> 0), ``event`` (1 = the event happened, 0 = censored) and
optional ``weights``: a (B, n) matrix of bootstrap multiplicities (row b = how often each
patient was drawn). Without weights a metric returns a float; with them a (B,) array whose
row b equals the metric on the data with rows repeated by those counts, so one call scores
every resample. The censoring distribution G (Kaplan–Meier of the censoring times, as
scikit-survival's ``CensoringDistributionEstimator``) is estimated from the data being
scored and re-estimated in every resample. The definitions follow scikit-survival's
``concordance_index_censored``, ``concordance_index_ipcw``, ``brier_score``,
``integrated_brier_score`` and ``cumulative_dynamic_auc``, and the decision curves follow
the ``dcurves`` package; the tests check each against them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Risk scores closer than this are tied (as scikit-survival's ``tied_tol``).
TIED_TOL = 1e-8
#: Elements of a (resamples x pairs) block computed at once; bounds memory for large n.
_BLOCK_ELEMENTS = 8_000_000


def horizon_label(h: float) -> str:
    """How a horizon appears in metric and column names: 365 -> "365", 2.5 -> "2.5"."""
    return f"{float(h):g}"


# --------------------------------------------------------------------------- plumbing
@dataclass
class _Sorted:
    """The rows in time order, their distinct times and multiplicities."""

    time: np.ndarray  # (n,) ascending
    event: np.ndarray  # (n,) 0/1 as float
    order: np.ndarray  # original index of each sorted row
    unique: np.ndarray  # (m,) distinct times
    start: np.ndarray  # (m,) first sorted row of each distinct time
    group: np.ndarray  # (n,) distinct-time index of each sorted row
    weights: np.ndarray  # (B, n) multiplicities in sorted order


def _sorted(time, event, weights) -> tuple[_Sorted, bool]:
    time = np.asarray(time, dtype=float).ravel()
    event = np.asarray(event, dtype=float).ravel()
    if len(time) != len(event):
        raise ValueError(f"time has {len(time)} entries but event has {len(event)}")
    squeeze = weights is None
    w = np.ones((1, len(time))) if weights is None else np.atleast_2d(
        np.asarray(weights, dtype=float))
    if w.shape[1] != len(time):
        raise ValueError(f"weights have {w.shape[1]} columns but there are {len(time)} rows")
    order = np.argsort(time, kind="mergesort")
    ts = time[order]
    unique, start = np.unique(ts, return_index=True)
    group = np.searchsorted(unique, ts)
    return _Sorted(ts, event[order], order, unique, start, group, w[:, order]), squeeze


def _out(values: np.ndarray, squeeze: bool) -> float | np.ndarray:
    values = np.asarray(values, dtype=float)
    return float(values[0]) if squeeze else values


def _km(s: _Sorted, *, reverse: bool) -> np.ndarray:
    """(B, m) Kaplan–Meier curve at each distinct time: of the event (``reverse=False``) or
    of censoring (``reverse=True``: events at a time leave the risk set before censoring)."""
    total = np.add.reduceat(s.weights, s.start, axis=1)
    events = np.add.reduceat(s.weights * s.event, s.start, axis=1)
    at_risk = np.cumsum(total[:, ::-1], axis=1)[:, ::-1]
    if reverse:
        at_risk = at_risk - events
        count = total - events
    else:
        count = events
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(count > 0, count / np.where(at_risk > 0, at_risk, 1.0), 0.0)
    return np.cumprod(1.0 - hazard, axis=1)


def _at(unique: np.ndarray, curve: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """Right-continuous step value(s) of ``curve`` at ``t`` (1 before the first time)."""
    index = np.searchsorted(unique, np.asarray(t, dtype=float), side="right") - 1
    values = curve[:, np.clip(index, 0, None)]
    return np.where(np.asarray(index) >= 0, values, 1.0)


def _inverse(values: np.ndarray) -> np.ndarray:
    """1 / values with 0 -> inf -> a weight of 0 (as scikit-survival's Brier score)."""
    with np.errstate(divide="ignore"):
        return np.where(values > 0, 1.0 / np.where(values > 0, values, 1.0), 0.0)


# --------------------------------------------------------------------------- estimators
def kaplan_meier(time, event, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct times and the Kaplan–Meier survival at each (a (B, m) matrix with weights)."""
    s, squeeze = _sorted(time, event, weights)
    curve = _km(s, reverse=False)
    return s.unique, curve[0] if squeeze else curve


def km_risk_at(time, event, t: float, weights=None) -> float | np.ndarray:
    """1 − Kaplan–Meier survival at ``t``: the observed risk of the event by ``t``."""
    s, squeeze = _sorted(time, event, weights)
    return _out(1.0 - _at(s.unique, _km(s, reverse=False), t), squeeze)


def _concordance(s: _Sorted, risk: np.ndarray, pair_weight: np.ndarray) -> np.ndarray:
    """Weighted concordance: ``pair_weight`` (B, n) weighs each sorted event row i; pairs
    (i, j) are comparable when j outlives i (or is censored at i's time)."""
    cases = np.flatnonzero(s.event == 1)
    if cases.size == 0:
        return np.full(s.weights.shape[0], np.nan)
    risk = risk[s.order]
    numerator = np.zeros(s.weights.shape[0])
    denominator = np.zeros(s.weights.shape[0])
    step = max(1, _BLOCK_ELEMENTS // max(1, len(risk)))
    for begin in range(0, cases.size, step):
        rows = cases[begin:begin + step]
        later = s.time[None, :] > s.time[rows, None]
        censored_same = (s.time[None, :] == s.time[rows, None]) & (s.event[None, :] == 0)
        comparable = (later | censored_same).astype(float)
        diff = risk[None, :] - risk[rows, None]
        tied = np.abs(diff) <= TIED_TOL
        score = comparable * np.where(tied, 0.5, (diff < 0).astype(float))
        a = pair_weight[:, rows]
        numerator += np.einsum("bi,bi->b", a, s.weights @ score.T)
        denominator += np.einsum("bi,bi->b", a, s.weights @ comparable.T)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def harrell_c(time, event, risk, weights=None) -> float | np.ndarray:
    """Harrell's concordance index: the share of comparable pairs where the patient with the
    event first has the higher risk (ties in risk count one half)."""
    s, squeeze = _sorted(time, event, weights)
    return _out(_concordance(s, np.asarray(risk, dtype=float), s.weights * s.event), squeeze)


def uno_c(time, event, risk, tau: float, weights=None) -> float | np.ndarray:
    """Uno's concordance index, inverse-probability-of-censoring weighted, truncated at
    ``tau`` (only events before tau count as the earlier patient)."""
    s, squeeze = _sorted(time, event, weights)
    g = _km(s, reverse=True)[:, s.group]  # G at each row's own time, per resample
    usable = (s.event == 1) & (s.time < tau)
    with np.errstate(divide="ignore"):
        ipcw = np.where(usable[None, :], 1.0 / np.square(np.where(g > 0, g, np.nan)), 0.0)
    undefined = (np.isnan(ipcw) & (s.weights > 0)).any(axis=1)
    value = _concordance(s, np.asarray(risk, dtype=float), s.weights * np.nan_to_num(ipcw))
    # G = 0 at an event time before tau: scikit-survival refuses; the metric is undefined
    value[undefined] = np.nan
    return _out(value, squeeze)


def _brier(s: _Sorted, g_curve: np.ndarray, surv_sorted: np.ndarray, t: float) -> np.ndarray:
    """(B,) IPCW Brier score at ``t`` for survival predictions in sorted order."""
    g_own = g_curve[:, s.group]
    g_t = _at(s.unique, g_curve, t)[:, None] if np.ndim(t) == 0 else _at(s.unique, g_curve, t)
    case = ((s.time <= t) & (s.event == 1)).astype(float)
    control = (s.time > t).astype(float)
    terms = (np.square(surv_sorted) * case * _inverse(g_own)
             + np.square(1.0 - surv_sorted) * control * _inverse(g_t))
    return (s.weights * terms).sum(axis=1) / s.weights.sum(axis=1)


def brier_at(time, event, surv_at_t, t: float, weights=None) -> float | np.ndarray:
    """The inverse-probability-of-censoring weighted Brier score at ``t`` (Graf et al.
    1999): mean squared error of the predicted survival S(t | x) against event-free by t."""
    s, squeeze = _sorted(time, event, weights)
    surv = np.asarray(surv_at_t, dtype=float).ravel()[s.order]
    return _out(_brier(s, _km(s, reverse=True), surv, t), squeeze)


def integrated_brier(time, event, surv_grid, grid, weights=None) -> float | np.ndarray:
    """The Brier score integrated over ``grid`` (trapezoid rule) and divided by its span."""
    grid = np.asarray(grid, dtype=float)
    if grid.size < 2:
        raise ValueError("the integrated Brier score needs at least two grid times")
    s, squeeze = _sorted(time, event, weights)
    surv = np.asarray(surv_grid, dtype=float)[s.order]
    g_curve = _km(s, reverse=True)
    scores = np.column_stack([_brier(s, g_curve, surv[:, k], t) for k, t in enumerate(grid)])
    return _out(np.trapezoid(scores, grid, axis=1) / (grid[-1] - grid[0]), squeeze)


def cumulative_dynamic_auc(time, event, risk_at_t, t: float,
                           weights=None) -> float | np.ndarray:
    """Time-dependent AUROC at ``t`` (cumulative cases: events by t, weighted by 1/G;
    dynamic controls: still event-free after t): the chance that a case has the higher
    predicted risk ``risk_at_t`` (e.g. 1 − S(t | x)) than a control."""
    s, squeeze = _sorted(time, event, weights)
    g = _km(s, reverse=True)[:, s.group]
    case = (s.time <= t) & (s.event == 1)
    case_w = s.weights * case * _inverse(g)
    control_w = s.weights * (s.time > t)
    risk = np.asarray(risk_at_t, dtype=float).ravel()[s.order]
    by_risk = np.argsort(risk, kind="mergesort")
    ordered = risk[by_risk]
    starts = np.r_[0, np.flatnonzero(np.diff(ordered) > TIED_TOL) + 1]  # tie groups
    cases_in = np.add.reduceat(case_w[:, by_risk], starts, axis=1)
    controls_in = np.add.reduceat(control_w[:, by_risk], starts, axis=1)
    below = np.cumsum(controls_in, axis=1) - controls_in
    numerator = (cases_in * (below + 0.5 * controls_in)).sum(axis=1)
    denominator = case_w.sum(axis=1) * control_w.sum(axis=1)
    bad = np.isinf(case_w).any(axis=1) | (
        (g <= 0) & case[None, :] & (s.weights > 0)).any(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = np.where((denominator > 0) & ~bad, numerator / denominator, np.nan)
    return _out(auc, squeeze)


def _cox_slope(s: _Sorted, x: np.ndarray, t: float, iterations: int = 50) -> np.ndarray:
    """(B,) coefficient of ``x`` (sorted order) in a Breslow Cox model of the outcome
    administratively censored at ``t``, fitted by Newton–Raphson in every resample."""
    w = s.weights
    events = ((s.event == 1) & (s.time <= t)).astype(float)
    x = x - np.average(x, weights=None)  # a shift of x leaves the coefficient unchanged
    # the risk set of a row: every row whose (censored-at-t) time is >= its own; times
    # beyond t are censored at t, after every event, so the sorted order still holds
    first_of_time = s.start[s.group]
    beta = np.zeros(w.shape[0])
    converged = np.zeros(w.shape[0], dtype=bool)
    for _ in range(iterations):
        with np.errstate(over="ignore", invalid="ignore"):
            e = w * np.exp(np.clip(beta[:, None] * x[None, :], -700, 700))
            s0 = np.cumsum(e[:, ::-1], axis=1)[:, ::-1][:, first_of_time]
            s1 = np.cumsum((e * x)[:, ::-1], axis=1)[:, ::-1][:, first_of_time]
            s2 = np.cumsum((e * x * x)[:, ::-1], axis=1)[:, ::-1][:, first_of_time]
            # rows after the last drawn patient have empty risk sets (and no weight)
            safe = np.where(s0 > 0, s0, 1.0)
            mean = s1 / safe
            d = w * events
            score = (d * (x - mean)).sum(axis=1)
            information = (d * (s2 / safe - mean * mean)).sum(axis=1)
            step = np.where(information > 0, score / information, np.nan)
        beta = np.where(converged, beta, beta + step)
        converged |= np.abs(step) < 1e-9 * np.maximum(1.0, np.abs(beta))
        if converged.all() or np.isnan(step).all():
            break
    beta[~converged | (np.abs(beta) > 50)] = np.nan
    beta[(w * events).sum(axis=1) == 0] = np.nan
    return beta


def calibration_slope_at(time, event, surv_at_t, t: float,
                         weights=None) -> float | np.ndarray:
    """Calibration slope at ``t``: the coefficient of log(−log S(t | x)) in a Cox model of
    the outcome censored at t (1: the spread of predicted risks is right; below 1 the
    predictions are too extreme; NaN where it cannot be estimated)."""
    s, squeeze = _sorted(time, event, weights)
    surv = np.clip(np.asarray(surv_at_t, dtype=float).ravel()[s.order], 1e-10, 1 - 1e-10)
    x = np.log(-np.log(surv))
    if np.ptp(x) == 0:
        return _out(np.full(s.weights.shape[0], np.nan), squeeze)
    return _out(_cox_slope(s, x, t), squeeze)


# --------------------------------------------------------------------------- tables
def _quantile_groups(risk: np.ndarray, n_groups: int) -> np.ndarray:
    """Group index of each patient: quantile groups of ``risk`` (fewer when tied)."""
    edges = np.unique(np.quantile(risk, np.linspace(0, 1, n_groups + 1)[1:-1]))
    return np.searchsorted(edges, risk, side="right")


def calibration_table(time, event, surv_at_t, t: float, n_groups: int = 10) -> pd.DataFrame:
    """Predicted risk by ``t`` against the Kaplan–Meier observed risk (with its 95% log-log
    interval) in quantile groups of predicted risk (deciles by default)."""
    from sksurv.nonparametric import kaplan_meier_estimator

    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    risk = 1.0 - np.asarray(surv_at_t, dtype=float)
    groups = _quantile_groups(risk, n_groups)
    rows = []
    for k, g in enumerate(np.unique(groups)):
        mask = groups == g
        observed = low = high = 0.0  # no event by t in the group: observed risk 0
        if event[mask].any():
            times, surv, ci = kaplan_meier_estimator(event[mask].astype(bool), time[mask],
                                                     conf_type="log-log")
            index = np.searchsorted(times, t, side="right") - 1
            if index >= 0:
                observed = 1.0 - float(surv[index])
                low, high = 1.0 - float(ci[1, index]), 1.0 - float(ci[0, index])
        rows.append({"group": k + 1, "n": int(mask.sum()), "events": int(event[mask].sum()),
                     "predicted": float(risk[mask].mean()), "observed": observed,
                     "observed_low": low, "observed_high": high})
    return pd.DataFrame(rows)


def net_benefit_at(time, event, risk_at_t, t: float, thresholds,
                   weights=None) -> np.ndarray:
    """Net benefit at ``t`` of treating patients whose predicted risk by t reaches each
    threshold probability pt: the Kaplan–Meier risk among them times their share, minus
    the event-free share among them times pt/(1 − pt) (Vickers et al. 2008, as ``dcurves``).
    (len(thresholds),), or (B, len(thresholds)) with weights; NaN where the positives'
    follow-up ends before t."""
    s, squeeze = _sorted(time, event, weights)
    risk = np.asarray(risk_at_t, dtype=float).ravel()[s.order]
    pts = np.asarray(thresholds, dtype=float).ravel()
    out = np.empty((s.weights.shape[0], len(pts)))
    total = s.weights.sum(axis=1)
    for k, pt in enumerate(pts):
        positive = risk >= pt
        share = (s.weights * positive).sum(axis=1) / total
        sub = _Sorted(s.time, s.event, s.order, s.unique, s.start, s.group,
                      s.weights * positive)
        km_risk = 1.0 - _at(s.unique, _km(sub, reverse=False), t)
        followed = (sub.weights * (s.time >= t)).sum(axis=1) > 0
        rate = np.where(share > 0, np.where(followed, km_risk, np.nan), 0.0)
        out[:, k] = rate * share - (1.0 - rate) * share * pt / (1.0 - pt)
    return out[0] if squeeze else out


def decision_curve_at(time, event, risk_at_t, t: float, thresholds=None) -> pd.DataFrame:
    """Columns threshold, model, treat_all, treat_none of the decision curve at ``t``."""
    from medml_cli.evaluation.decision_curve import default_thresholds

    pts = default_thresholds() if thresholds is None else np.asarray(thresholds, dtype=float)
    everyone = np.ones(len(np.asarray(time)))
    return pd.DataFrame({
        "threshold": pts,
        "model": net_benefit_at(time, event, risk_at_t, t, pts),
        "treat_all": net_benefit_at(time, event, everyone, t, pts),
        "treat_none": np.zeros(len(pts)),
    })


# --------------------------------------------------------------------------- the set
def survival_metrics(time, event, risk, surv_grid, grid, horizons,
                     weights=None) -> dict[str, float | np.ndarray]:
    """c_index, c_index_uno (truncated at the last horizon), integrated_brier (over the
    grid), then auroc@h, brier@h and calibration_slope@h for each horizon (a grid time)."""
    grid = np.asarray(grid, dtype=float)
    surv_grid = np.asarray(surv_grid, dtype=float)
    values: dict[str, float | np.ndarray] = {
        "c_index": harrell_c(time, event, risk, weights),
        "c_index_uno": uno_c(time, event, risk, float(max(horizons)), weights),
        "integrated_brier": integrated_brier(time, event, surv_grid, grid, weights),
    }
    for h in horizons:
        column = np.flatnonzero(np.isclose(grid, h))
        if column.size == 0:
            raise ValueError(f"horizon {h:g} is not one of the grid times")
        at_h = surv_grid[:, column[0]]
        label = horizon_label(h)
        values[f"auroc@{label}"] = cumulative_dynamic_auc(time, event, 1.0 - at_h, h, weights)
        values[f"brier@{label}"] = brier_at(time, event, at_h, h, weights)
        values[f"calibration_slope@{label}"] = calibration_slope_at(time, event, at_h, h,
                                                                    weights)
    return values


def survival_bootstrap(time, event, risk, surv_grid, grid, horizons, *, groups=None,
                       n_resamples: int = 1000, seed: int = 0,
                       stratify: bool = True) -> dict[str, np.ndarray]:
    """Every survival metric on each of ``n_resamples`` bootstrap resamples (stratified by
    the event; patients with all their rows when ``groups`` is given)."""
    from medml_cli.evaluation.bootstrap import resample_weights

    event = np.asarray(event, dtype=float)
    counts = resample_weights("binary-classification", event, groups=groups,
                              n_resamples=n_resamples, seed=seed, stratify=stratify)
    step = max(1, _BLOCK_ELEMENTS // (4 * max(1, len(event))))
    parts = [survival_metrics(time, event, risk, surv_grid, grid, horizons,
                              counts[begin:begin + step])
             for begin in range(0, n_resamples, step)]
    return {name: np.concatenate([np.atleast_1d(p[name]) for p in parts]) for name in parts[0]}


def survival_intervals(time, event, risk, surv_grid, grid, horizons, *, groups=None,
                       n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95,
                       stratify: bool = True) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of every survival metric (NaN resamples dropped)."""
    from medml_cli.evaluation.bootstrap import percentile_interval

    draws = survival_bootstrap(time, event, risk, surv_grid, grid, horizons, groups=groups,
                               n_resamples=n_resamples, seed=seed, stratify=stratify)
    return {name: percentile_interval(values, confidence) for name, values in draws.items()}
