"""Survival figures as PNG files, drawn headless (the conventions of
:mod:`medml_cli.evaluation.plots`: one file per function, ``synthetic`` marks the title)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from medml_cli.evaluation.plots import _BAND, _finish, _pyplot
from medml_cli.evaluation.survival import TIED_TOL

_GROUP_NAMES = {1: ["all patients"], 2: ["lower", "higher"], 3: ["low", "middle", "high"]}


def _unit_label(time_unit: str) -> str:
    return f"time ({time_unit})" if time_unit else "time"


def risk_groups(risk: np.ndarray, n_groups: int = 3) -> np.ndarray:
    """Group index (0 = lowest risk) of each patient: quantile groups of ``risk``; tied risks
    make fewer groups, never an empty one."""
    edges = np.unique(np.quantile(risk, np.linspace(0, 1, n_groups + 1)[1:-1]))
    groups = np.searchsorted(edges, risk, side="right")
    _, dense = np.unique(groups, return_inverse=True)
    return dense.ravel()


def plot_km_by_risk_group(time, event, risk, path, *, n_groups: int = 3, time_unit: str = "",
                          horizons: Sequence[float] = (), synthetic: bool = False) -> Path:
    """Kaplan–Meier curves (95% log-log band) of observed survival per predicted-risk group."""
    from sksurv.nonparametric import kaplan_meier_estimator

    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float).astype(bool)
    groups = risk_groups(np.asarray(risk, dtype=float), n_groups)
    k = int(groups.max()) + 1
    names = _GROUP_NAMES.get(k, [f"group {i + 1}" for i in range(k)])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for g in range(k):
        mask = groups == g
        if event[mask].any():
            times, surv, ci = kaplan_meier_estimator(event[mask], time[mask],
                                                     conf_type="log-log")
        else:  # no event: the curve stays at 1 until the last follow-up
            times, surv, ci = (np.array([time[mask].max()]), np.ones(1), np.ones((2, 1)))
        times = np.r_[0.0, times]
        surv, low, high = np.r_[1.0, surv], np.r_[1.0, ci[0]], np.r_[1.0, ci[1]]
        color = f"C{g}"
        ax.step(times, surv, where="post", color=color,
                label=f"{names[g]} predicted risk (n={int(mask.sum())}, "
                      f"events={int(event[mask].sum())})")
        ax.fill_between(times, low, high, step="post", color=color, **_BAND)
    for h in horizons:
        ax.axvline(h, color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel=_unit_label(time_unit), ylabel="observed survival", ylim=(0, 1.02))
    ax.legend(fontsize="small", loc="lower left")
    return _finish(fig, path, "Observed survival by predicted-risk group", synthetic)


def time_dependent_auc_curve(time, event, risk,
                             times=None) -> tuple[np.ndarray, np.ndarray, float]:
    """Time-dependent AUROC (scikit-survival's cumulative/dynamic estimator) at ``times``
    (default: 20 times from the 10th to the 80th percentile of the event times), and its
    mean over time; times where it is undefined are dropped."""
    from sksurv.metrics import cumulative_dynamic_auc
    from sksurv.util import Surv

    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float).astype(bool)
    y = Surv.from_arrays(event=event, time=time)
    if times is None:
        low, high = np.percentile(time[event], [10, 80])
        times = np.linspace(low, high, 20)
    times = np.asarray(times, dtype=float)
    # scikit-survival needs times inside the follow-up: [min, max) of the observed times
    times = np.unique(times[(times >= time.min()) & (times < time.max())])
    times = times[[bool(np.any((time <= t) & event)) and bool(np.any(time > t))
                   for t in times]]
    if times.size == 0:
        return times, np.array([]), float("nan")
    auc, mean_auc = cumulative_dynamic_auc(y, y, np.asarray(risk, dtype=float), times,
                                           tied_tol=TIED_TOL)
    return times, np.asarray(auc, dtype=float), float(mean_auc)


def plot_time_dependent_auc(times, auc, path, *, mean_auc: float | None = None,
                            time_unit: str = "", synthetic: bool = False) -> Path:
    """AUROC of the risk score for the event by each time, over follow-up."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(times, auc, marker="o", color="C0", label="model")
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set(xlabel=_unit_label(time_unit), ylabel="time-dependent AUROC", ylim=(0.0, 1.0))
    ax.legend(fontsize="small")
    title = "Time-dependent AUROC"
    if mean_auc is not None and np.isfinite(mean_auc):
        title += f" (mean {mean_auc:.3f})"
    return _finish(fig, path, title, synthetic)


def _panels(n: int):
    plt = _pyplot()
    fig, axes = plt.subplots(1, max(n, 1), figsize=(4.2 * max(n, 1), 4.2), squeeze=False)
    return fig, axes[0]


def plot_survival_calibration(tables: dict[str, pd.DataFrame], path, *, time_unit: str = "",
                              synthetic: bool = False) -> Path:
    """Per horizon: mean predicted risk by t against the Kaplan–Meier observed risk (95% CI)
    in groups of predicted risk."""
    fig, axes = _panels(len(tables))
    for ax, (label, table) in zip(axes, tables.items(), strict=False):
        top = float(np.nanmax(table[["predicted", "observed_high"]].to_numpy())) \
            if len(table) else 1.0
        top = min(1.0, max(top, 0.05) * 1.05)
        observed = table["observed"].to_numpy()
        errors = np.vstack([observed - table["observed_low"].to_numpy(),
                            table["observed_high"].to_numpy() - observed])
        ax.errorbar(table["predicted"], observed, yerr=np.clip(errors, 0, None), fmt="o",
                    color="C0", capsize=3, label="groups (KM, 95% CI)")
        ax.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1,
                label="ideal")
        ax.set(xlim=(0, top), ylim=(0, top), aspect="equal",
               xlabel="mean predicted risk", ylabel="observed risk (Kaplan–Meier)",
               title=f"risk by {label} {time_unit}".strip())
        ax.legend(fontsize="small", loc="upper left")
    return _finish(fig, path, "Calibration at the horizons", synthetic)


def plot_survival_decision_curves(curves: dict[str, pd.DataFrame], path, *,
                                  time_unit: str = "", synthetic: bool = False) -> Path:
    """Per horizon: net benefit of the model, treat-all and treat-none by threshold."""
    fig, axes = _panels(len(curves))
    for ax, (label, curve) in zip(axes, curves.items(), strict=False):
        ax.plot(curve["threshold"], curve["model"], color="C0", label="model")
        ax.plot(curve["threshold"], curve["treat_all"], color="C3", label="treat all")
        ax.plot(curve["threshold"], curve["treat_none"], color="black", label="treat none")
        # treat-all dives towards -inf as pt -> 1; keep the informative range in view
        best = np.nanmax(np.r_[curve["model"].to_numpy(dtype=float),
                               curve["treat_all"].to_numpy(dtype=float), 0.0])
        top = float(best) * 1.1 + 0.01
        ax.set(xlabel="threshold probability", ylabel="net benefit",
               ylim=(-0.2 * top, top), title=f"event by {label} {time_unit}".strip(),
               xlim=(float(curve["threshold"].min()), float(curve["threshold"].max())))
        ax.legend(fontsize="small")
    return _finish(fig, path, "Decision curves", synthetic)
