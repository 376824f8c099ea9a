"""Everything a run reports about its held-out predictions, in one place.

Given truth, scores and the ``evaluation`` config: metrics with bootstrap intervals,
calibration, decision curve, subgroups, per-site external-validation table and plots. Used by
``medml train`` (tabular and image tasks) and ``medml evaluate`` alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medml_cli.csvio import write_csv
from medml_cli.evaluation.metrics import score_predictions


def _intervals(problem: str, y: np.ndarray, score: np.ndarray, threshold: Any, ev: Any,
               groups: np.ndarray | None, seed: int) -> dict[str, list[float]]:
    from medml_cli.evaluation.bootstrap import bootstrap_intervals

    if ev.bootstrap == 0 or len(y) < 2:
        return {}
    if problem != "regression" and len(np.unique(y)) < 2:
        return {}
    intervals = bootstrap_intervals(problem, y, score, threshold=threshold, groups=groups,
                                    n_resamples=ev.bootstrap, confidence=ev.confidence,
                                    seed=seed)
    return {k: [float(lo), float(hi)] for k, (lo, hi) in intervals.items()}


def calibration_block(y: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    """calibration_summary as plain floats (NaN where undefined), plus ``warning`` when the
    calibration slope could not be estimated (e.g. the predictions separate the classes)."""
    from medml_cli.evaluation.calibration import calibration_summary

    if len(np.unique(y)) < 2:
        return {}
    return {k: v if k == "warning" else float(v)
            for k, v in calibration_summary(y, score).items()}


def assess(
    problem: str,
    y: np.ndarray,
    score: np.ndarray,
    *,
    threshold: Any,
    ev: Any,
    seed: int,
    groups: np.ndarray | None = None,
    subgroup_frame: pd.DataFrame | None = None,
    out_dir: Path | None = None,
    synthetic: bool = False,
    labels: tuple[str, str] = ("negative", "positive"),
    pooled: bool = True,
) -> dict[str, Any]:
    """Metrics, intervals, calibration, subgroups and plots for one set of predictions.

    ``threshold`` may be one number or one per row (per-fold thresholds); every held-out row
    is then classified at its own threshold everywhere (metrics, intervals, subgroups,
    confusion matrix). Files (plots, subgroups.csv, decision_curve.csv) go under ``out_dir``
    when it is given. ``pooled`` False leaves out ``metrics`` (for a caller that scored the
    pooled predictions already).
    """
    y = np.asarray(y)
    score = np.asarray(score, dtype=float)
    result: dict[str, Any] = {
        **({"metrics": score_predictions(problem, y, score, threshold)} if pooled else {}),
        "intervals": _intervals(problem, y, score, threshold, ev, groups, seed),
        "confidence": ev.confidence if ev.bootstrap else None,
        "bootstrap_resamples": ev.bootstrap,
    }
    if problem != "regression":
        result["calibration"] = calibration_block(y, score)
    if ev.subgroups and subgroup_frame is not None:
        table = subgroup_table(problem, y, score, subgroup_frame, ev.subgroups,
                               threshold=threshold, ev=ev, seed=seed, groups=groups)
        result["subgroups"] = table.to_dict(orient="records")
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            table.to_csv(out_dir / "subgroups.csv", index=False)
    if out_dir is not None and problem != "regression" and len(np.unique(y)) == 2:
        from medml_cli.evaluation.decision_curve import decision_curve

        out_dir.mkdir(parents=True, exist_ok=True)
        write_csv(decision_curve(y, score), out_dir / "decision_curve.csv")
    if out_dir is not None and ev.plots:
        result["plots"] = make_plots(problem, y, score, threshold, out_dir / "plots",
                                     groups=groups, seed=seed, synthetic=synthetic,
                                     labels=labels, intervals=result["intervals"])
    return result


def subgroup_table(problem: str, y: np.ndarray, score: np.ndarray, frame: pd.DataFrame,
                   names: list[str], *, threshold: Any, ev: Any, seed: int,
                   groups: np.ndarray | None) -> pd.DataFrame:
    """Long table: one row per (subgroup variable, value)."""
    from medml_cli.evaluation.subgroups import subgroup_metrics, subgroup_values

    parts = []
    for name in names:
        values = subgroup_values(frame, name)
        if values is None:
            continue
        # each row at its own (fold) threshold, as in the pooled metrics; never the mean
        rows = subgroup_metrics(problem, y, score, pd.Series(values).reset_index(drop=True),
                                threshold=threshold, n_resamples=ev.bootstrap
                                or 200, seed=seed, min_n=ev.min_subgroup_n,
                                min_events=ev.min_subgroup_events, groups=groups,
                                confidence=ev.confidence)
        rows.insert(0, "variable", name)
        parts.append(rows)
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True)


def make_plots(problem: str, y: np.ndarray, score: np.ndarray, threshold: Any, folder: Path,
               *, groups: np.ndarray | None, seed: int, synthetic: bool,
               labels: tuple[str, str], intervals: dict | None = None) -> list[str]:
    """Draw the problem's evaluation plots into ``folder``; returns the file names."""
    from medml_cli.evaluation import plots

    folder.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    if problem == "regression":
        made.append(plots.plot_predicted_vs_observed(y, score, folder / "predicted_vs_observed.png",
                                                     synthetic=synthetic))
        made.append(plots.plot_residuals(y, score, folder / "residuals.png", synthetic=synthetic))
        return [p.name for p in made]
    if len(np.unique(y)) < 2:
        return []
    intervals = intervals or {}
    made.append(plots.plot_roc(y, score, folder / "roc.png", seed=seed, groups=groups,
                               synthetic=synthetic, ci=intervals.get("auroc")))
    made.append(plots.plot_precision_recall(y, score, folder / "precision_recall.png", seed=seed,
                                            groups=groups, synthetic=synthetic,
                                            ci=intervals.get("auprc")))
    made.append(plots.plot_calibration(y, score, folder / "calibration.png", synthetic=synthetic))
    made.append(plots.plot_confusion_matrix(y, score, threshold,
                                            folder / "confusion_matrix.png", labels=labels,
                                            synthetic=synthetic))
    made.append(plots.plot_decision_curve(y, score, folder / "decision_curve.png",
                                          synthetic=synthetic))
    return [p.name for p in made]


