"""``medml evaluate RUN --data SITE --update intercept|recalibrate|refit``: update a run's
model for a new site, estimate how the updated model performs there without scoring any row
with an update fitted on it, and save the updated model as a new run beside its parent.

Methods (Steyerberg, *Clinical Prediction Models*, ch. 20):

* ``intercept``: recalibration-in-the-large, ``logit p' = a + logit p`` (the slope fixed at
  1; ``a`` is the unpenalised maximum-likelihood fit with ``logit p`` as an offset); for
  regression the mean shift ``y' = a + prediction``;
* ``recalibrate``: logistic recalibration, ``logit p' = a + b * logit p``; for regression
  the least-squares line ``y' = a + b * prediction``;
* ``refit``: the run's own model config (same pipeline and missing-data policy, through
  :func:`build_estimator`) fitted on the site's rows only.

Honesty: the site's rows are split into folds (5; stratified for classification, and fewer
when the smaller class has fewer than 5 rows; seeded with the run's seed). In each fold the
update is fitted on the training part only (it is handed only those rows' outcomes) and
scores the test part; the pooled out-of-fold scores give the updated model's metrics. The
un-updated model, which saw none of the site's rows, is scored on all of them beside it. The
model that is saved is the update fitted on every site row, as a k-fold run's shipped model
is refit on every row.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from medml_cli.data.base import LoadedDataset
from medml_cli.errors import DataError, MedmlUsageError
from medml_cli.evaluation.splits import Fold, kfold_splits
from medml_cli.models.recalibrated import (
    RecalibratedClassifier,
    RecalibratedRegressor,
    clipped_logit,
)
from medml_cli.problems import ProblemType
from medml_cli.schemas import FeatureSchema

#: The choices of ``--update`` (the CLI's choice type lists the same names).
UPDATE_METHODS: tuple[str, ...] = ("intercept", "recalibrate", "refit")
#: What the records and the report call each method.
METHOD_TEXT: dict[str, str] = {
    "intercept": "recalibration-in-the-large (logit p' = a + logit p; slope fixed at 1)",
    "recalibrate": "logistic recalibration (logit p' = a + b * logit p)",
    "refit": "refitting the run's model config on the site's data only",
}
#: What they are for a continuous outcome.
REGRESSION_METHOD_TEXT: dict[str, str] = {
    "intercept": "a mean shift (y' = a + prediction)",
    "recalibrate": "linear recalibration (y' = a + b * prediction, least squares)",
    "refit": METHOD_TEXT["refit"],
}
#: Folds of the within-site cross-validation (fewer when the smaller class is rarer).
MAX_FOLDS = 5
#: Rows a continuous outcome's site needs (two per fold at least).
MIN_REGRESSION_ROWS = 10
#: The problem types ``--update`` supports.
SUPPORTED_PROBLEMS = ("binary-classification", "regression")


def method_text(method: str, problem: str) -> str:
    """What the records and report call ``method`` for ``problem``."""
    return (REGRESSION_METHOD_TEXT if problem == "regression" else METHOD_TEXT)[method]


# --------------------------------------------------------------------------- the request
def check_update_request(method: str | None, data: Path | None, card: dict[str, Any]) -> None:
    """Refuse an ``--update`` that cannot be done (exit 2), before any work."""
    if method is None:
        return
    if method not in UPDATE_METHODS:
        raise MedmlUsageError(f"--update {method!r} is not an update method. Fix: use one of "
                              f"{', '.join(UPDATE_METHODS)}.")
    if data is None:
        raise MedmlUsageError(
            f"--update {method} needs the new site's data: the update is fitted on the site's "
            "rows and their outcomes. Fix: add --data SITE (a data config .yaml, e.g. "
            "`data: {type: uci-heart-disease, sites: [hungarian]}`, or a .csv/.parquet table "
            "with the training columns and the outcome).")
    if card.get("format") == "keras":
        raise MedmlUsageError(
            f"--update {method}: image (CNN) runs cannot be updated yet; --update supports "
            "tabular binary-classification runs. Fix: evaluate without --update, or train "
            "the image model again on data that include the new site.")
    problem = card.get("problem")
    if problem not in SUPPORTED_PROBLEMS:
        raise MedmlUsageError(
            f"--update {method}: this run is {problem}, and --update supports tabular "
            f"{' and '.join(SUPPORTED_PROBLEMS)} runs only (intercept and slope "
            "recalibration are defined on a probability's logit or a predicted value). Fix: "
            "evaluate without --update, or train a new run on the site's data with "
            "`medml train`.")


def update_folds(y: np.ndarray, *, seed: int, groups: np.ndarray | None = None,
                 source: str = "--data", classify: bool = True) -> list[Fold]:
    """Folds over the site's rows. Classification: stratified, 5, or as many as the smaller
    class has rows (so every held-out part holds at least one of the rarer class), and at
    least 2. A continuous outcome: 5 folds, and at least :data:`MIN_REGRESSION_ROWS` rows."""
    if not classify:
        n_units = len(np.unique(groups)) if groups is not None else len(y)
        if n_units < MIN_REGRESSION_ROWS:
            raise DataError(
                f"the site's data have {n_units} {'patients' if groups is not None else 'rows'}"
                f", too few to cross-validate an update ({MIN_REGRESSION_ROWS} at least, two "
                f"per fold).", "add patients from the site.", source=source)
        return kfold_splits(np.asarray(y, dtype=float), n_splits=MAX_FOLDS, seed=seed,
                            classify=False, stratify=False, groups=groups)
    y = np.asarray(y).astype(int)
    counts = np.bincount(y, minlength=2)
    if (counts > 0).sum() < 2:
        only = "positive" if counts[1] else "negative"
        raise DataError(
            f"the site's data hold a single class (all {len(y)} rows are {only}), so no "
            "update can be fitted: intercept and slope need both outcomes, and so do AUROC "
            "and calibration.", "pass a site data set with patients of both outcomes.",
            source=source)
    minority = int(counts.min())
    if minority < 2:
        raise DataError(
            f"the site's data have {minority} row of the rarer class ({len(y)} rows in all), "
            "too few to cross-validate an update: each of at least 2 folds needs one in its "
            "held-out part.", "add patients from the site (at least 2 of each outcome).",
            source=source)
    k = min(MAX_FOLDS, minority)
    return kfold_splits(y, n_splits=k, seed=seed, classify=True, stratify=True, groups=groups)


# --------------------------------------------------------------------------- updaters
class Updater(Protocol):
    """Fits an update on some site rows (given only their outcomes) and scores rows."""

    method: str

    def fit(self, rows: np.ndarray, y: np.ndarray) -> tuple[Any, dict[str, float]]:
        """The update fitted on ``rows`` with outcomes ``y``, and its parameters."""

    def scores(self, fitted: Any, rows: np.ndarray) -> np.ndarray:
        """The updated probability of ``rows``."""

    def model(self, fitted: Any) -> Any:
        """The fitted update as a model medml saves and loads (skops)."""


def fit_logit_update(method: str, prob: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(intercept a, slope b) of ``logit P(y=1) = a + b * logit(prob)``; ``intercept``: b = 1
    and ``a`` fitted with ``logit(prob)`` as an offset. Unpenalised maximum likelihood."""
    from medml_cli.evaluation.calibration import _newton_logistic, slope_problem

    y = np.asarray(y, dtype=float)
    lp = clipped_logit(prob)
    ones = np.ones((len(y), 1))
    if method == "intercept":
        return float(_newton_logistic(ones, y, lp)[0]), 1.0
    problem = slope_problem(y, prob)
    if problem is not None:
        raise DataError(
            f"--update recalibrate: {problem} in (part of) the site's data, so the slope has "
            "no estimate.", "use --update intercept (its one parameter is always defined), "
            "or add patients from the site.")
    a, b = _newton_logistic(np.column_stack([ones, lp]), y, np.zeros(len(y)))
    return float(a), float(b)


