"""What a problem type is: everything that differs between outcome shapes.

A problem type (binary, multi-class, regression; survival next) owns the target's checks, how
a fitted model turns into scores, the trivial baseline, the metric names and their
directions, the intervals, the operating threshold (if any), the plots and report blocks,
and the columns of ``predictions.csv`` and of ``medml predict``. The workflows call these
methods and never branch on the problem's name, so a new problem type is one new file that
registers an instance with :func:`register_problem`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from medml_cli.registry import PROBLEMS, TASKS


class ProblemType:
    """Base class of the problem-type plug-ins; subclasses fill in the class attributes."""

    #: The name configs, cards and metrics.json carry (e.g. ``binary-classification``).
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    #: Metric names :meth:`metrics` returns, in report order.
    metric_names: ClassVar[tuple[str, ...]] = ()
    primary_metric: ClassVar[str] = ""
    #: This problem's metrics where smaller is better, beyond the shared ones (brier,
    #: log_loss, rmse, mae, ...: ``medml_cli.tasks.base.LOWER_IS_BETTER``).
    lower_is_better: ClassVar[frozenset[str]] = frozenset()
    #: Whether the target is a set of classes (stratified splits, label checks).
    classifies: ClassVar[bool] = False
    #: How a tabular source reads the target column: ``classes`` (labels to codes) or
    #: ``numeric`` (a number per row).
    target_kind: ClassVar[str] = "numeric"
    #: Whether predictions are classified at an operating threshold chosen for the run.
    uses_threshold: ClassVar[bool] = False
    #: scikit-learn scorer used for permutation importance (None: the model's own score).
    importance_scoring: ClassVar[str | None] = ""
    #: Whether scikit-learn's partial dependence applies to this problem's models.
    partial_dependence: ClassVar[bool] = True
    #: What the report says the baseline predicts.
    baseline_text: ClassVar[str] = "the training mean"
    #: The one score column of predictions.csv (problems with several override the methods).
    score_column: ClassVar[str] = "score"
    #: Report captions of this problem's plots, where they differ from the defaults.
    plot_titles: ClassVar[dict[str, str]] = {}
    #: Metrics reported at each time horizon t as ``name@t`` (e.g. ``auroc@365``).
    horizon_metrics: ClassVar[tuple[str, ...]] = ()
    #: Config settings fixed when a run is trained (saved in its card): ``medml evaluate
    #: --set`` may not change them.
    training_settings: ClassVar[tuple[str, ...]] = ()
    #: Measures pooled across held-out groups (``split.method: leave-group-out``) by
    #: random-effects meta-analysis, with the scale each is pooled on (logit, log, identity).
    pooled_measures: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: The generic task that reads a user's own table for this problem (``medml evaluate
    #: --data file.csv``); empty: the classification or regression task.
    generic_task: ClassVar[str] = ""
    #: Why held-out scores of different model types cannot be pooled into one metric (None:
    #: they can, as probabilities or predicted values can). ``tune:`` then searches the
    #: hyperparameters of one model type, since outer folds may pick different types.
    mixed_model_scores: ClassVar[str | None] = None

    # -- a run's settings -------------------------------------------------------------
    def for_run(self, cfg: Any, dataset: Any) -> ProblemType:
        """This problem type set up for one run's config and data (e.g. survival horizons);
        by default the registered instance itself."""
        return self

    def card_fields(self) -> dict[str, Any]:
        """What :meth:`for_run` settled that evaluate and predict need (saved in the card)."""
        return {}

    def from_card(self, card: dict[str, Any]) -> ProblemType:
        """The problem type as the run that wrote ``card`` had it set up."""
        return self

    def config_problems(self, cfg: Any) -> list[str]:
        """Cross-field config problems of this problem type (one message per problem)."""
        problems = []
        ev = getattr(cfg, "evaluation", None)
        if not self.horizon_metrics and getattr(ev, "horizons", None) is not None:
            problems.append("evaluation.horizons: only for survival (time-to-event) tasks; "
                            "remove it")
        data = getattr(cfg, "data", None)
        if self.target_kind != "time-to-event" and (getattr(data, "time", None)
                                                   or getattr(data, "event", None)):
            problems.append("data.time / data.event: only for survival tasks (e.g. "
                            "`tabular-survival`); name the outcome in `data.target`")
        elif hasattr(data, "target") and data.target is None and \
                self.target_kind != "time-to-event":
            problems.append("data.target: required: the column holding the outcome")
        return problems

    # -- the target -------------------------------------------------------------------
    def fit_target(self, y: np.ndarray) -> Any:
        """What ``estimator.fit`` takes for the target rows ``y`` (survival: a structured
        event/time array); by default ``y`` itself."""
        return y

    @property
    def stratifies(self) -> bool:
        """Whether folds can be stratified (on the classes, or survival's event)."""
        return self.classifies

    def split_labels(self, y: np.ndarray) -> tuple[np.ndarray, bool]:
        """The labels folds are made from, and whether they can be stratified on."""
        return y, self.stratifies

    def truth_columns(self, truth: np.ndarray) -> dict[str, np.ndarray]:
        """predictions.csv's outcome column(s): by default ``truth``."""
        return {"truth": np.asarray(truth)}

    def truth_column_names(self) -> list[str]:
        """Names of the columns :meth:`truth_columns` writes."""
        return ["truth"]

    def read_truth(self, frame: pd.DataFrame) -> np.ndarray:
        """The outcome back from the columns :meth:`truth_columns` wrote."""
        return frame["truth"].to_numpy()

    def check_scored_data(self, truth: np.ndarray, source: str) -> None:
        """Refuse data the run's metrics cannot be computed on (raise DataError)."""

    # -- scores -----------------------------------------------------------------------
    def scores(self, model: Any, X: Any, n_classes: int = 2) -> np.ndarray:
        """Scores of a fitted model for ``X``: what the metrics take."""
        raise NotImplementedError

    def baseline_estimator(self) -> Any:
        """The trivial model without covariates (prevalence, class priors or the mean)."""
        raise NotImplementedError

    def metrics(self, y: np.ndarray, scores: np.ndarray,
                threshold: float | np.ndarray | None = None) -> dict[str, float]:
        """Every metric of this problem type for one set of held-out predictions."""
        raise NotImplementedError

    def bootstrap_draws(self, y: np.ndarray, scores: np.ndarray, *, threshold: Any,
                        groups: np.ndarray | None, n_resamples: int,
                        seed: int) -> dict[str, np.ndarray]:
        """Every metric on each of ``n_resamples`` bootstrap resamples (NaN where
        undefined), resampling patients when ``groups`` is given."""
        raise NotImplementedError

    def group_estimates(self, y: np.ndarray, scores: np.ndarray, *, threshold: Any, ev: Any,
                        seed: int, groups: np.ndarray | None = None
                        ) -> dict[str, dict[str, float]]:
        """For one held-out group: each of :attr:`pooled_measures` as ``estimate``, ``low``,
        ``high`` (percentile bootstrap) and ``se`` (on its pooling scale, from the same
        resamples); NaN where undefined (e.g. one class only, or ``evaluation.bootstrap:
        0``)."""
        from medml_cli.evaluation.bootstrap import percentile_interval
        from medml_cli.evaluation.meta_analysis import bootstrap_standard_error

        point = self.metrics(y, scores, threshold)
        draws = self.bootstrap_draws(y, scores, threshold=threshold, groups=groups,
                                     n_resamples=ev.bootstrap, seed=seed) \
            if ev.bootstrap else {}
        out = {}
        for name, scale in self.pooled_measures:
            if name not in point:
                continue
            low, high = percentile_interval(draws[name], ev.confidence) if draws \
                else (float("nan"), float("nan"))
            out[name] = {"estimate": float(point[name]), "low": low, "high": high,
                         "se": bootstrap_standard_error(draws.get(name), scale)}
        return out

    def sample_counts(self, y: np.ndarray, groups: np.ndarray | None = None,
                      classes: list[str] | None = None) -> dict[str, Any]:
        """What every figure rests on: rows (and events, classes or patients)."""
        counts: dict[str, Any] = {"samples": int(len(y))}
        if groups is not None:
            counts["patients"] = int(len(np.unique(groups)))
        return counts

    # -- predictions.csv and predict's output -----------------------------------------
    def score_columns(self, scores: np.ndarray, classes: list[str],
                      prefix: str = "") -> dict[str, np.ndarray]:
        """predictions.csv's score column(s) for ``scores`` (``prefix`` e.g. ``baseline_``):
        by default the one column :attr:`score_column`."""
        return {f"{prefix}{self.score_column}": np.asarray(scores, dtype=float).reshape(-1)}

    def read_scores(self, frame: pd.DataFrame, classes: list[str],
                    prefix: str = "") -> np.ndarray:
        """Scores back from the columns :meth:`score_columns` wrote."""
        return frame[f"{prefix}{self.score_column}"].to_numpy(dtype=float)

    def score_column_names(self, classes: list[str], prefix: str = "") -> list[str]:
        """Names of the columns :meth:`score_columns` writes."""
        return [f"{prefix}{self.score_column}"]

    def decision_columns(self, scores: np.ndarray, threshold: Any,
                         classes: list[str]) -> dict[str, np.ndarray]:
        """Columns saying what was decided for each row (predicted class); none for
        problems without one."""
        return {}

    def output_columns(self, scores: np.ndarray, threshold: Any,
                       classes: list[str]) -> dict[str, np.ndarray]:
        """``medml predict``'s columns after ``id`` (before ``warnings``)."""
        raise NotImplementedError

    # -- assessment -------------------------------------------------------------------
    def assess(self, y: np.ndarray, scores: np.ndarray, *, threshold: Any, ev: Any,
               seed: int, classes: list[str], groups: np.ndarray | None = None,
               subgroup_frame: pd.DataFrame | None = None, out_dir: Path | None = None,
               synthetic: bool = False) -> dict[str, Any]:
        """Intervals, calibration, per-class or subgroup tables and plots for held-out
        predictions (metrics.json blocks; files under ``out_dir``). By default the shared
        one-score assessment of :mod:`medml_cli.evaluation.clinical`."""
        from medml_cli.evaluation.clinical import assess

        result = assess(self.name, y, scores, threshold=threshold if self.uses_threshold
                        else 0.5, ev=ev, seed=seed, groups=groups,
                        subgroup_frame=subgroup_frame, out_dir=out_dir, synthetic=synthetic,
                        labels=tuple(classes) if classes else ("0", "1"),
                        pooled=False)  # the workflows hold the pooled metrics already
        return result


    def report_sections(self, cfg: Any, metrics: dict[str, Any], run_path: Path) -> list[Any]:
        """The report sections only this problem type has (threshold, per-class tables...)."""
        return []


def register_problem(problem: ProblemType) -> ProblemType:
    """Register a problem-type instance under its name."""
    PROBLEMS.add(problem.name, problem, summary=problem.summary)
    return problem


def get_problem(name: str) -> ProblemType:
    """The registered problem type called ``name`` (built-ins loaded on first use)."""
    if name not in PROBLEMS:
        import medml_cli.problems  # noqa: F401 - registers the built-ins
    return PROBLEMS.get(name)


def problem_of_card(card: dict[str, Any]) -> ProblemType:
    """The problem type of a saved model, set up as the run that trained it had it."""
    return get_problem(card["problem"]).from_card(card)


def resolve_problem(task_problem: str, classes: list[str] | tuple[str, ...] | None) -> str:
    """The problem a run actually answers: a classification task whose data hold more than
    two classes (and no ``positive_class``) is multi-class."""
    if task_problem == "binary-classification" and classes is not None and len(classes) > 2:
        return "multiclass"
    return task_problem


def dataset_classes(dataset: Any) -> list[str]:
    """The class labels of a loaded dataset (tabular or image), in code order; empty for
    regression."""
    classes = getattr(dataset, "class_names", None)
    if classes is None:
        classes = dataset.schema.classes
    return list(classes or [])


def problem_of(task: str, dataset: Any) -> ProblemType:
    """The problem type a run of ``task`` on ``dataset`` answers: the task's, made
    multi-class when the data of a classification task hold more than two classes."""
    return get_problem(resolve_problem(TASKS.get(task).problem, dataset_classes(dataset)))
