"""``medml train``: config -> task -> data -> split -> fit -> evaluate -> run directory."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medml_cli.config.loader import config_to_yaml
from medml_cli.data.base import LoadedDataset, check_not_all_missing
from medml_cli.errors import DataError, MedmlUsageError
from medml_cli.evaluation.report import image_data_lines, tabular_data_lines, write_reports
from medml_cli.evaluation.splits import make_folds
from medml_cli.problems import ProblemType, dataset_classes, problem_of
from medml_cli.registry import DATASETS, MODELS, TASKS
from medml_cli.runs.artifacts import save_sklearn_model, write_model_json
from medml_cli.runs.directory import RunDir, create_run_dir
from medml_cli.runs.environment import capture_environment
from medml_cli.workflows.heldout import card_fields, prediction_table, record_head
from medml_cli.workflows.threshold import pick_threshold

ProgressFn = Callable[[int, int, str], None]


@dataclass
class RunResult:
    """What train returns: the run folder and its metrics."""

    path: Path
    metrics: dict[str, Any]


def data_source_name(cfg: Any) -> str:
    """What error messages call the config's data: its file, or the source's name."""
    path = getattr(cfg.data, "path", None)
    return str(path) if path else cfg.data.type


def load_dataset(cfg: Any) -> LoadedDataset:
    """Load the config's data for its task (raises DataError on bad data)."""
    spec = TASKS.get(cfg.task)
    return DATASETS.create(cfg.data.type, cfg.data, problem=spec.problem)


def build_estimator(cfg: Any, dataset: LoadedDataset, problem: ProblemType | None = None) -> Any:
    """The model's pipeline; with ``evaluation.recalibration`` wrapped so that the calibrator
    is fitted by internal cross-validation on the training rows it is given, and nothing else."""
    problem = problem or problem_of(cfg.task, dataset)
    estimator = MODELS.create(cfg.model.type, cfg.model, problem=problem.name,
                              schema=dataset.schema, seed=cfg.seed)
    method = cfg.evaluation.recalibration
    if method != "none" and problem.classifies:
        from sklearn.calibration import CalibratedClassifierCV

        estimator = CalibratedClassifierCV(estimator, method=method, cv=3)
    return estimator


def _fit_quietly(estimator: Any, X: pd.DataFrame, y: np.ndarray, run: RunDir) -> Any:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator.fit(X, y)
    for warning in {str(w.message) for w in caught}:
        run.log(f"warning during fit: {warning}")
    return estimator


