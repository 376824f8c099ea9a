"""The tabular data kind of ``medml train``: k-fold or holdout over rows (grouped by patient
when asked), a scikit-learn pipeline per fold with thresholds chosen on training rows only,
the shipped model refit on every row, permutation importance, skops-saved model and schema."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medml_cli.data.base import LoadedDataset, check_not_all_missing
from medml_cli.errors import DataError, MedmlUsageError
from medml_cli.evaluation.report import tabular_data_lines
from medml_cli.evaluation.splits import leave_group_out_splits, make_folds
from medml_cli.problems import ProblemType, dataset_classes, problem_of
from medml_cli.registry import MODELS
from medml_cli.runs.artifacts import save_sklearn_model, write_model_json
from medml_cli.runs.directory import RunDir
from medml_cli.runs.records import write_card
from medml_cli.workflows.heldout import card_fields, prediction_table, record_head
from medml_cli.workflows.kind import HeldOut, ProgressFn, TrainingKind
from medml_cli.workflows.threshold import pick_threshold


def data_source_name(cfg: Any) -> str:
    """What error messages call the config's data: its file, or the source's name."""
    path = getattr(cfg.data, "path", None)
    return str(path) if path else cfg.data.type


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


def split_rows(cfg: Any, dataset: LoadedDataset,
               problem: ProblemType) -> list[tuple[np.ndarray, np.ndarray]]:
    """The config's folds (train, test row indices) over the dataset's rows, stratified on
    the problem type's split labels (classes; survival: the event) and grouped by patient."""
    labels, stratifiable = problem.split_labels(dataset.y.to_numpy())
    groups = dataset.groups.to_numpy() if dataset.groups is not None else None
    if cfg.split.method == "leave-group-out":
        by = split_groups(cfg, dataset)
        check_patients_within_groups(by, groups, cfg.split.by, dataset.schema.group_column)
        return leave_group_out_splits(by, y=labels, classify=problem.classifies,
                                      column=cfg.split.by)[0]
    return make_folds(labels, method=cfg.split.method, n_splits=cfg.split.n_splits,
                      test_size=cfg.split.test_size, seed=cfg.seed, classify=stratifiable,
                      stratify=cfg.split.stratify, groups=groups)


def split_groups(cfg: Any, dataset: LoadedDataset) -> np.ndarray:
    """The value of ``split.by`` for every row (leave-group-out); DataError naming the
    available columns when the data lack it."""
    values = dataset.column_values(cfg.split.by)
    if values is None:
        from medml_cli.registry import did_you_mean

        available = sorted([*dataset.X.columns, *(dataset.meta.columns
                                                   if dataset.meta is not None else [])])
        raise DataError(
            f"split.by names '{cfg.split.by}', which the data do not have"
            f"{did_you_mean(cfg.split.by, available)} (available: {', '.join(available)}).",
            "name the column holding each row's hospital or group (`site` for the UCI data); "
            "if it is listed under `data.exclude`, take it out: medml keeps it out of the "
            "features itself.", source=data_source_name(cfg))
    return values.to_numpy()


def check_patients_within_groups(by: np.ndarray, patients: np.ndarray | None, by_name: str,
                                 patient_column: str | None) -> None:
    """A patient whose rows sit in two groups would be on both sides of a fold."""
    if patients is None:
        return
    spread = pd.DataFrame({"patient": patients, "group": by}).groupby("patient")[
        "group"].nunique()
    crossing = spread[spread > 1]
    if len(crossing):
        raise DataError(
            f"{len(crossing)} patient(s) (`{patient_column}`), e.g. {crossing.index[0]!r}, "
            f"have rows in more than one `{by_name}` group, so they would be both trained on "
            "and tested on.",
            f"check the patient ids and `{by_name}`; each patient belongs to one group.")


def _fit_quietly(estimator: Any, X: pd.DataFrame, y: Any, run: RunDir) -> Any:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator.fit(X, y)
    for warning in {str(w.message) for w in caught}:
        run.log(f"warning during fit: {warning}")
    return estimator


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
    y_fit = problem.fit_target(y[train_idx])
    model = _fit_quietly(build_estimator(cfg, dataset, problem), X_train, y_fit, run)
    score = problem.scores(model, X_test, k)
    baseline = problem.baseline_estimator().fit(X_train, y_fit)
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
                model, X_test, problem.fit_target(y[test_idx]),
                scoring=problem.importance_scoring,
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