def site_table(predictions: pd.DataFrame, X: pd.DataFrame, *, by: str,
               threshold: float | np.ndarray, ev: Any, seed: int) -> pd.DataFrame:
    """External validation: per site n, events, missing share, AUROC (CI), accuracy, slope.

    ``threshold`` is one cut-off or one per row of ``predictions`` (in its row order)."""
    from medml_cli.evaluation.bootstrap import as_threshold, bootstrap_intervals
    from medml_cli.evaluation.calibration import calibration_slope_intercept

    cut = as_threshold(threshold, len(predictions))
    rows = []
    for site, part in predictions.groupby(by, sort=False):
        y = part["truth"].to_numpy()
        score = part["score"].to_numpy()
        site_cut = cut[predictions.index.get_indexer(part.index)] \
            if isinstance(cut, np.ndarray) else cut
        features = X.loc[part.index]
        row: dict[str, Any] = {
            by: site, "n": len(part), "events": int(y.sum()),
            "missing_share": float(features.isna().to_numpy().mean()),
            "mostly_missing_features": ", ".join(
                c for c in features.columns if features[c].isna().mean() > 0.5),
        }
        metrics = score_predictions("binary-classification", y, score, site_cut)
        row["auroc"] = metrics["auroc"]
        if len(np.unique(y)) == 2 and ev.bootstrap:
            ci = bootstrap_intervals("binary-classification", y, score, threshold=site_cut,
                                     n_resamples=ev.bootstrap, confidence=ev.confidence,
                                     seed=seed)
            row["auroc_low"], row["auroc_high"] = ci["auroc"]
        row["accuracy"] = metrics["accuracy"]
        row["sensitivity"] = metrics["sensitivity"]
        row["specificity"] = metrics["specificity"]
        row["calibration_slope"] = (calibration_slope_intercept(y, score)[0]
                                    if len(np.unique(y)) == 2 else float("nan"))
        rows.append(row)
    return pd.DataFrame(rows)
