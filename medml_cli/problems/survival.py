"""The ``survival`` problem type: time to an event, with patients censored at the end of
their follow-up.

The outcome is two columns (``time``, ``event``). A model's scores are a risk score (higher =
earlier event), the predicted median survival time and the survival probability S(t | x) on
a time grid that holds the run's horizons; the metrics are censoring-aware (Harrell's and
Uno's C, IPCW Brier scores, time-dependent AUROC, calibration and net benefit at each
horizon). The horizons and grid are settled once per run from the training data
(:meth:`Survival.for_run`), saved in the model card and restored by evaluate and predict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medml_cli.errors import DataError
from medml_cli.problems.base import ProblemType, register_problem

#: Evenly spaced times (up to the last horizon) of the integrated Brier score's grid.
GRID_POINTS = 15
#: Times per curve used to find the predicted median survival time.
FINE_POINTS = 400


def _round_nicely(value: float) -> float:
    """Two significant figures (80.4 -> 80, 163 -> 160, 1095 -> 1100, 2.46 -> 2.5)."""
    if value <= 0:
        return value
    digits = 1 - int(np.floor(np.log10(value)))
    return float(round(value, digits))


def default_horizons(time: np.ndarray, event: np.ndarray) -> list[float]:
    """The 25th, 50th and 75th percentiles of the observed event times, rounded, kept
    inside the follow-up (below the longest observed time) and distinct."""
    event_times = time[event == 1]
    raw = np.percentile(event_times, [25, 50, 75])
    horizons = []
    for value in raw:
        nice = _round_nicely(float(value))
        if not 0 < nice < time.max():
            nice = float(value)
        if nice not in horizons:
            horizons.append(nice)
    return horizons


def time_grid(time: np.ndarray, event: np.ndarray, horizons: list[float]) -> list[float]:
    """The times S(t | x) is kept at: evenly spaced from the 10th percentile of the event
    times (or the first horizon, if earlier) to the last horizon, plus every horizon."""
    low = min(float(np.percentile(time[event == 1], 10)), horizons[0])
    if low >= horizons[-1]:  # one early horizon: integrate over its first half too
        low = horizons[-1] / 2
    points = np.linspace(low, horizons[-1], GRID_POINTS)
    rounded = {float(f"{p:.4g}") for p in points} | {float(h) for h in horizons}
    return sorted(t for t in rounded if t > 0)


class KaplanMeierBaseline:
    """The no-covariate baseline: everyone gets the training Kaplan–Meier curve (and the
    same risk score, so its concordance is 0.5)."""

    def fit(self, X: Any, y: Any) -> KaplanMeierBaseline:
        """Estimate the Kaplan–Meier curve of the training rows."""
        from medml_cli.evaluation.survival import kaplan_meier

        self.times_, self.survival_ = kaplan_meier(y["time"], y["event"].astype(float))
        return self

    def risk_and_survival(self, X: Any, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Risk 0 and the Kaplan–Meier S(t) for every row of ``X``."""
        index = np.searchsorted(self.times_, times, side="right") - 1
        curve = np.where(index >= 0, self.survival_[np.clip(index, 0, None)], 1.0)
        return np.zeros(len(X)), np.tile(curve, (len(X), 1))


