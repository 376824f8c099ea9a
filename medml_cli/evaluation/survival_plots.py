"""Survival evaluation figures as PNG files, drawn headless.

Same conventions as :mod:`medml_cli.evaluation.plots`: the Agg backend, one PNG at ``path``
(parent folders created), the figure closed, the path returned, and ``synthetic=True`` marks
the title "SYNTHETIC DATA". ``time`` is the follow-up time, ``event`` 1 for an observed event
and 0 for censoring, and ``risk`` the predicted risk score (higher = worse).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from medml_cli.evaluation.plots import _BAND, _finish, _pyplot

#: Columns of one horizon's table in :func:`plot_survival_calibration`.
CALIBRATION_COLUMNS = ("group", "n", "events", "predicted", "observed", "observed_low",
                       "observed_high")
#: Columns of one horizon's table in :func:`plot_survival_decision_curves`.
DECISION_COLUMNS = ("threshold", "model", "treat_all", "treat_none")


def _survival(time, event, risk=None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    t = np.asarray(time, dtype=float).ravel()
    e = np.asarray(event).astype(float).ravel()
    if len(t) == 0:
        raise ValueError("this figure needs at least one patient")
    if len(e) != len(t):
        raise ValueError(f"time has {len(t)} entries but event has {len(e)}")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(e))):
        raise ValueError("time and event must be finite (no missing values)")
    if not np.all(np.isin(e, (0.0, 1.0))):
        raise ValueError("event must be 0 (censored) or 1 (event)")
    if risk is None:
        return t, e.astype(bool), None
    r = np.asarray(risk, dtype=float).ravel()
    if len(r) != len(t):
        raise ValueError(f"time has {len(t)} entries but risk has {len(r)}")
    if not np.all(np.isfinite(r)):
        raise ValueError("risk must be finite (no missing values)")
    return t, e.astype(bool), r


def _time_label(time_unit: str) -> str:
    return f"time ({time_unit})" if time_unit else "time"


def _group_labels(k: int) -> list[str]:
    if k == 1:
        return ["all patients"]
    names = {2: ["low", "high"], 3: ["low", "middle", "high"]}.get(
        k, [f"group {i + 1} of {k}" for i in range(k)])
    return [f"{name} predicted risk" for name in names]


def risk_groups(risk, n_groups: int = 3) -> np.ndarray:
    """Quantile group (0 = lowest risk) of each patient; ties may leave fewer groups.

    Patient ``i`` goes to group ``floor(n_groups * (rank_i - 0.5) / n)`` with tied risks
    sharing their average rank (so tied patients share a group, and a tied block sits where
    its middle falls); groups are renumbered ``0 .. k-1`` so none is empty."""
    from scipy.stats import rankdata

    if n_groups < 1:
        raise ValueError(f"n_groups must be at least 1, got {n_groups}")
    r = np.asarray(risk, dtype=float).ravel()
    if len(r) == 0:
        return np.empty(0, dtype=int)
    codes = np.floor(n_groups * (rankdata(r, method="average") - 0.5) / len(r)).astype(int)
    return np.unique(np.minimum(codes, n_groups - 1), return_inverse=True)[1].ravel()


def plot_km_by_risk_group(time, event, risk, path, *, n_groups: int = 3, time_unit: str = "",
                          horizons: Sequence[float] = (), synthetic: bool = False) -> Path:
    """Kaplan-Meier observed survival (95% log-log band) per quantile group of predicted risk.

    Tied risks can leave fewer than ``n_groups`` groups; only non-empty groups are drawn.
    Dotted vertical lines mark ``horizons``."""
    from sksurv.nonparametric import kaplan_meier_estimator

    t, e, r = _survival(time, event, risk)
    codes = risk_groups(r, n_groups)
    k = int(codes.max()) + 1
    labels = _group_labels(k)

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    for g in range(k):
        mask = codes == g
        steps, surv, (low, high) = kaplan_meier_estimator(e[mask], t[mask], conf_type="log-log")
        # start at survival 1 at time 0 (or the earliest time, if earlier)
        start = min(0.0, float(t.min()))
        steps = np.r_[start, steps]
        surv = np.r_[1.0, surv]
        # an undefined band end (no events yet) collapses onto the curve
        low = np.r_[1.0, np.where(np.isnan(low), surv[1:], low)]
        high = np.r_[1.0, np.where(np.isnan(high), surv[1:], high)]
        ax.fill_between(steps, low, high, step="post", color=f"C{g}", **_BAND)
        ax.step(steps, surv, where="post", color=f"C{g}",
                label=f"{labels[g]} (n={int(mask.sum())}, events={int(e[mask].sum())})")
    for h in horizons:
        ax.axvline(float(h), linestyle=":", color="grey")
    ax.set(xlabel=_time_label(time_unit), ylabel="observed survival", ylim=(0, 1.02))
    ax.set_xlim(left=min(0.0, float(t.min())))
    ax.legend(loc="best", fontsize="small")
    title = f"Kaplan-Meier by predicted risk (n={len(t)}, events={int(e.sum())})"
    if k < n_groups:
        title += f"\ntied risks: {k} of {n_groups} groups"
    return _finish(fig, path, title, synthetic)


def default_auc_times(time, event, n: int = 20) -> np.ndarray:
    """``n`` times from the 10th to the 80th percentile of the event times, inside follow-up.

    sksurv needs every time in ``[min(time), max(time))``; times outside are dropped."""
    t, e, _ = _survival(time, event)
    if not e.any():
        return np.empty(0)
    lo, hi = np.percentile(t[e], [10, 80])
    grid = np.unique(np.linspace(lo, hi, n))
    return grid[(grid >= t.min()) & (grid < t.max())]


def time_dependent_auc_curve(time, event, risk, times=None
                             ) -> tuple[np.ndarray, np.ndarray, float]:
    """Cumulative/dynamic AUROC at ``times`` (sksurv's ``cumulative_dynamic_auc``).

    Returns the times kept (sorted), their AUC and the survival-weighted mean AUC over them.
    Times outside the follow-up, or with no case (event by t) or no control (still at risk
    after t), are dropped; with none left the arrays are empty and the mean is NaN. The
    censoring distribution is estimated from the same patients."""
    from sksurv.metrics import cumulative_dynamic_auc
    from sksurv.util import Surv

    t, e, r = _survival(time, event, risk)
    grid = default_auc_times(t, e) if times is None else \
        np.unique(np.asarray(times, dtype=float).ravel())
    grid = grid[np.isfinite(grid) & (grid >= t.min()) & (grid < t.max())]
    has_case = np.array([np.any(e & (t <= g)) for g in grid], dtype=bool)
    has_control = np.array([np.any(t > g) for g in grid], dtype=bool)
    grid = grid[has_case & has_control]
    if len(grid) == 0:
        return np.empty(0), np.empty(0), float("nan")
    y = Surv.from_arrays(event=e, time=t)
    auc, mean_auc = cumulative_dynamic_auc(y, y, r, grid)
    return grid, np.asarray(auc, dtype=float), float(mean_auc)


def plot_time_dependent_auc(times, auc, path, *, mean_auc: float | None = None,
                            time_unit: str = "", synthetic: bool = False) -> Path:
    """Time-dependent (cumulative/dynamic) AUROC over follow-up time, with the 0.5 line."""
    x = np.asarray(times, dtype=float).ravel()
    a = np.asarray(auc, dtype=float).ravel()
    if len(x) != len(a):
        raise ValueError(f"times has {len(x)} entries but auc has {len(a)}")
    keep = np.isfinite(x) & np.isfinite(a)

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    if keep.any():
        ax.plot(x[keep], a[keep], marker="o", color="C0", label="model")
    else:
        ax.text(0.5, 0.6, "no time with both cases and controls", ha="center",
                transform=ax.transAxes)
    ax.axhline(0.5, linestyle="--", color="grey", label="chance")
    ax.set(xlabel=_time_label(time_unit), ylabel="cumulative/dynamic AUROC", ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize="small")
    title = "Time-dependent AUROC"
    if mean_auc is not None and np.isfinite(mean_auc):
        title += f" (mean {mean_auc:.3f})"
    return _finish(fig, path, title, synthetic)


def _panels(tables: Mapping[str, pd.DataFrame], columns: Sequence[str], what: str):
    if not tables:
        raise ValueError(f"no {what} table to draw")
    for label, table in tables.items():
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise ValueError(f"{what} table for horizon {label} lacks columns {missing}")
    plt = _pyplot()
    ncols = min(3, len(tables))
    nrows = int(np.ceil(len(tables) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 4.4 * nrows), squeeze=False)
    for ax in axes.ravel()[len(tables):]:
        ax.set_visible(False)
    return fig, axes.ravel()[:len(tables)]


def _horizon_text(label: str, time_unit: str) -> str:
    return f"{label} {time_unit}".strip()


def plot_survival_calibration(tables: Mapping[str, pd.DataFrame], path, *, time_unit: str = "",
                              synthetic: bool = False) -> Path:
    """Predicted against Kaplan-Meier observed risk by each horizon, one panel per horizon.

    ``tables`` maps a horizon label to a table with ``CALIBRATION_COLUMNS`` (one row per
    risk group); the observed interval is drawn as a vertical error bar."""
    fig, axes = _panels(tables, CALIBRATION_COLUMNS, "calibration")
    for ax, (label, table) in zip(axes, tables.items(), strict=True):
        pred = table["predicted"].to_numpy(dtype=float)
        obs = table["observed"].to_numpy(dtype=float)
        low = table["observed_low"].to_numpy(dtype=float)
        high = table["observed_high"].to_numpy(dtype=float)
        # a missing interval end draws no bar on that side
        yerr = np.vstack([np.nan_to_num(np.clip(obs - low, 0, None)),
                          np.nan_to_num(np.clip(high - obs, 0, None))])
        values = np.r_[pred, obs, high]
        values = values[np.isfinite(values)]
        top = float(values.max()) if len(values) else 0.0
        lim = min(1.0, 1.05 * top) if top > 0 else 0.05
        ax.plot([0, lim], [0, lim], linestyle="--", color="grey", label="perfect calibration")
        ax.errorbar(pred, obs, yerr=yerr, fmt="o", color="C0", capsize=3,
                    label=f"{len(table)} groups (n={int(table['n'].sum())}, "
                          f"events={int(table['events'].sum())})")
        ax.set(xlim=(0, lim), ylim=(0, lim), aspect="equal",
               title=f"risk by {_horizon_text(label, time_unit)}",
               xlabel="predicted risk", ylabel="observed risk (Kaplan-Meier)")
        ax.legend(loc="lower right", fontsize="small")
    return _finish(fig, path, "Survival calibration", synthetic)


def plot_survival_decision_curves(curves: Mapping[str, pd.DataFrame], path, *,
                                  time_unit: str = "", synthetic: bool = False) -> Path:
    """Net benefit of the model, treat-all and treat-none by each horizon, one panel each.

    ``curves`` maps a horizon label to a table with ``DECISION_COLUMNS``."""
    fig, axes = _panels(curves, DECISION_COLUMNS, "decision-curve")
    for ax, (label, curve) in zip(axes, curves.items(), strict=True):
        threshold = curve["threshold"].to_numpy(dtype=float)
        model = curve["model"].to_numpy(dtype=float)
        treat_all = curve["treat_all"].to_numpy(dtype=float)
        ax.plot(threshold, model, color="C0", label="model")
        ax.plot(threshold, treat_all, color="C3", label="treat all")
        ax.plot(threshold, curve["treat_none"].to_numpy(dtype=float), color="black",
                label="treat none")
        # Treat-all dives towards -inf as pt -> 1; its best (at the lowest threshold) is about
        # the event risk by the horizon, the binary figure's prevalence.
        best = [v[np.isfinite(v)].max() for v in (model, treat_all) if np.isfinite(v).any()]
        top = max([0.0, *best]) * 1.1 + 0.01
        ax.set(xlabel="threshold probability", ylabel="net benefit", ylim=(-0.2 * top, top),
               title=f"risk by {_horizon_text(label, time_unit)}")
        if np.isfinite(threshold).any():
            ax.set_xlim(float(np.nanmin(threshold)), float(np.nanmax(threshold)))
        ax.legend(fontsize="small")
    return _finish(fig, path, "Survival decision curves", synthetic)
