"""Tuning inside a run (``tune:``): nested cross-validation with Optuna.

In every outer fold an Optuna study on inner folds of that fold's training rows chooses the
hyperparameters; the outer test rows are never seen by it. The shipped model is tuned the
same way on all rows. Studies live in the run (``tune/studies.db``, Optuna's SQLite storage),
so an interrupted run resumes without repeating finished trials.
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
    applicable_keys,
    candidate_model_types,
    choices_of,
    grid_of,
    model_section,
)
from medml_cli.data.base import LoadedDataset
from medml_cli.evaluation.splits import make_folds
from medml_cli.problems import ProblemType, dataset_classes
from medml_cli.registry import MODELS, TASKS
from medml_cli.tasks.base import higher_is_better

#: Trials per study when ``tune.trials`` is not given (tpe, random).
DEFAULT_TRIALS = 50
STUDIES_FILE = "studies.db"


@dataclass
class StudyOutcome:
    """One finished study: the chosen values and how well they scored on the inner folds."""

    name: str
    params: dict[str, Any]
    best_inner: float
    completed: int
    failed: int
    seconds: float
    errors: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """The study as it is written to metrics.json."""
        return {"study": self.name, "params": self.params, "best_inner": self.best_inner,
                "trials_completed": self.completed, "trials_failed": self.failed,
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


class Tuner:
    """Runs the studies of one run, each on a given set of rows."""

    def __init__(self, cfg: Any, dataset: LoadedDataset, problem: ProblemType, folder: Path,
                 log: Callable[[str], None], build: Callable[..., Any],
                 progress: Callable[[str], None] | None = None) -> None:
        """``build(cfg, dataset, problem)`` makes the unfitted estimator of a config (the
        tabular kind's, so a study fits exactly what the run fits)."""
        self.cfg, self.dataset, self.problem = cfg, dataset, problem
        self.build = build
        self.tune = cfg.tune
        self.metric = self.tune.metric or TASKS.get(cfg.task).primary_metric
        self.maximize = higher_is_better(self.metric)
        self.grid = grid_of(self.tune, cfg.model.type) if self.tune.sampler == "grid" else None
        self.trials = len(self.grid) if self.grid is not None else \
            (self.tune.trials or DEFAULT_TRIALS)
        folder.mkdir(exist_ok=True)
        self.path = folder / STUDIES_FILE
        self.log, self.progress = log, progress
        self.outer: list[dict[str, Any]] = []
        self.final: StudyOutcome | None = None

    # ------------------------------------------------------------------ one study
    def study(self, name: str, rows: np.ndarray) -> tuple[Any, StudyOutcome]:
        """Tune on ``rows`` only; returns the tuned config and the study's outcome."""
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
                sampler=self._sampler(len(previous)))
            finished = [t for t in previous
                        if t.state == TrialState.COMPLETE or "error" in t.user_attrs]
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
                               seconds=time.perf_counter() - started, errors=errors)
        self.log(f"tuning {name}: best inner {self.metric} {outcome.best_inner:.4f} with "
                 + (", ".join(f"{k}={v}" for k, v in params.items()) or "the config's model")
                 + f" ({outcome.completed} trials"
                 + (f", {outcome.failed} failed: {errors[0]}" if outcome.failed else "") + ")")
        return tuned_config(self.cfg, params), outcome

    # ------------------------------------------------------------------ the run's record
    def record_outer(self, fold: int, outcome: StudyOutcome, outer: dict[str, float]) -> None:
        """One outer fold: its study and the metric on the fold's test rows."""
        score = outer.get(self.metric)
        optimism = None
        if score is not None and not np.isnan(score):
            gap = outcome.best_inner - score
            optimism = float(gap if self.maximize else -gap)
        self.outer.append({"fold": fold, **outcome.record(),
                           "outer": None if score is None else float(score),
                           "optimism": optimism})

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
            "parameters": {k: v if isinstance(v, list) else v.model_dump()
                           for k, v in self.tune.parameters.items()},
            "outer_folds": self.outer, "final": final,
            "mean_best_inner": float(np.mean([r["best_inner"] for r in self.outer]))
            if self.outer else None,
            "mean_optimism": float(np.mean(optimism)) if optimism else None,
            "final_choice_agreement": agreement,
            "storage": f"tune/{STUDIES_FILE}",
        }