def run_experiment(
    cfg: Any,
    *,
    runs_dir: Path,
    name: str | None = None,
    config_path: Path | None = None,
    overrides: list[str] | None = None,
    progress: ProgressFn | None = None,
    resume: Path | None = None,
) -> RunResult:
    """Train and evaluate one experiment; returns the completed run's path and metrics.

    Data and split problems raise before any run directory exists; a failure while fitting
    leaves a run marked failed. ``resume`` continues an interrupted image run in place.
    """
    spec = TASKS.get(cfg.task)
    dataset = load_dataset(cfg)
    problem = problem_of(cfg.task, dataset)
    if spec.data_kind == "image":
        return _run_image_experiment(cfg, dataset, runs_dir=runs_dir, name=name,
                                     config_path=config_path, overrides=overrides,
                                     progress=progress, resume=resume)
    if resume is not None:
        raise MedmlUsageError(
            f"--resume applies to image (CNN) runs, which checkpoint every epoch; "
            f"{cfg.task} runs take seconds, so train again instead.")
    check_not_all_missing(dataset.X, data_source_name(cfg))
    check_subgroups(cfg, dataset)
    y = dataset.y.to_numpy()
    groups = dataset.groups.to_numpy() if dataset.groups is not None else None
    folds = make_folds(
        y, method=cfg.split.method, n_splits=cfg.split.n_splits, test_size=cfg.split.test_size,
        seed=cfg.seed, classify=problem.classifies, stratify=cfg.split.stratify, groups=groups,
    )
    run_name = name or cfg.run_name
    config_text = config_to_yaml(cfg)
    environment = capture_environment(dataset.provenance.files, config_path)

    with create_run_dir(runs_dir, run_name, config_text) as run:
        started = time.perf_counter()
        run.write_json("environment.json", environment)
        if overrides:
            run.write_text("overrides.txt", "\n".join(overrides) + "\n")
        run.log(f"task {cfg.task} ({problem.name}); data {cfg.data.type}: "
                f"{dataset.n_samples} rows, "
                f"{len(dataset.schema.columns)} features; model {cfg.model.type}; "
                f"split {cfg.split.method} ({len(folds)} fold(s)); seed {cfg.seed}")
        if dataset.provenance.synthetic:
            run.log("NOTE: these data are SYNTHETIC")
        for note in dataset.notes:  # e.g. label spellings merged when stripping spaces
            run.log(f"data note: {note}")

        frames, fold_rows, importances = [], [], []
        total = len(folds) + (1 if cfg.split.method == "kfold" else 0)
        final_model, final_threshold = None, cfg.evaluation.threshold
        for k, (train_idx, test_idx) in enumerate(folds):
            if progress:
                progress(k, total, f"fold {k + 1}/{len(folds)}")
            outcome = fit_fold(cfg, dataset, train_idx, test_idx, run, problem)
            fold_rows.append({"fold": k, "n_train": len(train_idx), "n_test": len(test_idx),
                              "threshold": outcome.threshold, **outcome.metrics})
            run.log(f"fold {k + 1}: "
                    + (f"threshold {outcome.threshold:.4f}; " if problem.uses_threshold else "")
                    + ", ".join(f"{m}={v:.4f}" for m, v in outcome.metrics.items()))
            frames.append(_prediction_frame(dataset, test_idx, outcome.score,
                                            outcome.baseline_score, k, problem,
                                            outcome.threshold))
            if outcome.importance is not None:
                importances.append(outcome.importance)
            if cfg.split.method == "holdout":
                final_model, final_threshold = outcome.model, outcome.threshold

        predictions = pd.concat(frames, ignore_index=True)
        if final_model is None:  # k-fold: the shipped model is refit on every row
            if progress:
                progress(len(folds), total, "final fit on all rows")
            final_model = _fit_quietly(build_estimator(cfg, dataset, problem), dataset.X, y, run)
            if problem.uses_threshold and cfg.evaluation.threshold_method != "fixed":
                # the shipped model's threshold comes from the out-of-fold predictions: held
                # out from every fold model, and training data for the refit model
                final_threshold = pick_threshold(
                    cfg, predictions["truth"].to_numpy(), predictions["score"].to_numpy())
        if progress:
            progress(total, total, "evaluating and saving")

        metrics = summarise(cfg, dataset, predictions, fold_rows, problem)
        metrics["threshold"] = final_threshold if problem.uses_threshold else None
        metrics["threshold_method"] = cfg.evaluation.threshold_method \
            if problem.uses_threshold else None
        clinical = assess_run_predictions(cfg, dataset, predictions, run.path, problem)
        if (clinical.get("calibration") or {}).get("warning"):
            run.log(f"warning: {clinical['calibration']['warning']}")
        metrics.update(clinical)
        if importances:
            metrics["explanations"] = write_explanations(cfg, dataset, final_model,
                                                         importances, run.path)
        metrics["seconds"] = round(time.perf_counter() - started, 3)
        model_dir = run.file("model")
        save_sklearn_model(final_model, model_dir)
        # card and schema go through the manifest too: editing either changes predictions;
        # the schema keeps the categories and ranges of the rows the shipped model saw
        fitted_rows = dataset.X if cfg.split.method == "kfold" else dataset.X.iloc[folds[0][0]]
        write_model_json(model_dir, "card.json", model_card(cfg, dataset, final_threshold,
                                                            problem))
        write_model_json(model_dir, "schema.json", dataset.schema.with_training_stats(
            fitted_rows).model_dump(mode="json"))
        predictions.to_csv(run.file("predictions.csv"), index=False)
        run.write_json("metrics.json", metrics)
        write_reports(run.path, cfg, dataset.provenance, tabular_data_lines(dataset), metrics)
        run.log("metrics: " + ", ".join(f"{m}={v:.4f}" for m, v in metrics["metrics"].items()
                                         if isinstance(v, float)))
    return RunResult(path=run.path, metrics=metrics)


