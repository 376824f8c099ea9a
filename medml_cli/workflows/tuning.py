"""Tuning inside a run (``tune:``) with Optuna.

Tabular tasks (:class:`Tuner`): nested cross-validation. In every outer fold an Optuna study
on inner folds of that fold's training rows chooses the hyperparameters; the outer test rows
are never seen by it. The shipped model is tuned the same way on all rows.

Image tasks (:class:`ImageTuner`): one study on the training and validation images. Each trial
fits the CNN on the training images and scores it on the validation images after every epoch;
a pruner stops trials that fall behind. The test images are never seen by it.

Studies live in the run (``tune/studies.db``, Optuna's SQLite storage), so an interrupted run
resumes without repeating finished (complete, pruned or failed) trials.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medml_cli.config.search_space import IntUniform, LogUniform
from medml_cli.config.tuning import (
    DEFAULT_PRUNING_WARMUP_EPOCHS,
    PRUNING_STARTUP_TRIALS,
    applicable_keys,
    candidate_model_types,
    choices_of,
    grid_of,
    model_section,
)
from medml_cli.data.base import LoadedDataset
from medml_cli.evaluation.splits import make_folds
from medml_cli.problems import ProblemType, dataset_classes
from medml_cli.registry import MODELS
from medml_cli.tasks.base import higher_is_better

#: Trials per study when ``tune.trials`` is not given (tpe, random).
DEFAULT_TRIALS = 50
#: Trials of an image study when ``tune.trials`` is not given: each trial trains a CNN.
DEFAULT_IMAGE_TRIALS = 20
STUDIES_FILE = "studies.db"


@dataclass
class StudyOutcome:
    """One finished study: the chosen values and how well they scored on the inner folds
    (an image study: on the validation images)."""

    name: str
    params: dict[str, Any]
    best_inner: float
    completed: int
    failed: int
    seconds: float
    errors: list[str] = field(default_factory=list)
    pruned: int | None = None  # None: a study that cannot prune (tabular)

    def record(self) -> dict[str, Any]:
        """The study as it is written to metrics.json."""
        pruned = {} if self.pruned is None else {"trials_pruned": self.pruned}
        return {"study": self.name, "params": self.params, "best_inner": self.best_inner,
                "trials_completed": self.completed, **pruned, "trials_failed": self.failed,
                "seconds": round(self.seconds, 3), "errors": self.errors[:3]}


def tuned_config(cfg: Any, params: dict[str, Any]) -> Any:
    """``cfg`` with the model section one study's values give."""
    base = cfg.model.model_dump(include=cfg.model.model_fields_set)
    section = model_section(base, cfg.model.type, params)
    model = MODELS.entry(section["type"]).config.model_validate(section)
    return cfg.model_copy(update={"model": model})


