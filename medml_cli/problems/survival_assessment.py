"""What a survival run reports beyond its pooled metrics: intervals, censoring and follow-up,
calibration and decision curves at each horizon, subgroups, plots and report sections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Threshold probabilities of the report's net-benefit table.
REPORT_THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.5)


def _reverse_km_median(time: np.ndarray, event: np.ndarray) -> float | None:
    """Median follow-up by the reverse Kaplan–Meier method (censoring as the 'event')."""
    from medml_cli.evaluation.survival import kaplan_meier

    times, curve = kaplan_meier(time, 1.0 - event)
    reached = np.flatnonzero(curve <= 0.5)
    return float(times[reached[0]]) if reached.size else None


def follow_up_block(time: np.ndarray, event: np.ndarray) -> dict[str, Any]:
    """Events, censoring and follow-up of the scored rows."""
    events = int(event.sum())
    return {"events": events, "censored": int(len(event) - events),
            "censored_share": float(1 - events / len(event)),
            "median_follow_up_reverse_km": _reverse_km_median(time, event),
            "min_time": float(time.min()), "max_time": float(time.max())}


def _subgroups(problem: Any, y: np.ndarray, scores: np.ndarray, frame: pd.DataFrame,
               ev: Any, seed: int, groups: np.ndarray | None) -> pd.DataFrame:
    """c_index (with CI) and integrated Brier score per subgroup value."""
    from medml_cli.evaluation.bootstrap import percentile_interval, resample_weights
    from medml_cli.evaluation.subgroups import (
        _MISSING,
        MISSING_LABEL,
        small_group_warning,
        subgroup_order,
        subgroup_values,
    )
    from medml_cli.evaluation.survival import harrell_c

    rows = []
    for name in ev.subgroups:
        values = subgroup_values(frame, name)
        if values is None:
            continue
        sub = pd.Series(values).reset_index(drop=True)
        for value in subgroup_order(sub):
            mask = (sub.isna() if value is _MISSING else sub == value).to_numpy()
            part_y, part_s = y[mask], scores[mask]
            events = int(part_y[:, 1].sum())
            row: dict[str, Any] = {"variable": name,
                                   "subgroup": MISSING_LABEL if value is _MISSING else value,
                                   "n": int(mask.sum()), "events": events}
            row["c_index"] = harrell_c(part_y[:, 0], part_y[:, 1], part_s[:, 0])
            row["c_index_low"] = row["c_index_high"] = float("nan")
            if events and ev.bootstrap and mask.sum() > 1:
                weights = resample_weights(
                    "binary-classification", part_y[:, 1],
                    groups=None if groups is None else groups[mask],
                    n_resamples=ev.bootstrap, seed=seed)
                draws = harrell_c(part_y[:, 0], part_y[:, 1], part_s[:, 0], weights)
                row["c_index_low"], row["c_index_high"] = percentile_interval(
                    draws, ev.confidence)
            row["warning"] = small_group_warning(row["n"], events, ev.min_subgroup_n,
                                                 ev.min_subgroup_events)
            rows.append(row)
    return pd.DataFrame(rows)


def assess_survival(problem: Any, y: np.ndarray, scores: np.ndarray, *, ev: Any, seed: int,
                    groups: np.ndarray | None, subgroup_frame: pd.DataFrame | None,
                    out_dir: Path | None, synthetic: bool) -> dict[str, Any]:
    """metrics.json blocks (intervals, survival) and files (survival_calibration.csv,
    decision_curve.csv, subgroups.csv, plots/) for held-out survival predictions."""
    from medml_cli.evaluation.survival import (
        calibration_table,
        decision_curve_at,
        horizon_label,
        km_risk_at,
        survival_intervals,
    )

    time, event = y[:, 0], y[:, 1]
    risk, surv = scores[:, 0], scores[:, 2:]
    grid = np.asarray(problem.grid, dtype=float)
    result: dict[str, Any] = {"intervals": {},
                              "confidence": ev.confidence if ev.bootstrap else None,
                              "bootstrap_resamples": ev.bootstrap}
    if ev.bootstrap and len(y) > 1:
        intervals = survival_intervals(time, event, risk, surv, grid, problem.horizons,
                                       groups=groups, n_resamples=ev.bootstrap, seed=seed,
                                       confidence=ev.confidence)
        result["intervals"] = {k: [float(lo), float(hi)] for k, (lo, hi) in intervals.items()}
    calibration: dict[str, Any] = {}
    curves: dict[str, pd.DataFrame] = {}
    tables: dict[str, pd.DataFrame] = {}
    for h in problem.horizons:
        label = horizon_label(h)
        at_h = problem.survival_at(scores, h)
        tables[label] = calibration_table(time, event, at_h, h)
        curves[label] = decision_curve_at(time, event, 1.0 - at_h, h)
        picks = curves[label][np.isclose(curves[label]["threshold"].to_numpy()[:, None],
                                         REPORT_THRESHOLDS).any(axis=1)]
        calibration[label] = {
            "deciles": tables[label].to_dict(orient="records"),
            "mean_predicted_risk": float(np.mean(1.0 - at_h)),
            "observed_risk_km": float(km_risk_at(time, event, h)),
            "net_benefit": picks.to_dict(orient="records"),
        }
    result["survival"] = {
        "time_unit": problem.time_unit, "horizons": problem.horizons,
        "horizons_source": problem.horizons_source, "time_grid": problem.grid,
        "follow_up": follow_up_block(time, event), "at_horizon": calibration,
    }
    if ev.subgroups and subgroup_frame is not None:
        table = _subgroups(problem, y, scores, subgroup_frame.reset_index(drop=True), ev, seed,
                           groups)
        result["subgroups"] = table.to_dict(orient="records")
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            table.to_csv(out_dir / "subgroups.csv", index=False)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        pd.concat([t.assign(horizon=h) for h, t in tables.items()], ignore_index=True) \
            .to_csv(out_dir / "survival_calibration.csv", index=False)
        pd.concat([c.assign(horizon=h) for h, c in curves.items()], ignore_index=True) \
            .to_csv(out_dir / "decision_curve.csv", index=False)
        if ev.plots:
            result["plots"] = _plots(problem, time, event, risk, tables, curves,
                                     out_dir / "plots", synthetic)
    return result


def _plots(problem: Any, time: np.ndarray, event: np.ndarray, risk: np.ndarray,
           tables: dict[str, pd.DataFrame], curves: dict[str, pd.DataFrame], folder: Path,
           synthetic: bool) -> list[str]:
    from medml_cli.evaluation import survival_plots as plots

    unit = problem.time_unit or ""
    made = [plots.plot_km_by_risk_group(time, event, risk, folder / "km_by_risk_group.png",
                                        time_unit=unit, horizons=problem.horizons,
                                        synthetic=synthetic)]
    times, auc, mean_auc = plots.time_dependent_auc_curve(time, event, risk)
    if len(times):
        made.append(plots.plot_time_dependent_auc(times, auc, folder / "time_dependent_auc.png",
                                                  mean_auc=mean_auc, time_unit=unit,
                                                  synthetic=synthetic))
    made.append(plots.plot_survival_calibration(tables, folder / "survival_calibration.png",
                                                time_unit=unit, synthetic=synthetic))
    made.append(plots.plot_survival_decision_curves(curves, folder / "decision_curve.png",
                                                    time_unit=unit, synthetic=synthetic))
    return [p.name for p in made]


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def survival_sections(metrics: dict[str, Any], run_path: Path) -> list[Any]:
    """Report sections: outcome and follow-up, calibration and clinical utility."""
    from medml_cli.evaluation.report import Section

    block = metrics.get("survival") or {}
    if not block:
        return []
    unit = block.get("time_unit") or "time units"
    follow = block.get("follow_up") or {}
    horizons = ", ".join(f"{h:g}" for h in block.get("horizons", []))
    sections = [Section("Outcome, censoring and follow-up", bullets=[
        f"Events {follow.get('events')}, censored {follow.get('censored')} "
        f"({follow.get('censored_share', 0):.0%}); censored patients count as event-free "
        "only up to their last contact (inverse-probability-of-censoring weights in Uno's C, "
        "the Brier scores and the time-dependent AUROC).",
        f"Follow-up: {follow.get('min_time', 0):g} to {follow.get('max_time', 0):g} {unit}; "
        "median follow-up (reverse Kaplan–Meier) " + (
            f"{follow['median_follow_up_reverse_km']:g} {unit}."
            if follow.get("median_follow_up_reverse_km") is not None else
            "not reached (fewer than half the patients were censored before the last "
            "time)."),
        f"Horizons: {horizons} {unit} ({block.get('horizons_source') or 'from the run'}); "
        "Uno's C is truncated at the last horizon and the integrated Brier score runs over "
        "the time grid up to it.",
    ])]
    rows, utility = [], []
    for label, item in (block.get("at_horizon") or {}).items():
        rows.append([label, _fmt(item.get("mean_predicted_risk")),
                     _fmt(item.get("observed_risk_km")),
                     _fmt(metrics["metrics"].get(f"calibration_slope@{label}")),
                     _fmt(metrics["metrics"].get(f"auroc@{label}"))])
        for r in item.get("net_benefit", []):
            utility.append([label, f"{r['threshold']:.2f}", _fmt(r["model"]),
                            _fmt(r["treat_all"])])
    sections.append(Section(
        "Calibration at the horizons",
        paragraphs=["Mean predicted risk of the event by each horizon against the "
                    "Kaplan–Meier observed risk; the slope is the coefficient of "
                    "log(−log S(t | x)) in a Cox model of the outcome censored at t (1 is "
                    "ideal, below 1 predictions are too extreme). Deciles in "
                    "survival_calibration.csv."],
        tables=[(["horizon", "mean predicted risk", "observed risk (KM)",
                  "calibration slope", "time-dependent AUROC"], rows)]))
    if utility:
        sections.append(Section(
            "Clinical utility (decision curves)",
            paragraphs=["Net benefit at horizon t of treating patients whose predicted risk "
                        "by t reaches the threshold probability pt, with the Kaplan–Meier "
                        "risk among them as the true-positive rate (Vickers et al. 2008); "
                        "full curves in decision_curve.csv."],
            tables=[(["horizon", "threshold", "model", "treat all"], utility)]))
    return sections