@dataclass
class FoldOutcome:
    """One fold's fitted model, scores, threshold and metrics."""

    model: Any
    score: np.ndarray
    baseline_score: np.ndarray
    threshold: float
    metrics: dict[str, float]
    importance: pd.DataFrame | None = None


def inner_oof_scores(cfg: Any, dataset: LoadedDataset, train_idx: np.ndarray,
                     problem: ProblemType | None = None) -> np.ndarray:
    """Honest scores for the training part only (inner 3-fold CV), to choose a threshold on
    without looking at the fold's test rows."""
    from sklearn.model_selection import cross_val_predict

    y = dataset.y.to_numpy()[train_idx]
    groups = dataset.groups.to_numpy()[train_idx] if dataset.groups is not None else None
    inner = make_folds(y, method="kfold", n_splits=3, test_size=0.2, seed=cfg.seed + 1,
                       classify=True, stratify=True, groups=groups)
    return cross_val_predict(build_estimator(cfg, dataset, problem), dataset.X.iloc[train_idx],
                             y, cv=inner, method="predict_proba")[:, 1]


def fit_fold(cfg: Any, dataset: LoadedDataset, train_idx: np.ndarray, test_idx: np.ndarray,
             run: RunDir, problem: ProblemType | None = None) -> FoldOutcome:
    """Fit on the training rows; threshold from training rows only; score the test rows."""
    problem = problem or problem_of(cfg.task, dataset)
    k = len(dataset_classes(dataset))
    y = dataset.y.to_numpy()
    X_train, X_test = dataset.X.iloc[train_idx], dataset.X.iloc[test_idx]
    model = _fit_quietly(build_estimator(cfg, dataset, problem), X_train, y[train_idx], run)
    score = problem.scores(model, X_test, k)
    baseline = problem.baseline_estimator().fit(X_train, y[train_idx])
    threshold = cfg.evaluation.threshold
    if problem.uses_threshold and cfg.evaluation.threshold_method != "fixed":
        threshold = pick_threshold(cfg, y[train_idx],
                                   inner_oof_scores(cfg, dataset, train_idx, problem))
    importance = None
    if cfg.evaluation.explain == "permutation":
        from medml_cli.evaluation.importance import permutation_importance_table

        # AUROC-based scorers need every class among the fold's test rows
        if not problem.classifies or len(np.unique(y[test_idx])) == max(k, 2):
            importance = permutation_importance_table(
                model, X_test, y[test_idx], scoring=problem.importance_scoring,
                n_repeats=cfg.evaluation.importance_repeats, seed=cfg.seed)
    return FoldOutcome(
        model=model, score=score, baseline_score=problem.scores(baseline, X_test, k),
        threshold=float(threshold),
        metrics=problem.metrics(y[test_idx], score, threshold),
        importance=importance,
    )


def check_subgroups(cfg: Any, dataset: LoadedDataset) -> None:
    """Raise a DataError when evaluation.subgroups names a column the data lack."""
    available = set(dataset.X.columns) | set(
        dataset.meta.columns if dataset.meta is not None else []) | (
        {"age_band"} if "age" in dataset.X.columns else set())
    unknown = [s for s in cfg.evaluation.subgroups if s not in available]
    if unknown:
        from medml_cli.registry import did_you_mean

        raise DataError(
            f"evaluation.subgroups names {', '.join(unknown)}, which the data do not have"
            f"{did_you_mean(unknown[0], sorted(available))} "
            f"(available: {', '.join(sorted(available))}).",
            "name feature columns, `site` for the heart data, or `age_band` (from `age`).",
        )