def write_explanations(cfg: Any, dataset: LoadedDataset, final_model: Any,
                       importances: list[pd.DataFrame], out_dir: Path,
                       problem: ProblemType | None = None) -> dict[str, Any]:
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
    if problem is not None and not problem.partial_dependence:
        top = []
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
    truth = problem.read_truth(predictions)
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
        "split": {"method": cfg.split.method, "folds": len(fold_rows),
                  **({"by": cfg.split.by} if cfg.split.by else {})},
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


def _step_progress(progress: ProgressFn | None, step: int,
                   total: int) -> Callable[[str], None] | None:
    """A tuner's progress: its trials shown as the label of the fold being tuned."""
    if progress is None:
        return None
    return lambda label: progress(step, total, label)


class TabularTraining(TrainingKind):
    """Rows of a table: folds over rows (or patients), one scikit-learn pipeline per fold."""

    def plan(self, cfg: Any, dataset: LoadedDataset, problem: ProblemType, *,
             resume: bool) -> list[tuple[np.ndarray, np.ndarray]]:
        """The folds (train, test row indices); data problems raise before a run exists."""
        if resume and cfg.tune is None:
            raise MedmlUsageError(
                f"--resume applies to image (CNN) runs, which checkpoint every epoch, and to "
                f"tuned runs (`tune:`); {cfg.task} runs take seconds, so train again instead.")
        check_not_all_missing(dataset.X, data_source_name(cfg))
        check_subgroups(cfg, dataset)
        if cfg.tune is not None:  # a metric these data's problem type lacks: before a run
            from medml_cli.workflows.tuning import tune_metric

            tune_metric(cfg, problem)
        return split_rows(cfg, dataset, problem)

    def describe(self, cfg: Any, dataset: LoadedDataset, problem: ProblemType,
                 plan: Any) -> str:
        """Task, rows, features, model, split and seed."""
        tuned = ""
        if cfg.tune is not None:
            tuned = (f" tuned by nested CV ({cfg.tune.sampler}, {cfg.tune.inner_splits} "
                     f"inner folds, {', '.join(cfg.tune.parameters)})")
        return (f"task {cfg.task} ({problem.name}); data {cfg.data.type}: "
                f"{dataset.n_samples} rows, {len(dataset.schema.columns)} features; model "
                f"{cfg.model.type}{tuned}; split {cfg.split.method} ({len(plan)} fold(s)); "
                f"seed {cfg.seed}")

    def fit(self, cfg: Any, dataset: LoadedDataset, problem: ProblemType, plan: Any,
            run: RunDir, *, progress: ProgressFn | None, resume: bool) -> HeldOut:
        """Every fold's model on its training rows, scored on its test rows; then the
        shipped model (k-fold: refit on every row) and its threshold."""
        folds = plan
        y = dataset.y.to_numpy()
        frames, fold_rows, importances = [], [], []
        refit = cfg.split.method != "holdout"  # k-fold, leave-group-out: refit on all rows
        total = len(folds) + (1 if refit else 0)
        by = split_groups(cfg, dataset) if cfg.split.method == "leave-group-out" else None
        final_model, final_threshold, final_cfg = None, cfg.evaluation.threshold, cfg
        tuner = None
        if cfg.tune is not None:
            from medml_cli.workflows.tuning import Tuner

            tuner = Tuner(cfg, dataset, problem, run.file("tune"), run.log, build_estimator)
        for k, (train_idx, test_idx) in enumerate(folds):
            if progress:
                progress(k, total, f"fold {k + 1}/{len(folds)}")
            fold_cfg = cfg
            if tuner is not None:  # the study sees this fold's training rows only
                tuner.progress = _step_progress(progress, k, total)
                fold_cfg, study = tuner.study(f"outer-fold-{k}", train_idx)
            outcome = fit_fold(fold_cfg, dataset, train_idx, test_idx, run, problem)
            if tuner is not None:
                tuner.record_outer(k, study, outcome.metrics)
            held_out = {"group": by[test_idx[0]]} if by is not None else {}
            fold_rows.append({"fold": k, **held_out,
                              "n_train": len(train_idx), "n_test": len(test_idx),
                              "threshold": outcome.threshold, **outcome.metrics})
            run.log(f"fold {k + 1}"
                    + (f" ({cfg.split.by} {held_out['group']} held out)" if held_out
                       else "") + ": "
                    + (f"threshold {outcome.threshold:.4f}; " if problem.uses_threshold else "")
                    + ", ".join(f"{m}={v:.4f}" for m, v in outcome.metrics.items()))
            frames.append(_prediction_frame(dataset, test_idx, outcome.score,
                                            outcome.baseline_score, k, problem,
                                            outcome.threshold))
            if outcome.importance is not None:
                importances.append(outcome.importance)
            if cfg.split.method == "holdout":
                final_model, final_threshold = outcome.model, outcome.threshold
                final_cfg = fold_cfg
                if tuner is not None:
                    tuner.final = study

        predictions = pd.concat(frames, ignore_index=True)
        if final_model is None:  # k-fold: the shipped model is refit on every row
            if progress:
                progress(len(folds), total, "final fit on all rows")
            if tuner is not None:  # tuned the same way, on every row
                tuner.progress = _step_progress(progress, len(folds), total)
                final_cfg, tuner.final = tuner.study("all-rows", np.arange(len(y)))
            final_model = _fit_quietly(build_estimator(final_cfg, dataset, problem), dataset.X,
                                       problem.fit_target(y), run)
            if problem.uses_threshold and cfg.evaluation.threshold_method != "fixed":
                # the shipped model's threshold comes from the out-of-fold predictions: held
                # out from every fold model, and training data for the refit model
                final_threshold = pick_threshold(
                    cfg, predictions["truth"].to_numpy(), predictions["score"].to_numpy())
        if progress:
            progress(total, total, "evaluating and saving")
        summary = summarise(cfg, dataset, predictions, fold_rows, problem)
        summary["threshold"] = final_threshold if problem.uses_threshold else None
        summary["threshold_method"] = cfg.evaluation.threshold_method \
            if problem.uses_threshold else None
        if tuner is not None:
            summary["model"] = final_cfg.model.type  # the tuned choice
            summary["tuning"] = tuner.summary()
        group_column = dataset.schema.group_column
        return HeldOut(
            predictions=predictions, truth=problem.read_truth(predictions),
            scores=problem.read_scores(predictions, dataset_classes(dataset)),
            # each row at its own fold's threshold (chosen on that fold's training rows)
            threshold=predictions["threshold"].to_numpy() if "threshold" in predictions
            else cfg.evaluation.threshold,
            summary=summary,
            groups=predictions[group_column].to_numpy() if group_column else None,
            subgroup_frame=subgroup_frame(dataset, predictions["id"])
            if cfg.evaluation.subgroups else None,
            state={"model": final_model, "threshold": final_threshold, "folds": folds,
                   "importances": importances, "cfg": final_cfg})

    def finish(self, cfg: Any, dataset: LoadedDataset, problem: ProblemType, held: HeldOut,
               run: RunDir, metrics: dict[str, Any]) -> None:
        """Explanations; the skops model, its card and its feature schema."""
        model, folds = held.state["model"], held.state["folds"]
        if held.state["importances"]:
            metrics["explanations"] = write_explanations(cfg, dataset, model,
                                                         held.state["importances"], run.path,
                                                         problem)
        model_dir = run.file("model")
        save_sklearn_model(model, model_dir)
        # card and schema go through the manifest too: editing either changes predictions;
        # the schema keeps the categories and ranges of the rows the shipped model saw
        fitted_rows = dataset.X if cfg.split.method != "holdout" \
            else dataset.X.iloc[folds[0][0]]
        card = model_card(held.state["cfg"], dataset, held.state["threshold"], problem)
        if metrics.get("tuning"):  # what the shipped model was tuned to (refit reuses it)
            card["tuned_parameters"] = metrics["tuning"]["final"]["params"]
        write_card(model_dir, card)
        write_model_json(model_dir, "schema.json", dataset.schema.with_training_stats(
            fitted_rows).model_dump(mode="json"))

    def data_lines(self, dataset: LoadedDataset) -> list[str]:
        """Target, rows, features and missing values."""
        return tabular_data_lines(dataset)