def fit_linear_update(method: str, prediction: np.ndarray,
                      y: np.ndarray) -> tuple[float, float]:
    """(a, b) of ``y = a + b * prediction`` by least squares; ``intercept``: b = 1 and ``a``
    the mean residual."""
    prediction = np.asarray(prediction, dtype=float)
    y = np.asarray(y, dtype=float)
    if method == "intercept":
        return float(np.mean(y - prediction)), 1.0
    if np.ptp(prediction) == 0:
        raise DataError("--update recalibrate: the model predicts the same value for every "
                        "row of (part of) the site's data, so the slope has no estimate.",
                        "use --update intercept, or add patients from the site.")
    b, a = np.polyfit(prediction, y, 1)
    return float(a), float(b)


@dataclass
class RecalibrationUpdate:
    """``intercept`` / ``recalibrate``: the model stays, only a (and b) on its output are
    fitted: on the logit of a probability (classification) or on the predicted value
    (regression, ``linear``). ``original`` is the un-updated output for every site row."""

    method: str
    original: np.ndarray
    base: Any
    linear: bool = False

    def fit(self, rows: np.ndarray, y: np.ndarray) -> tuple[Any, dict[str, float]]:
        """a (and b) from the given rows' original outputs and outcomes."""
        fit = fit_linear_update if self.linear else fit_logit_update
        a, b = fit(self.method, self.original[rows], y)
        return (a, b), {"intercept": a, "slope": b}

    def scores(self, fitted: Any, rows: np.ndarray) -> np.ndarray:
        """The recalibrated output, computed as the saved model computes it."""
        a, b = fitted
        if self.linear:
            return a + b * self.original[rows]
        return 1.0 / (1.0 + np.exp(-(a + b * clipped_logit(self.original[rows]))))

    def model(self, fitted: Any) -> RecalibratedClassifier | RecalibratedRegressor:
        """The base pipeline with the update on top."""
        a, b = fitted
        kind = RecalibratedRegressor if self.linear else RecalibratedClassifier
        return kind(self.base, intercept=a, slope=b)


