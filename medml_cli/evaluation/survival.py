"""Censoring-aware survival metrics, vectorised over bootstrap resamples.

Every metric takes ``time`` (n,) > 0 and ``event`` (n,) 0/1 (1 = event, 0 = censored) and
optional ``weights``: None, or a (B, n) matrix of non-negative bootstrap multiplicities.
With ``weights=None`` a metric returns a float; with a (B, n) matrix a (B,) array whose row b
equals the unweighted metric on the data with each row repeated ``weights[b]`` times. The
rows are sorted once (by time, by risk); a resample only changes the weights, so each metric
is a few cumulative sums and reductions over the (B, n) matrix, with no loop over resamples.

The censoring distribution G (Kaplan-Meier of the censoring times, as scikit-survival's
``CensoringDistributionEstimator``) is re-estimated from the same weighted data being scored.
Definitions follow scikit-survival (concordance, IPCW Brier, cumulative/dynamic AUC) and
``dcurves`` (survival decision curves) exactly; where those raise (no comparable pairs, all
censored, G = 0 at a case's time, a time beyond follow-up) these return NaN.

One documented difference: the risk-tie tolerance of the AUC chains neighbouring scores
within 1e-8 (as scikit-survival does) over all n rows, including rows a resample did not draw,
so a resample can differ from the repeated data only when distinct risks lie within 1e-8 of
each other in a chain.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from medml_cli.evaluation.bootstrap import percentile_interval, resample_weights
from medml_cli.evaluation.decision_curve import default_thresholds

TIED_TOL = 1e-8  # scikit-survival's tied_tol for risk scores
# Bound on the elements of one (resamples x rows) count-matrix chunk. The metrics hold about
# ten arrays of that shape at once, so ~5M counts keep a chunk's working set near 50M elements.
_CHUNK_ELEMENTS = 5_000_000
_CLIP = 1e-10  # survival probabilities clipped to [1e-10, 1 - 1e-10] before log(-log S)


# --------------------------------------------------------------------------- input helpers
def horizon_label(h: float) -> str:
    """The horizon as it appears in metric names: 365 -> "365", 2.5 -> "2.5"."""
    return f"{h:g}"


def _check_survival(time, event) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(time, dtype=float).ravel()
    e = np.asarray(event).astype(float).ravel()
    if len(t) != len(e) or len(t) == 0:
        raise ValueError(f"time ({len(t)}) and event ({len(e)}) must be non-empty and equal")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("time must be finite and non-negative")
    if not np.all((e == 0) | (e == 1)):
        raise ValueError("event must be 0/1 (1 = event happened, 0 = censored)")
    return t, e


def _check_vector(values, n: int, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=float).ravel()
    if len(v) != n or not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be {n} finite numbers; got shape {np.shape(values)}")
    return v


def _as_weights(weights, n: int) -> tuple[np.ndarray, bool]:
    """(B, n) float weights and whether the caller passed None (-> return a float)."""
    if weights is None:
        return np.ones((1, n)), True
    w = np.asarray(weights, dtype=float)
    if w.ndim != 2 or w.shape[1] != n:
        raise ValueError(f"weights must be a (B, {n}) matrix; got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and non-negative")
    return w, False


def _finish(values: np.ndarray, scalar: bool) -> float | np.ndarray:
    values = np.asarray(values, dtype=float)
    return float(values[0]) if scalar else values


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(np.shape(num), np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _suffix_sum(x: np.ndarray) -> np.ndarray:
    return np.cumsum(x[:, ::-1], axis=1)[:, ::-1]


class _TimeGroups:
    """Rows sorted by time once, with the groups of tied times (the KM's distinct times)."""

    def __init__(self, time: np.ndarray, event: np.ndarray) -> None:
        self.order = np.argsort(time, kind="stable")
        ts = time[self.order]
        new = np.r_[True, ts[1:] != ts[:-1]]
        self.starts = np.flatnonzero(new)
        self.times = ts[self.starts]
        self.group = np.empty(len(time), dtype=np.intp)
        self.group[self.order] = np.cumsum(new) - 1
        self.event = event

    def sums(self, values: np.ndarray) -> np.ndarray:
        """(B, n) row values -> (B, U) sums per distinct time."""
        return np.add.reduceat(values[:, self.order], self.starts, axis=1)

    def index_at(self, t: float) -> int:
        """Index of the last distinct time <= t (-1 if t precedes them all)."""
        return int(np.searchsorted(self.times, t, side="right")) - 1

    def km_factors(self, w: np.ndarray, of_censoring: bool = False) -> np.ndarray:
        """(B, U) Kaplan-Meier factors 1 - d/n per distinct time (weighted counts).

        ``of_censoring`` gives the reverse KM of scikit-survival: censorings are the
        'events' and the risk set excludes the events at that time.
        """
        total = self.sums(w)
        events = self.sums(w * self.event)
        at_risk = _suffix_sum(total)
        if of_censoring:
            d, n = total - events, at_risk - events
        else:
            d, n = events, at_risk
        ratio = np.zeros_like(d)
        np.divide(d, n, out=ratio, where=d != 0)  # 0/0 (nobody left, nothing happens) -> 0
        return 1.0 - ratio


def _censoring_km(tg: _TimeGroups, w: np.ndarray) -> np.ndarray:
    """(B, U) G(u) = P(C > u) at each distinct time u, per resample."""
    return np.cumprod(tg.km_factors(w, of_censoring=True), axis=1)


def _g_at(tg: _TimeGroups, g: np.ndarray, t: float) -> np.ndarray:
    k = tg.index_at(t)
    return g[:, k] if k >= 0 else np.ones(g.shape[0])


# --------------------------------------------------------------------------- Kaplan-Meier
def kaplan_meier(time, event, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct times and the Kaplan-Meier S(t) there (``weights``: None or (n,) counts)."""
    t, e = _check_survival(time, event)
    w = np.ones(len(t)) if weights is None else _check_vector(weights, len(t), "weights")
    tg = _TimeGroups(t, e)
    return tg.times, np.cumprod(tg.km_factors(w[None, :]), axis=1)[0]


def _km_survival_at(tg: _TimeGroups, time: np.ndarray, w: np.ndarray, t: float) -> np.ndarray:
    """(B,) weighted KM S(t); NaN where nobody weighted is followed up to t."""
    k = tg.index_at(t)
    factors = tg.km_factors(w)
    s = np.prod(factors[:, : k + 1], axis=1) if k >= 0 else np.ones(w.shape[0])
    followed = (w @ (time >= t).astype(float)) > 0
    return np.where(followed, s, np.nan)


def km_risk_at(time, event, t: float, weights=None) -> float | np.ndarray:
    """1 - KM(t); NaN when nobody is followed up to t (beyond the last observed time)."""
    tt, e = _check_survival(time, event)
    w, scalar = _as_weights(weights, len(tt))
    return _finish(1.0 - _km_survival_at(_TimeGroups(tt, e), tt, w, float(t)), scalar)


# --------------------------------------------------------------------------- concordance
def _tie_bounds(sorted_risk: np.ndarray, r: np.ndarray, tol: float) -> tuple[np.ndarray, ...]:
    """For each r: lo = #{j: r - r_j > tol}, hi = #{j: r_j - r <= tol}, with the exact float
    predicates scikit-survival evaluates (a searchsorted guess, then corrected a step at a
    time; the predicates are monotone in r_j so the prefixes are well defined)."""
    n = len(sorted_risk)
    lo = np.searchsorted(sorted_risk, r - tol, side="left")
    hi = np.searchsorted(sorted_risk, r + tol, side="right")
    for _ in range(n + 1):
        dec = (lo > 0) & ~(r - sorted_risk[np.maximum(lo - 1, 0)] > tol)
        inc = (lo < n) & (r - sorted_risk[np.minimum(lo, n - 1)] > tol)
        hinc = (hi < n) & (sorted_risk[np.minimum(hi, n - 1)] - r <= tol)
        hdec = (hi > 0) & ~(sorted_risk[np.maximum(hi - 1, 0)] - r <= tol)
        if not (dec.any() or inc.any() or hinc.any() or hdec.any()):
            break
        lo = lo - dec + inc
        hi = hi + hinc - hdec
    return lo, hi


class _ConcordancePlan:
    """Per event i, the weighted count of comparable j and of concordant j (ties = 1/2).

    j is comparable to event i when t_j > t_i, or t_j == t_i and j is censored (Harrell, as
    scikit-survival). With keys 3g+1 for event i as a query and 3g+2 (censored) / 3g (event)
    for j as data (g = rank of the distinct time), comparable <=> key_j > key_i. The sums
    over j are then offline 2-D dominance counts (key, risk rank), done by divide and
    conquer over key order: at each level a query in a left half meets the data of its
    right sibling, sorted by risk rank. The index arrays depend only on the data, so a
    resample costs ~log2(n) cumulative sums over its weights.
    """

    def __init__(self, time: np.ndarray, event: np.ndarray, risk: np.ndarray,
                 tol: float = TIED_TOL) -> None:
        n = len(time)
        _, g = np.unique(time, return_inverse=True)
        g = g.ravel().astype(np.int64)
        self.event_rows = np.flatnonzero(event == 1)
        nq = len(self.event_rows)
        risk_order = np.argsort(risk, kind="stable")
        rank = np.empty(n, dtype=np.int64)
        rank[risk_order] = np.arange(n)
        lo, hi = _tie_bounds(risk[risk_order], risk[self.event_rows], tol)
        key = np.r_[3 * g[self.event_rows] + 1, 3 * g + np.where(event == 1, 0, 2)]
        m = len(key)
        position = np.empty(m, dtype=np.int64)
        position[np.argsort(key, kind="stable")] = np.arange(m)
        q_pos, d_pos = position[:nq], position[nq:]
        stride = n + 1
        self.levels = []
        level = 1
        while nq and (1 << (level - 1)) < m:
            d_sel = np.flatnonzero((d_pos >> (level - 1)) & 1)
            q_sel = np.flatnonzero(((q_pos >> (level - 1)) & 1) == 0)
            if len(d_sel) and len(q_sel):
                dkey = (d_pos[d_sel] >> level) * stride + rank[d_sel]
                perm = np.argsort(dkey, kind="stable")
                sorted_key = dkey[perm]
                qbase = (q_pos[q_sel] >> level) * stride
                at = [np.searchsorted(sorted_key, qbase + off, side="left")
                      for off in (0, lo[q_sel], hi[q_sel], n)]
                self.levels.append((d_sel[perm], q_sel, *at))
            level += 1
        self.n_queries = nq

    def sums(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, n_events) concordant (+ half ties) and comparable weighted counts."""
        b = w.shape[0]
        num = np.zeros((b, self.n_queries))
        den = np.zeros((b, self.n_queries))
        for rows, q, at_base, at_lo, at_hi, at_end in self.levels:
            cs = np.zeros((b, len(rows) + 1))
            np.cumsum(w[:, rows], axis=1, out=cs[:, 1:])
            base = cs[:, at_base]
            num[:, q] += 0.5 * (cs[:, at_lo] + cs[:, at_hi]) - base
            den[:, q] += cs[:, at_end] - base
        return num, den


def _harrell(plan: _ConcordancePlan, w: np.ndarray,
             pair_sums: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    num, den = pair_sums
    u = w[:, plan.event_rows]
    return _ratio(np.sum(u * num, axis=1), np.sum(u * den, axis=1))


def _uno(plan: _ConcordancePlan, time: np.ndarray, tg: _TimeGroups, g: np.ndarray,
         w: np.ndarray, tau: float, pair_sums: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    num, den = pair_sums
    rows = plan.event_rows
    # Event i weighs 1 / G(t_i)^2 when t_i < tau and 0 otherwise (scikit-survival).
    u = w[:, rows] * (time[rows] < tau)
    g_i = g[:, tg.group[rows]]
    bad = np.any((u > 0) & (g_i <= 0), axis=1)  # scikit-survival raises: G = 0 at an event
    u = np.divide(u, g_i ** 2, out=np.zeros_like(u), where=u > 0)
    out = _ratio(np.sum(u * num, axis=1), np.sum(u * den, axis=1))
    return np.where(bad, np.nan, out)


def harrell_c(time, event, risk, weights=None) -> float | np.ndarray:
    """Harrell's concordance (higher risk = earlier event), as scikit-survival's
    ``concordance_index_censored`` (risk ties within 1e-8 count 1/2, tied event times are
    not comparable, a censoring at an event's time is); NaN without comparable pairs."""
    t, e = _check_survival(time, event)
    r = _check_vector(risk, len(t), "risk")
    w, scalar = _as_weights(weights, len(t))
    plan = _ConcordancePlan(t, e, r)
    return _finish(_harrell(plan, w, plan.sums(w)), scalar)


def uno_c(time, event, risk, tau: float, weights=None) -> float | np.ndarray:
    """Uno's IPCW concordance truncated at ``tau``, as scikit-survival's
    ``concordance_index_ipcw`` with the scored data as both train and test."""
    t, e = _check_survival(time, event)
    r = _check_vector(risk, len(t), "risk")
    w, scalar = _as_weights(weights, len(t))
    plan = _ConcordancePlan(t, e, r)
    tg = _TimeGroups(t, e)
    out = _uno(plan, t, tg, _censoring_km(tg, w), w, float(tau), plan.sums(w))
    return _finish(out, scalar)


# --------------------------------------------------------------------------- Brier
def _brier_grid(tg: _TimeGroups, time: np.ndarray, event: np.ndarray, surv: np.ndarray,
                grid: np.ndarray, w: np.ndarray, g: np.ndarray) -> np.ndarray:
    """(B, len(grid)) IPCW Brier scores (Graf): cases weighted 1/G(t_i), controls 1/G(t)."""
    case = (time[:, None] <= grid[None, :]) & (event[:, None] == 1)  # (n, T)
    control = time[:, None] > grid[None, :]
    g_y = g[:, tg.group]  # (B, n)
    we = w * event
    ipcw = np.divide(we, g_y, out=np.zeros_like(we), where=we > 0)
    case_sum = ipcw @ (surv ** 2 * case)
    control_w = w @ ((1.0 - surv) ** 2 * control)
    g_t = np.stack([_g_at(tg, g, float(t)) for t in grid], axis=1)  # (B, T)
    at_risk = w @ control.astype(float)
    total = w.sum(axis=1, keepdims=True)
    out = (case_sum + np.divide(control_w, g_t, out=np.zeros_like(control_w),
                                where=at_risk > 0)) / total
    # Undefined: nobody followed beyond t (scikit-survival refuses such t), no events at all
    # (it refuses all-censored data), or G = 0 at a case's own time.
    bad_case = ((we > 0) & (g_y <= 0)).astype(float) @ case.astype(float) > 0
    no_events = (we.sum(axis=1) == 0)[:, None]
    return np.where((at_risk > 0) & ~bad_case & ~no_events, out, np.nan)


def brier_at(time, event, surv_at_t, t: float, weights=None) -> float | np.ndarray:
    """IPCW Brier score at ``t`` of the predicted S(t|x), as scikit-survival's
    ``brier_score(y, y, surv_at_t[:, None], [t])``."""
    tt, e = _check_survival(time, event)
    s = _check_vector(surv_at_t, len(tt), "surv_at_t")
    w, scalar = _as_weights(weights, len(tt))
    tg = _TimeGroups(tt, e)
    out = _brier_grid(tg, tt, e, s[:, None], np.array([float(t)]), w, _censoring_km(tg, w))
    return _finish(out[:, 0], scalar)


def _check_grid(surv_grid, grid, n: int) -> tuple[np.ndarray, np.ndarray]:
    grid = np.asarray(grid, dtype=float).ravel()
    surv = np.asarray(surv_grid, dtype=float)
    if surv.shape != (n, len(grid)) or not np.all(np.isfinite(surv)):
        raise ValueError(f"surv_grid must be finite of shape ({n}, {len(grid)}); "
                         f"got {surv.shape}")
    if len(grid) < 2 or np.any(np.diff(grid) <= 0):
        raise ValueError("grid must hold at least two strictly increasing times")
    return surv, grid


def _ibs(brier: np.ndarray, grid: np.ndarray) -> np.ndarray:
    widths = np.diff(grid)
    area = np.sum(widths * (brier[:, 1:] + brier[:, :-1]) / 2.0, axis=1)
    return area / (grid[-1] - grid[0])


def integrated_brier(time, event, surv_grid, grid, weights=None) -> float | np.ndarray:
    """Trapezoid integral of the Brier score over ``grid`` / (grid[-1] - grid[0]), as
    scikit-survival's ``integrated_brier_score``; NaN if any grid time is undefined."""
    tt, e = _check_survival(time, event)
    surv, grid = _check_grid(surv_grid, grid, len(tt))
    w, scalar = _as_weights(weights, len(tt))
    tg = _TimeGroups(tt, e)
    return _finish(_ibs(_brier_grid(tg, tt, e, surv, grid, w, _censoring_km(tg, w)), grid),
                   scalar)


# --------------------------------------------------------------------------- AUC(t)
def _auc(tg: _TimeGroups, time: np.ndarray, event: np.ndarray, risk: np.ndarray, t: float,
         w: np.ndarray, g: np.ndarray) -> np.ndarray:
    order = np.argsort(-risk, kind="stable")
    r = risk[order]
    # A threshold admits a whole run of scores within tied_tol of their neighbour, as in
    # scikit-survival (which keeps only the last point of such a run).
    starts = np.flatnonzero(np.r_[True, np.abs(np.diff(r)) > TIED_TOL])
    case = (time <= t) & (event == 1)
    g_y = g[:, tg.group]
    wc = w * case
    bad = np.any((wc > 0) & (g_y <= 0), axis=1)
    cases = np.divide(wc, g_y, out=np.zeros_like(wc), where=wc > 0)
    cases = np.add.reduceat(cases[:, order], starts, axis=1)
    controls = np.add.reduceat((w * (time > t))[:, order], starts, axis=1)
    tp = np.cumsum(cases, axis=1)
    fp = np.cumsum(controls, axis=1)
    n_cases, n_controls = tp[:, -1:], fp[:, -1:]
    ok = (n_cases[:, 0] > 0) & (n_controls[:, 0] > 0) & ~bad
    tp = np.divide(tp, n_cases, out=np.zeros_like(tp), where=n_cases > 0)
    fp = np.divide(fp, n_controls, out=np.zeros_like(fp), where=n_controls > 0)
    tp_prev = np.concatenate([np.zeros((len(tp), 1)), tp[:, :-1]], axis=1)
    fp_prev = np.concatenate([np.zeros((len(fp), 1)), fp[:, :-1]], axis=1)
    auc = np.sum((fp - fp_prev) * (tp + tp_prev) / 2.0, axis=1)
    return np.where(ok, auc, np.nan)


def cumulative_dynamic_auc(time, event, risk_at_t, t: float, weights=None
                           ) -> float | np.ndarray:
    """Cumulative/dynamic AUROC at ``t`` (cases: event by t, weighted 1/G(t_i); controls:
    t_i > t), as scikit-survival's ``cumulative_dynamic_auc(y, y, risk_at_t, t)[0]``;
    ``risk_at_t`` higher = more likely to have had the event by t (e.g. 1 - S(t|x))."""
    tt, e = _check_survival(time, event)
    r = _check_vector(risk_at_t, len(tt), "risk_at_t")
    w, scalar = _as_weights(weights, len(tt))
    tg = _TimeGroups(tt, e)
    return _finish(_auc(tg, tt, e, r, float(t), w, _censoring_km(tg, w)), scalar)


# --------------------------------------------------------------------------- calibration
def _log_minus_log(surv: np.ndarray) -> np.ndarray:
    s = np.clip(surv, _CLIP, 1.0 - _CLIP)
    return np.log(-np.log(s))


def _cox_slope(time: np.ndarray, event: np.ndarray, x: np.ndarray, t: float, w: np.ndarray,
               max_iter: int = 30, tol: float = 1e-10) -> np.ndarray:
    """(B,) Breslow Cox coefficient of x after administrative censoring at t, by Newton-
    Raphson on all resamples at once (with step halving when the likelihood drops)."""
    e = ((event == 1) & (time <= t)).astype(float)
    tg = _TimeGroups(np.minimum(time, t), e)
    xs = x - x.mean()  # centring leaves the coefficient unchanged and keeps exp() tame
    xo = xs[tg.order]
    wo = w[:, tg.order]
    d = np.add.reduceat(wo * e[tg.order], tg.starts, axis=1)
    xd = np.add.reduceat(wo * (e * xs)[tg.order], tg.starts, axis=1)
    has_d = d > 0
    b = w.shape[0]
    beta = np.zeros(b)
    step = np.zeros(b)
    ll_prev = np.full(b, -np.inf)
    converged = np.zeros(b, dtype=bool)
    failed = ~np.any(has_d, axis=1)  # no events before t
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(max_iter):
            eta = beta[:, None] * xo[None, :]
            shift = eta.max(axis=1, keepdims=True)
            ex = wo * np.exp(eta - shift)
            s0 = _suffix_sum(np.add.reduceat(ex, tg.starts, axis=1))
            s1 = _suffix_sum(np.add.reduceat(ex * xo, tg.starts, axis=1))
            s2 = _suffix_sum(np.add.reduceat(ex * xo ** 2, tg.starts, axis=1))
            m1 = np.where(has_d, s1 / s0, 0.0)
            m2 = np.where(has_d, s2 / s0, 0.0)
            log_s0 = np.where(has_d, np.log(np.where(has_d, s0, 1.0)), 0.0) + shift
            ll = np.sum(beta[:, None] * xd - d * log_s0, axis=1)
            score = np.sum(xd - d * m1, axis=1)
            info = np.sum(d * (m2 - m1 ** 2), axis=1)
            active = ~(converged | failed)
            if not active.any():
                break
            worse = active & (ll < ll_prev - 1e-12 * np.abs(ll_prev))
            newton = active & ~worse
            failed |= newton & ~(np.isfinite(info) & (info > 0) & np.isfinite(score))
            newton &= ~failed
            # Overshoot: go back half the last step; otherwise take the Newton step.
            step = np.where(worse, step / 2.0, step)
            beta = np.where(worse, beta - step, beta)
            new_step = np.where(newton, score / np.where(newton, info, 1.0), 0.0)
            converged |= newton & (np.abs(new_step) <= tol * (1.0 + np.abs(beta)))
            ll_prev = np.where(newton, ll, ll_prev)
            step = np.where(newton, new_step, step)
            beta = beta + new_step
    return np.where(converged & ~failed & np.isfinite(beta), beta, np.nan)


def calibration_slope_at(time, event, surv_at_t, t: float, weights=None) -> float | np.ndarray:
    """Cox calibration slope at ``t``: the Breslow Cox coefficient of log(-log S(t|x)) with
    follow-up administratively censored at t (1 = right spread, < 1 = too extreme); NaN when
    there are no events before t or Newton-Raphson does not converge."""
    tt, e = _check_survival(time, event)
    s = _check_vector(surv_at_t, len(tt), "surv_at_t")
    w, scalar = _as_weights(weights, len(tt))
    return _finish(_cox_slope(tt, e, _log_minus_log(s), float(t), w), scalar)


def _km_with_ci(time: np.ndarray, event: np.ndarray, t: float,
                confidence: float = 0.95) -> tuple[float, float, float]:
    """KM S(t) and its log-log Greenwood interval (scikit-survival's ``conf_type="log-log"``);
    NaN when t lies beyond the last observed time and S has not reached 0."""
    tg = _TimeGroups(time, event)
    w = np.ones((1, len(time)))
    d = tg.sums(w * event)[0]
    n = _suffix_sum(tg.sums(w))[0]
    k = tg.index_at(t)
    if k < 0:
        return 1.0, 1.0, 1.0
    s_all = np.cumprod(1.0 - d / n)
    s = float(s_all[k])
    if t > tg.times[-1] and s > 0:
        return float("nan"), float("nan"), float("nan")
    var = np.divide(d, n * (n - d), out=np.zeros_like(d), where=(d != 0) & (n != d))
    sigma = float(np.sqrt(np.sum(var[: k + 1])))
    eps = np.finfo(float).eps
    if s <= eps:
        return s, 0.0, 0.0
    log_s = np.log(s)
    theta = sigma / log_s if log_s < -eps else 0.0
    z = norm.isf((1.0 - confidence) / 2.0)
    a, b = np.exp(np.exp(np.array([-z, z]) * theta) * log_s)
    return s, float(min(a, b)), float(max(a, b))


def calibration_table(time, event, surv_at_t, t: float, n_groups: int = 10) -> pd.DataFrame:
    """Observed (1 - KM at t, log-log 95% CI) against mean predicted risk 1 - S(t) in
    ``n_groups`` quantile groups of predicted risk (fewer when ties or small n merge them).

    Columns: group (1 = lowest risk), n, events (by t), predicted, observed, observed_low,
    observed_high.
    """
    tt, e = _check_survival(time, event)
    s = _check_vector(surv_at_t, len(tt), "surv_at_t")
    risk = 1.0 - s
    if len(np.unique(risk)) > 1:
        # Tied risks stay together, so heavy ties (or small n) give fewer groups.
        codes = pd.qcut(risk, q=min(n_groups, len(risk)), labels=False, duplicates="drop")
    else:
        codes = np.zeros(len(risk), dtype=int)
    rows = []
    for k, code in enumerate(sorted(pd.unique(codes))):
        members = np.asarray(codes == code)
        surv_k, low_s, high_s = _km_with_ci(tt[members], e[members], float(t))
        rows.append({
            "group": k + 1,
            "n": int(members.sum()),
            "events": int(np.sum((e[members] == 1) & (tt[members] <= t))),
            "predicted": float(np.mean(risk[members])),
            "observed": 1.0 - surv_k,
            "observed_low": 1.0 - high_s,
            "observed_high": 1.0 - low_s,
        })
    return pd.DataFrame(rows, columns=["group", "n", "events", "predicted", "observed",
                                       "observed_low", "observed_high"])


# --------------------------------------------------------------------------- decision curve
def _check_thresholds(thresholds) -> np.ndarray:
    pt = np.atleast_1d(np.asarray(thresholds, dtype=float))
    if np.any((pt <= 0) | (pt >= 1)):
        raise ValueError("threshold probabilities must lie strictly between 0 and 1")
    return pt


def _net_benefit(tg: _TimeGroups, time: np.ndarray, risk: np.ndarray, t: float,
                 pt: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(B, len(pt)) survival net benefit (dcurves): among patients with risk >= pt, the KM
    risk by t gives true and false positives; NaN when those patients' follow-up (or
    everyone's) ends before t; 0 when nobody is positive."""
    total = w.sum(axis=1)
    followed_any = (w @ (time >= t).astype(float)) > 0
    out = np.empty((w.shape[0], len(pt)))
    for j, p in enumerate(pt):
        wp = w * (risk >= p)
        pos_rate = wp.sum(axis=1) / total
        km_risk = 1.0 - _km_survival_at(tg, time, wp, t)
        km_risk = np.where(pos_rate > 0, km_risk, 0.0)
        nb = km_risk * pos_rate - p / (1.0 - p) * (1.0 - km_risk) * pos_rate
        out[:, j] = np.where(followed_any, nb, np.nan)
    return out


def net_benefit_at(time, event, risk_at_t, t: float, thresholds, weights=None
                   ) -> np.ndarray:
    """Net benefit at each threshold for the outcome 'event by t' (Vickers et al. 2008, as
    ``dcurves``): (len(thresholds),) without weights, (B, len(thresholds)) with."""
    tt, e = _check_survival(time, event)
    r = _check_vector(risk_at_t, len(tt), "risk_at_t")
    pt = _check_thresholds(thresholds)
    w, scalar = _as_weights(weights, len(tt))
    out = _net_benefit(_TimeGroups(tt, e), tt, r, float(t), pt, w)
    return out[0] if scalar else out


def decision_curve_at(time, event, risk_at_t, t: float, thresholds=None) -> pd.DataFrame:
    """Columns threshold, model, treat_all, treat_none (= 0), like the binary
    :func:`medml_cli.evaluation.decision_curve.decision_curve`, for the outcome 'event by t'.
    """
    pt = _check_thresholds(default_thresholds() if thresholds is None else thresholds)
    tt, e = _check_survival(time, event)
    r = _check_vector(risk_at_t, len(tt), "risk_at_t")
    tg = _TimeGroups(tt, e)
    w = np.ones((1, len(tt)))
    return pd.DataFrame({
        "threshold": pt,
        "model": _net_benefit(tg, tt, r, float(t), pt, w)[0],
        "treat_all": _net_benefit(tg, tt, np.ones(len(tt)), float(t), pt, w)[0],
        "treat_none": np.zeros(len(pt)),
    })


# --------------------------------------------------------------------------- all metrics
def _horizon_columns(grid: np.ndarray, horizons) -> list[tuple[float, int]]:
    out = []
    for h in np.atleast_1d(np.asarray(horizons, dtype=float)):
        hits = np.flatnonzero(np.isclose(grid, h))
        if len(hits) == 0:
            raise ValueError(f"horizon {h:g} is not one of the grid times")
        out.append((float(h), int(hits[0])))
    if not out:
        raise ValueError("at least one horizon is needed")
    return out


def _metrics(t: np.ndarray, e: np.ndarray, r: np.ndarray, surv: np.ndarray, grid: np.ndarray,
             columns: list[tuple[float, int]], w: np.ndarray, plan: _ConcordancePlan,
             tg: _TimeGroups) -> dict[str, np.ndarray]:
    g = _censoring_km(tg, w)
    pair_sums = plan.sums(w)
    brier = _brier_grid(tg, t, e, surv, grid, w, g)
    out = {
        "c_index": _harrell(plan, w, pair_sums),
        "c_index_uno": _uno(plan, t, tg, g, w, columns[-1][0], pair_sums),
        "integrated_brier": _ibs(brier, grid),
    }
    for h, col in columns:
        label = horizon_label(h)
        out[f"auroc@{label}"] = _auc(tg, t, e, 1.0 - surv[:, col], h, w, g)
        out[f"brier@{label}"] = brier[:, col]
        out[f"calibration_slope@{label}"] = _cox_slope(t, e, _log_minus_log(surv[:, col]), h, w)
    return out


def _prepare(time, event, risk, surv_grid, grid, horizons):
    t, e = _check_survival(time, event)
    r = _check_vector(risk, len(t), "risk")
    surv, grid = _check_grid(surv_grid, grid, len(t))
    return t, e, r, surv, grid, _horizon_columns(grid, horizons)


def survival_metrics(time, event, risk, surv_grid, grid, horizons, weights=None
                     ) -> dict[str, float | np.ndarray]:
    """c_index, c_index_uno (tau = last horizon), integrated_brier (over ``grid``), then per
    horizon h (one of the grid times): auroc@h, brier@h, calibration_slope@h."""
    t, e, r, surv, grid, columns = _prepare(time, event, risk, surv_grid, grid, horizons)
    w, scalar = _as_weights(weights, len(t))
    values = _metrics(t, e, r, surv, grid, columns, w, _ConcordancePlan(t, e, r),
                      _TimeGroups(t, e))
    return {name: _finish(v, scalar) for name, v in values.items()}


def _draw_chunks(event: np.ndarray, groups, n_resamples: int, seed: int, stratify: bool):
    """Yield count matrices of at most ~_CHUNK_ELEMENTS, ``n_resamples`` rows in all.

    The chunk size depends on n only and chunk k draws from a seed derived from (seed, k),
    so the draws depend only on the seed and the data.
    """
    n = len(event)
    step = max(1, _CHUNK_ELEMENTS // max(1, n))
    for k, start in enumerate(range(0, n_resamples, step)):
        chunk_seed = int(np.random.SeedSequence([seed, k]).generate_state(1, np.uint64)[0])
        yield resample_weights("binary-classification", event.astype(int), groups=groups,
                               n_resamples=min(step, n_resamples - start), seed=chunk_seed,
                               stratify=stratify)


def survival_bootstrap(time, event, risk, surv_grid, grid, horizons, *, groups=None,
                       n_resamples: int = 1000, seed: int = 0, stratify: bool = True
                       ) -> dict[str, np.ndarray]:
    """Every :func:`survival_metrics` metric on every resample (event-stratified; patients
    drawn with all their rows when ``groups`` is given); NaN where undefined."""
    t, e, r, surv, grid, columns = _prepare(time, event, risk, surv_grid, grid, horizons)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1; got {n_resamples}")
    if groups is not None and len(np.asarray(groups)) != len(t):
        raise ValueError(f"groups has {len(np.asarray(groups))} entries but time has {len(t)}")
    plan, tg = _ConcordancePlan(t, e, r), _TimeGroups(t, e)  # built once for all chunks
    parts = [_metrics(t, e, r, surv, grid, columns, w, plan, tg)
             for w in _draw_chunks(e, groups, n_resamples, seed, stratify)]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def survival_intervals(time, event, risk, surv_grid, grid, horizons, *, groups=None,
                       n_resamples: int = 1000, seed: int = 0, stratify: bool = True,
                       confidence: float = 0.95) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval per metric, NaN resamples dropped ((nan, nan) if none)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    draws = survival_bootstrap(time, event, risk, surv_grid, grid, horizons, groups=groups,
                               n_resamples=n_resamples, seed=seed, stratify=stratify)
    return {name: percentile_interval(v, confidence) for name, v in draws.items()}
