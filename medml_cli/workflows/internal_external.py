"""Internal–external cross-validation (Steyerberg & Harrell, J Clin Epidemiol 2016;69:245):
each group of ``split.by`` (e.g. each hospital) was held out in turn; here each group's
performance with its CI, and the random-effects meta-analysis of those per-group values
(pooled estimate, tau², I², and the prediction interval for a new group), with a forest plot.

Written once for every problem type: the problem type says which measures it pools and on
which scale (:attr:`ProblemType.pooled_measures`) and estimates them per group
(:meth:`ProblemType.group_estimates`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medml_cli.evaluation.meta_analysis import random_effects, to_scale
from medml_cli.evaluation.subgroups import natural_key, small_group_warning
from medml_cli.problems import ProblemType

#: Where a measure shows chance discrimination or perfect calibration (drawn dashed).
REFERENCE_VALUES = {"auroc": 0.5, "macro_auroc": 0.5, "c_index": 0.5,
                    "calibration_intercept": 0.0, "calibration_slope": 1.0, "r2": 0.0}


def fewest_outcomes(counts: dict[str, Any]) -> tuple[int, str] | None:
    """The count of the rarest outcome in a group (events, non-events, or the smallest class
    present) and what it is called; None for continuous outcomes."""
    if isinstance(counts.get("classes"), dict):
        label, n = min(((label, n) for label, n in counts["classes"].items() if n),
                       key=lambda item: item[1])
        return int(n), f"rows of class {label}"
    if "non_events" in counts:
        return min((int(counts["events"]), "events"), (int(counts["non_events"]), "non-events"))
    if "events" in counts:
        return int(counts["events"]), "events"
    return None


def _group_row(label: Any, estimates: dict[str, dict[str, float]], counts: dict[str, Any],
               ev: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"group": label, **counts}
    for name, value in estimates.items():
        row[name] = value["estimate"]
        row[f"{name}_low"], row[f"{name}_high"] = value["low"], value["high"]
        row[f"{name}_se"] = value["se"]
    notes = []
    absent = [label for label, n in (counts.get("classes") or {}).items() if n == 0]
    if absent:
        notes.append(f"no rows of class {', '.join(map(str, absent))}: its measures average "
                     "the classes present only")
    count, what = fewest_outcomes(counts) or (None, "events")
    notes.append(small_group_warning(counts["samples"], count, ev.min_subgroup_n,
                                     ev.min_subgroup_events, what))
    row["warning"] = "; ".join(n for n in notes if n)
    return row


def _why_left_out(row: dict[str, Any], name: str, scale: str, ev: Any) -> str | None:
    estimate, se = row.get(name, float("nan")), row.get(f"{name}_se", float("nan"))
    if not np.isfinite(estimate):
        return "undefined in this group"
    if not np.isfinite(to_scale(estimate, scale)):
        return f"{estimate:g} cannot be pooled on the {scale} scale"
    if not np.isfinite(se) or se <= 0:
        return "no standard error" + (" (evaluation.bootstrap: 0)" if not ev.bootstrap
                                      else " (too few events for its resamples)")
    return None


def _reading(by: str, rows: list[dict[str, Any]], pooled: dict[str, Any],
             primary: str, confidence: float) -> str:
    values = [(r[primary], r["group"]) for r in rows if np.isfinite(r.get(primary, np.nan))]
    if not values:
        return f"No held-out {by} had a defined {primary}."
    low, high = min(values, key=lambda v: v[0]), max(values, key=lambda v: v[0])
    text = (f"Held out one {by} at a time, {primary} ranged from {low[0]:.3f} ({low[1]}) to "
            f"{high[0]:.3f} ({high[1]}).")
    summary = pooled.get(primary)
    if summary:
        text += (f" The random-effects pooled {primary} is {summary['estimate']:.3f} "
                 f"({summary['low']:.3f}-{summary['high']:.3f}), with I² {summary['i2']:.0%} "
                 f"of the variation between {by}s beyond chance (tau² {summary['tau2']:.3g} "
                 f"on the {summary['scale']} scale).")
        if summary.get("prediction_low") is not None:
            text += (f" In a new {by} like these, {primary} is expected between "
                     f"{summary['prediction_low']:.3f} and {summary['prediction_high']:.3f} "
                     f"({confidence:.0%} prediction interval): the figure to quote for a "
                     "hospital about to adopt the model.")
        else:
            text += (f" With {summary['k']} {by}s there are too few for a prediction "
                     "interval (it needs at least 3).")
    return text


def internal_external(problem: ProblemType, *, truth: np.ndarray, scores: np.ndarray,
                      threshold: Any, by_values: np.ndarray, by: str, ev: Any, seed: int,
                      classes: list[str], patients: np.ndarray | None = None,
                      out_dir: Path | None = None, synthetic: bool = False) -> dict[str, Any]:
    """metrics.json's ``internal_external`` block (and ``internal_external.csv``,
    ``plots/forest.png`` under ``out_dir``) for held-out predictions labelled by group."""
    values = pd.Series(by_values).reset_index(drop=True)
    cut = np.asarray(threshold, dtype=float) if np.ndim(threshold) else threshold
    rows = []
    for label in sorted(values.unique(), key=natural_key):
        mask = (values == label).to_numpy()
        part_patients = patients[mask] if patients is not None else None
        estimates = problem.group_estimates(
            truth[mask], scores[mask], threshold=cut[mask] if np.ndim(cut) else cut, ev=ev,
            seed=seed, groups=part_patients)
        counts = problem.sample_counts(truth[mask], part_patients, classes)
        rows.append(_group_row(label, estimates, counts, ev))
    warnings = [f"{by} {r['group']}: {r['warning']}" for r in rows if r["warning"]]
    pooled: dict[str, Any] = {}
    for name, scale in problem.pooled_measures:
        usable = []
        for row in rows:
            why = _why_left_out(row, name, scale, ev)
            if why is None:
                usable.append(row)
            elif name in row:
                warnings.append(f"{name}: {by} {row['group']} is left out of the pooled "
                                f"estimate ({why})")
        if len(usable) < 2:
            pooled[name] = None
            warnings.append(f"{name}: fewer than two {by}s with an estimate and a standard "
                            "error, so it is not pooled")
            continue
        estimates = [float(to_scale(r[name], scale)) for r in usable]
        # the bootstrap standard errors are on the pooling scale already
        variances = [r[f"{name}_se"] ** 2 for r in usable]
        result = random_effects(estimates, variances, method=ev.meta_analysis,
                                confidence=ev.confidence, scale=scale)
        pooled[name] = {**result.as_json(), "groups": [r["group"] for r in usable]}
    names = [name for name, _ in problem.pooled_measures]
    primary = problem.primary_metric if problem.primary_metric in names else names[0]
    block = {"by": by, "method": ev.meta_analysis, "confidence": ev.confidence,
             "groups": rows, "pooled": pooled, "warnings": warnings,
             "reading": _reading(by, rows, pooled, primary, ev.confidence)}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).rename(columns={"group": by}).to_csv(
            out_dir / "internal_external.csv", index=False)
        panels = [{"name": name, "reference": REFERENCE_VALUES.get(name),
                   "pooled": pooled.get(name),
                   "rows": [{"label": r["group"], "estimate": r.get(name, np.nan),
                             "low": r.get(f"{name}_low", np.nan),
                             "high": r.get(f"{name}_high", np.nan)} for r in rows]}
                  for name, _ in problem.pooled_measures]
        if ev.plots and panels:
            from medml_cli.evaluation.forest_plot import plot_forest

            plot_forest(panels, out_dir / "plots" / "forest.png", by=by, synthetic=synthetic)
    return block