@dataclass
class RefitUpdate:
    """``refit``: the run's model config fitted afresh on the given site rows."""

    cfg: Any
    dataset: LoadedDataset  # the site's rows, features as the run's schema has them
    problem: ProblemType
    method: str = "refit"
    fit_warnings: set[str] = field(default_factory=set)

    def fit(self, rows: np.ndarray, y: np.ndarray) -> tuple[Any, dict[str, float]]:
        """A new pipeline fitted on ``rows`` (outcomes ``y`` only, never the dataset's)."""
        from medml_cli.workflows.train_tabular import build_estimator

        estimator = build_estimator(self.cfg, self.dataset, self.problem)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            estimator.fit(self.dataset.X.iloc[rows], self.problem.fit_target(y))
        self.fit_warnings |= {str(w.message).splitlines()[0][:160] for w in caught}
        return estimator, {}

    def scores(self, fitted: Any, rows: np.ndarray) -> np.ndarray:
        """The refit model's probability of ``rows``."""
        return self.problem.scores(fitted, self.dataset.X.iloc[rows], 2)

    def model(self, fitted: Any) -> Any:
        """The refit pipeline itself."""
        return fitted


def make_updater(method: str, *, cfg: Any, dataset: LoadedDataset, X: pd.DataFrame,
                 schema: FeatureSchema, problem: ProblemType, model: Any,
                 original: np.ndarray) -> Updater:
    """The updater of ``method`` for the site's rows: ``X`` its features as the run's schema
    has them, ``model`` the run's fitted model and ``original`` its probability per row."""
    if method == "refit":
        return RefitUpdate(cfg=cfg, dataset=replace(dataset, X=X, schema=schema),
                           problem=problem)
    return RecalibrationUpdate(method=method, original=np.asarray(original, dtype=float),
                               base=model, linear=not problem.classifies)


# --------------------------------------------------------------------------- cross-validation
@dataclass
class FoldUpdate:
    """One fold: the update fitted on ``train``, and its scores of the ``test`` rows."""

    fold: int
    train: np.ndarray
    test: np.ndarray
    parameters: dict[str, float]
    scores: np.ndarray