class Survival(ProblemType):
    """Time to an event with censoring: scores are risk, median time and S(t | x)."""

    name = "survival"
    summary = ("time to an event with censoring: c_index, c_index_uno, integrated_brier; "
               "auroc@t, brier@t, calibration_slope@t at each horizon")
    metric_names = ("c_index", "c_index_uno", "integrated_brier")
    horizon_metrics = ("auroc", "brier", "calibration_slope")
    primary_metric = "c_index"
    lower_is_better = frozenset({"integrated_brier"})
    target_kind = "time-to-event"
    generic_task = "tabular-survival"
    training_settings = ("evaluation.horizons",)
    pooled_measures = (("c_index", "logit"),)
    mixed_model_scores = (
        "each survival model gives its risk score on its own scale (a Cox model's linear "
        "predictor, a forest's summed cumulative hazard), so held-out risks from outer folds "
        "tuned to different model types are not comparable, and the C-index pooled over them "
        "is wrong (on the veterans' data: 0.653 pooled against 0.718 averaged over the folds)")
    #: permutation importance uses the model's own score (Harrell's C in scikit-survival)
    importance_scoring = None  # type: ignore[assignment]
    partial_dependence = False
    baseline_text = ("the Kaplan–Meier estimate of the training rows: the same survival "
                     "curve for everyone, so no ranking (C = 0.5)")
    plot_titles = {
        "km_by_risk_group.png": "Observed survival (Kaplan–Meier, 95% CI) by predicted-risk "
                                "tertile",
        "time_dependent_auc.png": "Time-dependent AUROC (cumulative/dynamic) over follow-up",
        "survival_calibration.png": "Calibration at each horizon: predicted risk vs "
                                    "Kaplan–Meier observed risk, by decile",
        "decision_curve.png": "Decision curves (net benefit) at each horizon",
    }

    def __init__(self, horizons: list[float] | None = None, grid: list[float] | None = None,
                 time_unit: str | None = None, max_follow_up: float | None = None,
                 horizons_source: str = "") -> None:
        self.horizons = list(horizons or [])
        self.grid = list(grid or [])
        self.time_unit = time_unit
        self.max_follow_up = max_follow_up
        self.horizons_source = horizons_source

    # -- a run's settings -------------------------------------------------------------
    @property
    def stratifies(self) -> bool:
        """Folds keep the share of events."""
        return True

    def for_run(self, cfg: Any, dataset: Any) -> Survival:
        """Horizons (config, or the event-time quartiles) and the time grid of this run."""
        y = dataset.y.to_numpy(dtype=float)
        time, event = y[:, 0], y[:, 1]
        given = cfg.evaluation.horizons
        horizons = list(given) if given else default_horizons(time, event)
        unit = dataset.schema.time_unit
        self._check_horizons(horizons, time, event, "the training data", unit)
        return Survival(horizons, time_grid(time, event, horizons), unit, float(time.max()),
                        "set in evaluation.horizons" if given else
                        "the 25th, 50th and 75th percentiles of the observed event times, "
                        "rounded")

    def card_fields(self) -> dict[str, Any]:
        """Horizons, grid, unit and follow-up of the run."""
        return {"survival": {"horizons": self.horizons, "time_grid": self.grid,
                             "time_unit": self.time_unit, "max_follow_up": self.max_follow_up,
                             "horizons_source": self.horizons_source}}

    def from_card(self, card: dict[str, Any]) -> Survival:
        """The run's horizons and grid back from its card."""
        saved = card.get("survival") or {}
        return Survival(saved.get("horizons"), saved.get("time_grid"), saved.get("time_unit"),
                        saved.get("max_follow_up"), saved.get("horizons_source", ""))

    def config_problems(self, cfg: Any) -> list[str]:
        """A table source must name the time and event columns, and no `target`."""
        problems = super().config_problems(cfg)
        data = cfg.data
        if hasattr(data, "time"):
            if not (data.time and data.event):
                problems.append("data.time / data.event: a survival task needs both: the "
                                "follow-up time column and the event column (with "
                                "`data.event_value`, default 1)")
            if getattr(data, "target", None) is not None:
                problems.append("data.target: survival tasks take `data.time` and "
                                "`data.event` instead of a target; remove it")
        return problems

    def _check_horizons(self, horizons: list[float], time: np.ndarray, event: np.ndarray,
                        what: str, unit: str | None) -> None:
        suffix = f" {unit}" if unit else ""
        suggested = ", ".join(f"{h:g}" for h in default_horizons(time, event))
        late = [h for h in horizons if h >= time.max()]
        if late:
            raise DataError(
                f"evaluation.horizons: {late[0]:g}{suffix} lies beyond the follow-up of "
                f"{what} (the longest observed time is {time.max():g}{suffix}), where no "
                "patient is still observed.",
                "choose horizons within follow-up, e.g. "
                f"`--set evaluation.horizons=[{suggested}]`.")
        early = [h for h in horizons if not np.any((time <= h) & (event == 1))]
        if early:
            raise DataError(
                f"evaluation.horizons: no event happens by {early[0]:g}{suffix} in {what} "
                "(the first event is at "
                f"{time[event == 1].min():g}{suffix}), so nothing can be measured there.",
                "choose later horizons.")

    # -- the target -------------------------------------------------------------------
    def fit_target(self, y: np.ndarray) -> np.ndarray:
        """scikit-survival's structured array: (event: bool, time: float)."""
        y = np.asarray(y, dtype=float)
        target = np.empty(len(y), dtype=[("event", bool), ("time", float)])
        target["event"] = y[:, 1] == 1
        target["time"] = y[:, 0]
        return target

    def split_labels(self, y: np.ndarray) -> tuple[np.ndarray, bool]:
        """Folds are stratified on the event indicator."""
        return np.asarray(y, dtype=float)[:, 1].astype(int), True

    def truth_columns(self, truth: np.ndarray) -> dict[str, np.ndarray]:
        """``time`` and ``event`` (1 = the event happened, 0 = censored)."""
        truth = np.asarray(truth, dtype=float)
        return {"time": truth[:, 0], "event": truth[:, 1].astype(int)}

    def truth_column_names(self) -> list[str]:
        """``time`` and ``event``."""
        return ["time", "event"]

    def read_truth(self, frame: pd.DataFrame) -> np.ndarray:
        """(n, 2): time and event."""
        return frame[["time", "event"]].to_numpy(dtype=float)

    def check_scored_data(self, truth: np.ndarray, source: str) -> None:
        """Scored data need events and follow-up beyond the last horizon."""
        truth = np.asarray(truth, dtype=float)
        if truth[:, 1].sum() == 0:
            raise DataError(f"no patient in {source} had the event, so no survival metric "
                            "can be computed.", "score data with events.")
        self._check_horizons(self.horizons, truth[:, 0], truth[:, 1], source, self.time_unit)

    # -- scores -----------------------------------------------------------------------
    def _fine_times(self) -> np.ndarray:
        top = self.max_follow_up or self.grid[-1]
        return np.union1d(np.asarray(self.grid, dtype=float),
                          np.linspace(top / FINE_POINTS, top, FINE_POINTS))

    def scores(self, model: Any, X: Any, n_classes: int = 2) -> np.ndarray:
        """(n, 2 + grid): risk score, predicted median survival time (NaN where the curve
        stays above 0.5 within follow-up), then S(t | x) at each grid time."""
        from medml_cli.models.survival_output import (
            median_survival_time,
            predict_risk_and_survival,
        )

        fine = self._fine_times()
        if hasattr(model, "risk_and_survival"):
            risk, surv = model.risk_and_survival(X, fine)
        else:
            risk, surv = predict_risk_and_survival(model, X, fine)
        columns = np.searchsorted(fine, np.asarray(self.grid, dtype=float))
        return np.column_stack([np.asarray(risk, dtype=float),
                                median_survival_time(surv, fine), surv[:, columns]])

    def baseline_estimator(self) -> KaplanMeierBaseline:
        """The Kaplan–Meier curve without covariates."""
        return KaplanMeierBaseline()

    def survival_at(self, scores: np.ndarray, horizon: float) -> np.ndarray:
        """S(horizon | x) from the score matrix."""
        column = int(np.flatnonzero(np.isclose(self.grid, horizon))[0])
        return scores[:, 2 + column]

    def metrics(self, y: np.ndarray, scores: np.ndarray,
                threshold: float | np.ndarray | None = None) -> dict[str, float]:
        """c_index, c_index_uno, integrated_brier; auroc@t, brier@t, calibration_slope@t."""
        from medml_cli.evaluation.survival import horizon_label, survival_metrics

        y = np.asarray(y, dtype=float)
        scores = np.asarray(scores, dtype=float)
        values = survival_metrics(y[:, 0], y[:, 1], scores[:, 0], scores[:, 2:],
                                  np.asarray(self.grid, dtype=float), self.horizons)
        if len(scores) and np.ptp(scores[:, 0]) == 0:
            # one risk for everyone (the Kaplan–Meier baseline): no patient is ranked above
            # another, whatever fold-to-fold differences the pooled curves show
            for h in self.horizons:
                values[f"auroc@{horizon_label(h)}"] = 0.5
                values[f"calibration_slope@{horizon_label(h)}"] = float("nan")
        return {name: float(value) for name, value in values.items()}

    def bootstrap_draws(self, y: np.ndarray, scores: np.ndarray, *, threshold: Any,
                        groups: np.ndarray | None, n_resamples: int,
                        seed: int) -> dict[str, np.ndarray]:
        """Every metric on each event-stratified resample (patients with ``groups``)."""
        from medml_cli.evaluation.survival import survival_bootstrap

        y = np.asarray(y, dtype=float)
        scores = np.asarray(scores, dtype=float)
        return survival_bootstrap(y[:, 0], y[:, 1], scores[:, 0], scores[:, 2:],
                                  np.asarray(self.grid, dtype=float), self.horizons,
                                  groups=groups, n_resamples=n_resamples, seed=seed)

    def sample_counts(self, y: np.ndarray, groups: np.ndarray | None = None,
                      classes: list[str] | None = None) -> dict[str, Any]:
        """Rows, events, censored and patients."""
        y = np.asarray(y, dtype=float)
        events = int(y[:, 1].sum())
        counts: dict[str, Any] = {"samples": len(y), "events": events,
                                  "censored": len(y) - events}
        if groups is not None:
            counts["patients"] = int(len(np.unique(groups)))
        return counts

    # -- predictions.csv and predict's output -----------------------------------------
    def _survival_names(self, times: list[float], prefix: str) -> list[str]:
        from medml_cli.evaluation.survival import horizon_label

        return [f"{prefix}survival_at_{horizon_label(t)}" for t in times]

    def score_columns(self, scores: np.ndarray, classes: list[str],
                      prefix: str = "") -> dict[str, np.ndarray]:
        """risk, median_survival and survival_at_<t> for every grid time."""
        scores = np.asarray(scores, dtype=float)
        columns = {f"{prefix}risk": scores[:, 0], f"{prefix}median_survival": scores[:, 1]}
        for j, name in enumerate(self._survival_names(self.grid, prefix)):
            columns[name] = scores[:, 2 + j]
        return columns

    def score_column_names(self, classes: list[str], prefix: str = "") -> list[str]:
        """The columns that must hold numbers (median survival may be empty)."""
        return [f"{prefix}risk", *self._survival_names(self.grid, prefix)]

    def read_scores(self, frame: pd.DataFrame, classes: list[str],
                    prefix: str = "") -> np.ndarray:
        """The score matrix back from predictions.csv."""
        median_name = f"{prefix}median_survival"
        median = frame[median_name].to_numpy(dtype=float) if median_name in frame \
            else np.full(len(frame), np.nan)
        return np.column_stack([frame[f"{prefix}risk"].to_numpy(dtype=float), median,
                                frame[self._survival_names(self.grid, prefix)]
                                .to_numpy(dtype=float)])

    def output_columns(self, scores: np.ndarray, threshold: Any,
                       classes: list[str]) -> dict[str, np.ndarray]:
        """``risk``, ``survival_at_<h>`` for each horizon, ``median_survival``."""
        scores = np.asarray(scores, dtype=float)
        columns = {"risk": scores[:, 0]}
        for h, name in zip(self.horizons, self._survival_names(self.horizons, ""), strict=True):
            columns[name] = self.survival_at(scores, h)
        columns["median_survival"] = scores[:, 1]
        return columns

    # -- assessment -------------------------------------------------------------------
    def assess(self, y: np.ndarray, scores: np.ndarray, *, threshold: Any, ev: Any,
               seed: int, classes: list[str], groups: np.ndarray | None = None,
               subgroup_frame: pd.DataFrame | None = None, out_dir: Path | None = None,
               synthetic: bool = False) -> dict[str, Any]:
        """Intervals, follow-up, calibration and decision curves per horizon, subgroups and
        plots."""
        from medml_cli.problems.survival_assessment import assess_survival

        return assess_survival(self, np.asarray(y, dtype=float),
                               np.asarray(scores, dtype=float), ev=ev, seed=seed,
                               groups=groups, subgroup_frame=subgroup_frame, out_dir=out_dir,
                               synthetic=synthetic)

    def report_sections(self, cfg: Any, metrics: dict[str, Any], run_path: Path) -> list[Any]:
        """Outcome and follow-up, calibration and clinical utility at each horizon."""
        from medml_cli.problems.survival_assessment import survival_sections

        return survival_sections(metrics, run_path)


SURVIVAL = register_problem(Survival())