def _point_key(params: dict[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


def _suggest(trial: Any, key: str, spec: Any) -> Any:
    values = choices_of(spec)
    if values is not None:
        return trial.suggest_categorical(key, values)
    if isinstance(spec, IntUniform):
        return trial.suggest_int(key, spec.low, spec.high)
    return trial.suggest_float(key, spec.low, spec.high, log=isinstance(spec, LogUniform))


def tune_metric(cfg: Any, problem: ProblemType) -> str:
    """What the studies optimise: ``tune.metric``, else the primary metric of the problem
    type these data make (a generic task with k > 2 classes is multi-class: macro_auroc).
    A metric the problem type does not compute is a MedmlUsageError (exit 2)."""
    from medml_cli.errors import MedmlUsageError

    metric = cfg.tune.metric or problem.primary_metric
    names = problem.metric_names
    if names and metric not in names:
        raise MedmlUsageError(
            f"tune.metric: '{metric}' is not a metric of these data's problem type "
            f"({problem.name}); use one of {', '.join(names)} (default "
            f"{problem.primary_metric}).")
    return metric


class Tuner:
    """Runs the studies of one run, each on a given set of rows (nested cross-validation).

    Subclasses change what one trial is (``_objective``), whether trials are pruned
    (``_pruner``) and the run's record (``summary``); the study, its storage, resume and
    sampler stay here."""

    #: Trials per study when ``tune.trials`` is not given.
    default_trials = DEFAULT_TRIALS
    #: Whether the study's trials report intermediate values a pruner can act on.
    prunes = False
    #: What a study's best score was measured on, for the log.
    scored_on = "inner"

    def __init__(self, cfg: Any, dataset: LoadedDataset, problem: ProblemType, folder: Path,
                 log: Callable[[str], None], build: Callable[..., Any],
                 progress: Callable[[str], None] | None = None) -> None:
        """``build(cfg, dataset, problem)`` makes the unfitted estimator of a config (the
        tabular kind's, so a study fits exactly what the run fits)."""
        self.cfg, self.dataset, self.problem = cfg, dataset, problem
        self.build = build
        self.tune = cfg.tune
        self.metric = tune_metric(cfg, problem)
        self.maximize = higher_is_better(self.metric)
        self.grid = grid_of(self.tune, cfg.model.type) if self.tune.sampler == "grid" else None
        self.trials = len(self.grid) if self.grid is not None else \
            (self.tune.trials or self.default_trials)
        folder.mkdir(exist_ok=True)
        self.path = folder / STUDIES_FILE
        self.log, self.progress = log, progress
        self.outer: list[dict[str, Any]] = []
        self.final: StudyOutcome | None = None

    # ------------------------------------------------------------------ one study
    def study(self, name: str, rows: Any) -> tuple[Any, StudyOutcome]:
        """Tune on ``rows`` only (what ``_objective`` takes: tabular row indices); returns the
        tuned config and the study's outcome."""
        import optuna
        from optuna.trial import TrialState

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        started = time.perf_counter()
        storage = optuna.storages.RDBStorage(f"sqlite:///{self.path}")
        try:
            previous = optuna.load_study(study_name=name, storage=storage).get_trials(
                deepcopy=False) if name in optuna.get_all_study_names(storage) else []
            # a resumed study draws on: reseeded past the trials it has, so a seeded sampler
            # does not start its sequence over and redraw values already tried
            study = optuna.create_study(
                study_name=name, storage=storage, load_if_exists=True,
                direction="maximize" if self.maximize else "minimize",
                sampler=self._sampler(len(previous)), pruner=self._pruner())
            finished = [t for t in previous if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
                        or "error" in t.user_attrs]
            for trial in previous:
                if trial.state == TrialState.RUNNING:  # its process was killed
                    storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            if self.grid is None:
                remaining = self.trials - len(finished)
            else:  # every combination not finished or already queued is queued (again)
                queued = [_point_key(t.system_attrs.get("fixed_params", {})) for t in previous
                          if t.state == TrialState.WAITING]
                seen = {_point_key(t.params) for t in finished} | set(queued)
                missing = [p for p in self.grid if _point_key(p) not in seen]
                for point in missing:
                    study.enqueue_trial(point, skip_if_exists=False)
                remaining = len(queued) + len(missing)
            if finished:
                self.log(f"tuning {name}: resuming, {len(finished)} of {self.trials} trials "
                         "done")
            if remaining > 0:
                study.optimize(self._objective(name, rows), n_trials=remaining)
            return self._outcome(name, study, started)
        finally:
            with contextlib.suppress(Exception):
                storage.engine.dispose()

    def _sampler(self, offset: int) -> Any:
        import optuna

        seed = (self.cfg.seed + 7919 * offset) % 2**32
        if self.tune.sampler == "tpe":
            return optuna.samplers.TPESampler(seed=seed)
        return optuna.samplers.RandomSampler(seed=seed)  # grid: every trial is enqueued

    def _pruner(self) -> Any:
        """None: Optuna's default, which never acts on trials that report nothing."""
        return None

    def _objective(self, name: str, rows: np.ndarray) -> Callable[[Any], float]:
        cfg, dataset, problem = self.cfg, self.dataset, self.problem
        y = dataset.y.to_numpy()
        labels, stratifiable = problem.split_labels(y[rows])
        groups = dataset.groups.to_numpy()[rows] if dataset.groups is not None else None
        inner = make_folds(labels, method="kfold", n_splits=self.tune.inner_splits,
                           test_size=0.2, seed=cfg.seed, classify=stratifiable,
                           stratify=cfg.split.stratify, groups=groups)
        X = dataset.X.iloc[rows]
        y_rows = y[rows]
        k = len(dataset_classes(dataset))
        threshold = cfg.evaluation.threshold

        def objective(trial: Any) -> float:
            params = self.suggest(trial)
            trial_cfg = tuned_config(cfg, params)
            if self.progress:
                self.progress(f"tuning {name}: trial {trial.number + 1}/{self.trials}")
            scores = []
            try:
                with warnings.catch_warnings():
                    # convergence chatter from dozens of inner fits; the fold fits log theirs
                    warnings.simplefilter("ignore")
                    for train, test in inner:
                        model = self.build(trial_cfg, dataset, problem).fit(
                            X.iloc[train], problem.fit_target(y_rows[train]))
                        score = problem.scores(model, X.iloc[test], k)
                        scores.append(problem.metrics(y_rows[test], score,
                                                      threshold)[self.metric])
            except Exception as exc:  # a bad combination fails its trial, not the run
                trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:300])
                return float("nan")
            trial.set_user_attr("inner_scores", [float(s) for s in scores])
            value = float(np.nanmean(scores)) if not np.all(np.isnan(scores)) else np.nan
            if np.isnan(value):
                trial.set_user_attr("error", f"{self.metric} could not be computed on any "
                                             "inner fold")
            return value

        return objective

    def suggest(self, trial: Any) -> dict[str, Any]:
        """One trial's values: the model type first, then only that type's keys."""
        params: dict[str, Any] = {}
        types = candidate_model_types(self.tune, self.cfg.model.type)
        model_type = self.cfg.model.type
        if "model.type" in self.tune.parameters:
            model_type = params["model.type"] = trial.suggest_categorical("model.type", types)
        for key in applicable_keys(self.tune, model_type):
            params[key] = _suggest(trial, key, self.tune.parameters[key])
        return params

    def _outcome(self, name: str, study: Any, started: float) -> tuple[Any, StudyOutcome]:
        from optuna.trial import TrialState

        from medml_cli.errors import RunFailedError

        trials = study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        pruned = [t for t in trials if t.state == TrialState.PRUNED]
        failed = [t for t in trials if "error" in t.user_attrs]  # not the interrupted ones
        errors = list(dict.fromkeys(t.user_attrs["error"] for t in failed))
        if not complete:
            raise RunFailedError(
                f"tuning study {name}: none of its {len(trials)} trials could be scored "
                f"({errors[0] if errors else 'no trial ran'}). Fix: check the "
                "tune.parameters ranges, or tune a model that fits these data.")
        best = study.best_trial
        params = {k: best.params[k] for k in best.params}
        outcome = StudyOutcome(name=name, params=params, best_inner=float(best.value),
                               completed=len(complete), failed=len(failed),
                               seconds=time.perf_counter() - started, errors=errors,
                               pruned=len(pruned) if self.prunes else None)
        self.log(f"tuning {name}: best {self.scored_on} {self.metric} "
                 f"{outcome.best_inner:.4f} with "
                 + (", ".join(f"{k}={v}" for k, v in params.items()) or "the config's model")
                 + f" ({outcome.completed} trials"
                 + (f" completed, {outcome.pruned} pruned" if outcome.pruned else "")
                 + (f", {outcome.failed} failed: {errors[0]}" if outcome.failed else "") + ")")
        return tuned_config(self.cfg, params), outcome

    # ------------------------------------------------------------------ the run's record
    def record_outer(self, fold: int, outcome: StudyOutcome, outer: dict[str, float]) -> None:
        """One outer fold: its study and the metric on the fold's test rows."""
        score = outer.get(self.metric)
        self.outer.append({"fold": fold, **outcome.record(),
                           "outer": None if score is None else float(score),
                           "optimism": self.optimism(outcome.best_inner, score)})

    def optimism(self, best: float | None, held_out: float | None) -> float | None:
        """How much the study's best score flattered the choice: best minus the held-out
        score, signed so that positive means flattered (None when either is missing)."""
        if best is None or held_out is None or np.isnan(held_out):
            return None
        gap = best - held_out
        return float(gap if self.maximize else -gap)

    def parameters_record(self) -> dict[str, Any]:
        """The searched space as metrics.json records it."""
        return {k: v if isinstance(v, list) else v.model_dump()
                for k, v in self.tune.parameters.items()}

    def summary(self) -> dict[str, Any]:
        """metrics.json's ``tuning`` block."""
        optimism = [r["optimism"] for r in self.outer if r["optimism"] is not None]
        final = self.final.record() if self.final is not None else None
        chosen = final["params"] if final else None
        agreement = {}
        for key in (chosen or {}):
            same = sum(1 for r in self.outer if r["params"].get(key) == chosen[key])
            agreement[key] = same / len(self.outer) if self.outer else None
        return {
            "sampler": self.tune.sampler, "metric": self.metric,
            "direction": "maximize" if self.maximize else "minimize",
            "trials": self.trials, "inner_splits": self.tune.inner_splits,
            "parameters": self.parameters_record(),
            "outer_folds": self.outer, "final": final,
            "mean_best_inner": float(np.mean([r["best_inner"] for r in self.outer]))
            if self.outer else None,
            "mean_optimism": float(np.mean(optimism)) if optimism else None,
            "final_choice_agreement": agreement,
            "storage": f"tune/{STUDIES_FILE}",
        }