@dataclass
class CrossValidatedUpdate:
    """The out-of-fold updated score of every site row, and each fold's fitted update."""

    method: str
    folds: list[FoldUpdate]
    scores: np.ndarray
    fold_of_row: np.ndarray


def cross_validated_update(updater: Updater, y: np.ndarray,
                           folds: list[Fold]) -> CrossValidatedUpdate:
    """Fit the update on each fold's training rows (handing it only their outcomes) and score
    that fold's test rows with it; every row is scored exactly once, by an update that never
    saw its outcome."""
    y = np.asarray(y)
    scores = np.full(len(y), np.nan)
    fold_of_row = np.full(len(y), -1)
    results: list[FoldUpdate] = []
    for k, (train, test) in enumerate(folds):
        train, test = np.asarray(train), np.asarray(test)
        if np.intersect1d(train, test).size or (fold_of_row[test] >= 0).any():
            raise ValueError(f"fold {k}: its test rows overlap its training rows or an "
                             "earlier fold's test rows")
        fitted, parameters = updater.fit(train, y[train])
        fold_scores = np.asarray(updater.scores(fitted, test), dtype=float)
        scores[test] = fold_scores
        fold_of_row[test] = k
        results.append(FoldUpdate(k, train, test, parameters, fold_scores))
    if (fold_of_row < 0).any():
        raise ValueError("the folds leave rows without a held-out score")
    return CrossValidatedUpdate(updater.method, results, scores, fold_of_row)


# --------------------------------------------------------------------------- the workflow
@dataclass
class SiteUpdate:
    """What ``evaluate --update`` adds to the evaluation: its metrics.json block, its
    predictions.csv columns, and the new run holding the updated model."""

    block: dict[str, Any]
    columns: dict[str, np.ndarray]
    run_path: Path


def _assessed(problem: ProblemType, y: np.ndarray, scores: np.ndarray, threshold: Any,
              cfg: Any, groups: np.ndarray | None) -> dict[str, Any]:
    """Metrics, bootstrap intervals and calibration of one set of site scores."""
    assessed = problem.assess(y, scores, threshold=threshold, ev=cfg.evaluation, seed=cfg.seed,
                              classes=[], groups=groups)
    calibration = assessed.get("calibration") or {}
    if not problem.classifies:  # the same two numbers for a continuous outcome
        a, b = fit_linear_update("recalibrate", scores, y) if np.ptp(scores) > 0 \
            else (float("nan"), float("nan"))
        calibration = {"calibration_intercept": float(np.mean(y - scores)),
                       "calibration_slope": b}
    return {"metrics": problem.metrics(y, scores, threshold),
            "intervals": assessed.get("intervals") or {},
            "calibration": calibration}