def subgroup_frame(dataset: LoadedDataset, ids: pd.Series) -> pd.DataFrame:
    """Feature and meta columns for the rows of ``ids`` (in that order)."""
    frame = dataset.X.copy()
    if dataset.meta is not None:
        frame = frame.join(dataset.meta)
    frame.index = dataset.ids.to_numpy()
    return frame.loc[ids.astype(str).to_numpy()].reset_index(drop=True)


def assess_run_predictions(cfg: Any, dataset: LoadedDataset, predictions: pd.DataFrame,
                           out_dir: Path, problem: ProblemType | None = None) -> dict[str, Any]:
    """Intervals, calibration, subgroups and plots for the pooled held-out predictions."""
    problem = problem or problem_of(cfg.task, dataset)
    classes = dataset_classes(dataset)
    threshold = predictions["threshold"].to_numpy() if "threshold" in predictions else \
        cfg.evaluation.threshold
    groups = predictions[dataset.schema.group_column].to_numpy() \
        if dataset.schema.group_column else None
    return problem.assess(
        predictions["truth"].to_numpy(), problem.read_scores(predictions, classes),
        threshold=threshold, ev=cfg.evaluation, seed=cfg.seed, classes=classes, groups=groups,
        subgroup_frame=subgroup_frame(dataset, predictions["id"])
        if cfg.evaluation.subgroups else None, out_dir=out_dir,
        synthetic=dataset.provenance.synthetic,
    )


def write_explanations(cfg: Any, dataset: LoadedDataset, final_model: Any,
                       importances: list[pd.DataFrame], out_dir: Path) -> dict[str, Any]:
    """Permutation importance over the held-out folds, and partial dependence of the top
    features for the shipped model."""
    from medml_cli.evaluation.plots import plot_partial_dependence, plot_permutation_importance

    stacked = pd.concat(importances)
    table = (stacked.groupby("feature")["importance_mean"].agg(["mean", "std"])
             .rename(columns={"mean": "importance_mean", "std": "importance_std_across_folds"})
             .sort_values("importance_mean", ascending=False).reset_index())
    table.to_csv(out_dir / "importance.csv", index=False)
    synthetic = dataset.provenance.synthetic
    plot_permutation_importance(table["feature"], table["importance_mean"],
                                table["importance_std_across_folds"].fillna(0.0),
                                out_dir / "plots" / "permutation_importance.png",
                                synthetic=synthetic)
    numeric = set(dataset.schema.names_of("numeric"))
    top = [f for f in table["feature"] if f in numeric][:3]
    if top:
        classes = dataset_classes(dataset)
        # multi-class: the probability of the last class (the highest grade, for ordered ones)
        target = len(classes) - 1 if len(classes) > 2 else None
        plot_partial_dependence(final_model, dataset.X, top,
                                out_dir / "plots" / "partial_dependence.png",
                                synthetic=synthetic, target=target,
                                target_label=classes[-1] if target is not None else "")
    return {"method": "permutation importance on held-out folds "
                      f"({cfg.evaluation.importance_repeats} repeats per fold)",
            "importance": table.to_dict(orient="records"), "partial_dependence": top}


def _run_image_experiment(cfg: Any, dataset: Any, *, runs_dir: Path, name: str | None,
                          config_path: Path | None, overrides: list[str] | None,
                          progress: ProgressFn | None, resume: Path | None) -> RunResult:
    from medml_cli.workflows.train_image import (
        check_model_fits_data,
        image_split,
        run_image_training,
    )

    check_model_fits_data(cfg, dataset)
    image_split(dataset, cfg)  # split problems are usage errors: raise before a run exists
    environment = capture_environment(dataset.provenance.files, config_path)
    with create_run_dir(runs_dir, name or cfg.run_name, config_to_yaml(cfg),
                        existing=resume) as run:
        if resume is None:
            run.write_json("environment.json", environment)
            if overrides:
                run.write_text("overrides.txt", "\n".join(overrides) + "\n")
        run.log(f"task {cfg.task}; data {cfg.data.type}: {dataset.n_samples} images of shape "
                f"{dataset.input_shape}; model {cfg.model.type}; seed {cfg.seed}")
        if dataset.provenance.synthetic:
            run.log("NOTE: these data are SYNTHETIC (generated, not patients)")
        for note in getattr(dataset, "notes", []):  # allowed modalities, converted images
            run.log(f"data note: {note}")
        metrics = run_image_training(cfg, dataset, run, progress=progress,
                                     resume=resume is not None)
        run.write_json("metrics.json", metrics)
        write_reports(run.path, cfg, dataset.provenance, image_data_lines(dataset), metrics)
    return RunResult(path=run.path, metrics=metrics)