# --------------------------------------------------------------------------- image tasks
def check_validation_scorable(cfg: Any, problem: ProblemType, y_val: np.ndarray,
                              n_classes: int) -> None:
    """Raise a DataError when the tune metric cannot be computed on the validation images
    at all (e.g. AUROC with one class among them): no trial could then be compared."""
    from medml_cli.errors import DataError

    metric = tune_metric(cfg, problem)
    constant = np.full(len(y_val), 0.5) if n_classes <= 2 else \
        np.full((len(y_val), n_classes), 1.0 / n_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = problem.metrics(y_val, constant, cfg.evaluation.threshold).get(metric)
    if value is None or np.isnan(value):
        counts = ", ".join(f"class {c}: {n}" for c, n in
                           zip(*np.unique(y_val, return_counts=True), strict=True))
        raise DataError(
            f"tune.metric {metric} cannot be computed on the {len(y_val)} validation "
            f"images ({counts}), so the study could not compare its trials.",
            "raise split.val_size or use more patients, so that the validation images "
            "hold every class.")


@dataclass
class ImageStudyData:
    """What an image study may see: the training and validation images, never the test
    images."""

    X_train: Any
    y_train: np.ndarray
    X_val: Any
    y_val: np.ndarray
    n_classes: int


class ImageTuner(Tuner):
    """One study for an image (CNN) run: each trial fits the CNN on the training images with
    its values and reports the tune metric on the validation images after every epoch; the
    pruner stops trials that fall behind. A trial's score is the metric at the epoch whose
    weights early stopping keeps, so it is the score of the model that trial would ship."""

    default_trials = DEFAULT_IMAGE_TRIALS
    prunes = True
    scored_on = "validation"
    #: The one study of an image run.
    STUDY = "validation"

    def __init__(self, cfg: Any, dataset: Any, problem: ProblemType, folder: Path,
                 log: Callable[[str], None], build: Callable[..., Any],
                 progress: Callable[[str], None] | None = None) -> None:
        """``build(cfg, dataset, problem)`` makes the unfitted CNN estimator of a config (the
        image kind's, so a trial fits what the run fits)."""
        super().__init__(cfg, dataset, problem, folder, log, build, progress)
        self.warmup = self.tune.pruning_warmup_epochs
        if self.warmup is None:
            self.warmup = DEFAULT_PRUNING_WARMUP_EPOCHS
        self.pruner = self.tune.pruner or "median"
        self.test: float | None = None
        self.final_validation: float | None = None

    def _pruner(self) -> Any:
        import optuna

        if self.pruner == "none":
            return optuna.pruners.NopPruner()
        return optuna.pruners.MedianPruner(n_startup_trials=PRUNING_STARTUP_TRIALS,
                                           n_warmup_steps=self.warmup)

    def score(self, estimator: Any, X: Any, y: np.ndarray, n_classes: int) -> float:
        """The tune metric of ``estimator`` on ``X``, computed as the run computes metrics."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a tiny validation set warns every epoch
            scores = self.problem.scores(estimator, X, n_classes)
            return float(self.problem.metrics(y, scores, self.cfg.evaluation.threshold)
                         [self.metric])

    def _objective(self, name: str, rows: Any) -> Callable[[Any], float]:
        import optuna

        data: ImageStudyData = rows
        fit_kwargs: dict[str, Any] = {"X_val": data.X_val, "y_val": data.y_val}
        if data.n_classes > 2:  # a class missing from the training images still gets an output
            fit_kwargs["n_classes"] = data.n_classes

        def objective(trial: Any) -> float:
            params = self.suggest(trial)
            trial_cfg = tuned_config(self.cfg, params)
            label = f"tuning: trial {trial.number + 1}/{self.trials}"
            values = (", ".join(f"{k.removeprefix('model.')}={v}" for k, v in params.items())
                      or "the config's model")
            epochs = trial_cfg.model.epochs
            estimator = self.build(trial_cfg, self.dataset, self.problem)
            scores: list[float] = []

            def on_epoch(epoch: int, logs: dict[str, float]) -> None:
                value = self.score(estimator, data.X_val, data.y_val, data.n_classes)
                scores.append(value)
                if self.progress:
                    self.progress(f"{label}, epoch {epoch + 1}/{epochs}")
                if not np.isnan(value):
                    trial.report(value, epoch)
                    if trial.should_prune():  # ends this fit: the exception leaves Keras's loop
                        raise optuna.TrialPruned(f"pruned at epoch {epoch + 1}")

            estimator.set_params(epoch_callback=on_epoch)
            try:
                estimator.fit(data.X_train, data.y_train, **fit_kwargs)
            except optuna.TrialPruned:
                trial.set_user_attr("epoch_scores", scores)
                self.log(f"{label} pruned at epoch {len(scores)}/{epochs} (validation "
                         f"{self.metric} {scores[-1]:.4f}; {values})")
                raise
            except Exception as exc:  # a bad combination fails its trial, not the run
                trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:300])
                self.log(f"{label} failed: {trial.user_attrs['error']}")
                return float("nan")
            trial.set_user_attr("epoch_scores", scores)
            value = scores[int(estimator.best_epoch_)] if scores else float("nan")
            trial.set_user_attr("best_epoch", int(estimator.best_epoch_) + 1)
            if np.isnan(value):
                trial.set_user_attr("error", f"{self.metric} could not be computed on the "
                                             "validation images")
            self.log(f"{label}: validation {self.metric} {value:.4f} at epoch "
                     f"{int(estimator.best_epoch_) + 1} of {len(scores)} ({values})")
            return value

        return objective

    def run(self, data: ImageStudyData) -> tuple[Any, StudyOutcome]:
        """The run's one study, on the training and validation images; returns the tuned
        config and the outcome (also kept as ``final``)."""
        tuned, self.final = self.study(self.STUDY, data)
        return tuned, self.final

    def record_test(self, validation: float, test: float | None) -> None:
        """The shipped model's tune metric on the validation and the test images."""
        self.final_validation = validation
        self.test = test

    def summary(self) -> dict[str, Any]:
        """metrics.json's ``tuning`` block for an image run."""
        final = self.final.record() if self.final is not None else None
        best = self.final.best_inner if self.final is not None else None
        return {
            "scheme": "validation-images",
            "sampler": self.tune.sampler, "metric": self.metric,
            "direction": "maximize" if self.maximize else "minimize",
            "trials": self.trials, "pruner": self.pruner,
            "pruning_warmup_epochs": self.warmup,
            "pruning_startup_trials": PRUNING_STARTUP_TRIALS if self.pruner == "median"
            else None,
            "parameters": self.parameters_record(),
            "final": final,
            "best_validation": best,
            "final_validation": self.final_validation,
            "test": self.test,
            "optimism": self.optimism(best, self.test),
            "trials_completed": final["trials_completed"] if final else 0,
            "trials_pruned": final["trials_pruned"] if final else 0,
            "trials_failed": final["trials_failed"] if final else 0,
            "storage": f"tune/{STUDIES_FILE}",
        }