def update_at_site(method: str, *, run_path: Path, run_cfg: Any, cfg: Any,
                   card: dict[str, Any], schema: FeatureSchema, problem: ProblemType,
                   dataset: LoadedDataset, X: pd.DataFrame, model: Any, original: np.ndarray,
                   threshold: Any, notes: list[str]) -> SiteUpdate:
    """Cross-validate ``method`` within the site, fit it on every site row, save that as a
    new run beside ``run_path``, and return the comparison for the evaluation's records.

    ``X`` are the site's features as the run's schema has them; ``original`` the un-updated
    model's probability of each row; ``cfg`` the evaluation config (data = the site)."""
    y = _outcome(dataset, problem)
    groups = dataset.groups.to_numpy() if dataset.groups is not None else None
    folds = update_folds(y, seed=cfg.seed, groups=groups, classify=problem.classifies)
    if card.get("tuned_parameters") is not None:  # refit the model the run shipped, as tuned
        from medml_cli.workflows.tuning import tuned_config

        cfg = tuned_config(cfg, card["tuned_parameters"])
    updater = make_updater(method, cfg=cfg, dataset=dataset, X=X, schema=schema,
                           problem=problem, model=model, original=original)
    empty = [c for c in X.columns if X[c].isna().all()]
    if method == "refit" and empty:
        notes.append(f"refit: {', '.join(empty)} have no values at this site, so the refit "
                     "model imputes a constant for them (they carry no information)")
    cv = cross_validated_update(updater, y, folds)
    everything = np.arange(len(y))
    final, parameters = updater.fit(everything, y)
    if isinstance(updater, RefitUpdate):
        notes += [f"warning while refitting: {w}" for w in sorted(updater.fit_warnings)]
    cut = float(np.mean(threshold)) if problem.uses_threshold else None
    block: dict[str, Any] = {
        "method": method,
        "description": method_text(method, problem.name),
        "parent_run": run_path.name,
        "folds": len(folds),
        "seed": cfg.seed,
        "threshold": cut,
        "parameters": parameters,
        "per_fold": [{"fold": f.fold, "n_train": int(len(f.train)), "n_test": int(len(f.test)),
                      **f.parameters} for f in cv.folds],
        "original": _assessed(problem, y, np.asarray(original, dtype=float), cut, cfg, groups),
        "updated": _assessed(problem, y, cv.scores, cut, cfg, groups),
        "estimate": (f"stratified {len(folds)}-fold cross-validation within the site's "
                     f"{len(y)} rows (seed {cfg.seed}): each fold's update was fitted on its "
                     "training part only and scored its held-out part; metrics are of the "
                     "pooled out-of-fold scores"),
    }
    new_run = write_updated_run(
        method, updater.model(final), block=block, cv=cv, run_path=run_path, run_cfg=run_cfg,
        cfg=cfg, card=card, schema=schema, problem=problem, dataset=dataset, X=X,
        original=np.asarray(original, dtype=float), threshold=cut)
    block["run"] = new_run.name
    block["run_dir"] = str(new_run)
    notes.append(f"updated by {method} ({len(folds)}-fold cross-validated within the site); "
                 f"the updated model is saved as run {new_run}")
    columns = {"updated_score": cv.scores, "update_fold": cv.fold_of_row}
    if cut is not None:
        columns["updated_predicted_class"] = (cv.scores >= cut).astype(int)
    return SiteUpdate(block=block, columns=columns, run_path=new_run)


def _outcome(dataset: LoadedDataset, problem: ProblemType) -> np.ndarray:
    """The site's outcomes: class codes, or the continuous values."""
    y = dataset.y.to_numpy()
    return y.astype(int) if problem.classifies else y.astype(float)


def _updated_config(cfg: Any, schema: FeatureSchema, method: str, n_folds: int,
                    threshold: float | None, parent_name: str) -> Any:
    """The new run's resolved config: the site's data read with the run's features and
    missing-data policy, its within-site folds, and the parent's threshold kept fixed."""
    from medml_cli.config.loader import validate_config_data

    data = cfg.model_dump(mode="json")
    fields = type(cfg.data).model_fields
    if "features" in fields:
        data["data"]["features"] = list(schema.feature_names)
    if "exclude" in fields:
        data["data"]["exclude"] = []
    if "missing" in fields:
        data["data"]["missing"] = schema.missing
    data["split"] = {**data["split"], "method": "kfold", "n_splits": n_folds,
                     "stratify": threshold is not None}
    if threshold is not None:
        # the parent's operating threshold is carried over as it is (not re-chosen at the site)
        data["evaluation"] = {**data["evaluation"], "threshold": threshold,
                              "threshold_method": "fixed", "threshold_target": None}
    suffix = f"-updated-{method}"
    data["name"] = parent_name[: 64 - len(suffix)] + suffix
    return validate_config_data(data, source=f"the updated run's config ({method})")