def _prediction_frame(dataset: LoadedDataset, idx: np.ndarray, score: np.ndarray,
                      base_score: np.ndarray, fold: int, problem: ProblemType,
                      threshold: float) -> pd.DataFrame:
    """Held-out rows of one fold: id, group, truth, score(s), decision, baseline, fold."""
    groups = None
    if dataset.groups is not None:
        groups = (dataset.schema.group_column or "group", dataset.groups.iloc[idx].to_numpy())
    return prediction_table(
        problem, ids=dataset.ids.iloc[idx].to_numpy(), truth=dataset.y.iloc[idx].to_numpy(),
        scores=score, classes=dataset_classes(dataset), threshold=threshold,
        baseline=base_score, fold=fold, groups=groups, threshold_column=True,
        meta=dataset.meta.iloc[idx] if dataset.meta is not None else None)


def summarise(cfg: Any, dataset: LoadedDataset, predictions: pd.DataFrame,
              fold_rows: list[dict[str, Any]],
              problem: ProblemType | None = None) -> dict[str, Any]:
    """metrics.json: pooled held-out metrics, the baseline beside them, and per-fold spread."""
    problem = problem or problem_of(cfg.task, dataset)
    classes = dataset_classes(dataset)
    truth = predictions["truth"].to_numpy()
    groups = predictions[dataset.schema.group_column].to_numpy() \
        if dataset.schema.group_column else None
    # each row is classified at its own fold's threshold (chosen on that fold's training rows)
    threshold = predictions["threshold"].to_numpy() if "threshold" in predictions else \
        cfg.evaluation.threshold
    pooled = problem.metrics(truth, problem.read_scores(predictions, classes), threshold)
    baseline = problem.metrics(truth, problem.read_scores(predictions, classes, "baseline_"),
                               threshold)
    per_metric = {m: [row[m] for row in fold_rows] for m in pooled}
    fold_summary = {
        m: {"mean": float(np.nanmean(v)), "sd": float(np.nanstd(v, ddof=1)) if len(v) > 1
            else None}
        for m, v in per_metric.items()
    } if len(fold_rows) > 1 else {}
    return {
        **record_head(cfg, problem, synthetic=dataset.provenance.synthetic),
        "split": {"method": cfg.split.method, "folds": len(fold_rows)},
        "threshold": cfg.evaluation.threshold if problem.uses_threshold else None,
        "metrics": pooled,
        "baseline": baseline if cfg.evaluation.baseline else {},
        "intervals": {},
        "n": problem.sample_counts(truth, groups, classes),
        "per_fold": fold_rows,
        "fold_summary": fold_summary,
        "primary_metric": problem.primary_metric,
    }


def model_card(cfg: Any, dataset: LoadedDataset, threshold: float,
               problem: ProblemType | None = None) -> dict[str, Any]:
    """What predict needs to use the model correctly, beside the model file."""
    problem = problem or problem_of(cfg.task, dataset)
    return {
        **card_fields(cfg, problem, model_format="skops", input_kind="tabular",
                      threshold=threshold, synthetic=dataset.provenance.synthetic),
        "classes": dataset.schema.classes,
        "features": dataset.schema.feature_names,
        "target": dataset.schema.target,
        "id_column": dataset.schema.id_column,
        "trained_on_rows": dataset.n_samples,
    }