def write_updated_run(method: str, model: Any, *, block: dict[str, Any],
                      cv: CrossValidatedUpdate, run_path: Path, run_cfg: Any, cfg: Any,
                      card: dict[str, Any], schema: FeatureSchema, problem: ProblemType,
                      dataset: LoadedDataset, X: pd.DataFrame, original: np.ndarray,
                      threshold: float | None) -> Path:
    """Save the updated model as a complete run beside its parent (written under a temporary
    name and renamed into place, like every run): config, environment, status, the
    cross-validated predictions and metrics, the skops model with its card and schema, and
    the report. Every record names the parent run."""
    import time

    from medml_cli.config.loader import config_to_yaml
    from medml_cli.evaluation.report import tabular_data_lines
    from medml_cli.runs.artifacts import save_sklearn_model, write_model_json
    from medml_cli.runs.directory import create_run_dir
    from medml_cli.runs.environment import capture_environment
    from medml_cli.runs.records import write_card
    from medml_cli.workflows.heldout import prediction_table, record_head
    from medml_cli.workflows.run_results import write_run_results
    from medml_cli.workflows.train_tabular import model_card, subgroup_frame

    new_cfg = _updated_config(cfg, schema, method, len(cv.folds), threshold, run_cfg.run_name)
    parent = {"parent_run": run_path.name, "parent_run_dir": str(run_path.resolve()),
              "update_method": method}
    environment = {**capture_environment(dataset.provenance.files, None).as_dict(), **parent}
    y = _outcome(dataset, problem)
    synthetic = bool(card.get("synthetic_data")) or dataset.provenance.synthetic
    with create_run_dir(run_path.parent, new_cfg.run_name, config_to_yaml(new_cfg)) as run:
        started = time.perf_counter()
        run.write_json("environment.json", environment)
        run.log(f"updated from run {run_path.name} by {method_text(method, problem.name)} on "
                f"{len(y)} rows of {cfg.data.type}; {len(cv.folds)}-fold within-site "
                f"cross-validation, seed {cfg.seed}")
        predictions = prediction_table(
            problem, ids=dataset.ids.to_numpy(), truth=y, scores=cv.scores,
            classes=list(schema.classes), threshold=threshold, fold=cv.fold_of_row,
            threshold_column=True, meta=dataset.meta)
        predictions["original_score"] = original
        metrics: dict[str, Any] = {
            **record_head(new_cfg, problem, synthetic=synthetic),
            "split": {"method": "kfold", "folds": len(cv.folds),
                      "within": "the new site's rows (the update's cross-validation)"},
            "threshold": threshold,
            "threshold_method": "fixed" if threshold is not None else None,
            "metrics": problem.metrics(y, cv.scores, threshold),
            "baseline": {}, "primary_metric": problem.primary_metric,
            "n": problem.sample_counts(y, None, list(schema.classes)),
            **parent, "update": block,
        }
        metrics.update(problem.assess(
            y, cv.scores, threshold=threshold, ev=new_cfg.evaluation, seed=new_cfg.seed,
            classes=list(schema.classes),
            subgroup_frame=subgroup_frame(replace(dataset, X=X), predictions["id"])
            if new_cfg.evaluation.subgroups else None,
            out_dir=run.path, synthetic=synthetic))
        model_dir = run.file("model")
        save_sklearn_model(model, model_dir)
        site = replace(dataset, X=X, schema=schema)
        card_threshold = threshold if threshold is not None else new_cfg.evaluation.threshold
        write_card(model_dir, {**model_card(new_cfg, site, card_threshold, problem), **parent})
        # a refit model learnt the site's categories and ranges; a recalibrated one keeps the
        # base model's, which is what its unseen-value warnings must compare against
        fitted_schema = schema.with_training_stats(X) if method == "refit" else schema
        write_model_json(model_dir, "schema.json", fitted_schema.model_dump(mode="json"))
        lines = [f"**Updated from run {run_path.name}** by "
                 f"{method_text(method, problem.name)}, fitted on "
                 f"all {len(y)} rows of the new site; the figures below are the "
                 f"{len(cv.folds)}-fold cross-validated estimate within the site",
                 *tabular_data_lines(site, X, external=True)]
        write_run_results(run, cfg=new_cfg, provenance=dataset.provenance, data_lines=lines,
                          metrics=metrics, predictions=predictions, started=started,
                          title=f"medml run: {new_cfg.run_name} (updated from run "
                                f"{run_path.name} by {method})")
    return run.path
