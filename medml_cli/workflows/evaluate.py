"""``medml evaluate`` and ``medml predict``: use a completed run's model on data."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medml_cli.config.loader import read_config_file, validate_config_data
from medml_cli.config.overrides import apply_overrides
from medml_cli.csvio import write_csv
from medml_cli.data.base import LoadedDataset, check_known_labels, prepare_features
from medml_cli.data.formats.table import TABLE_SUFFIXES, read_table, reading_options, table_format
from medml_cli.errors import ConfigError, DataError, RunNotUsableError
from medml_cli.jsonio import RUN_FIX, read_run_json
from medml_cli.models.imputation import MissingFeature, missing_features
from medml_cli.problems import ProblemType, get_problem, problem_of_card
from medml_cli.runs.artifacts import integrity_warnings, load_sklearn_model
from medml_cli.runs.directory import _stamp, open_completed_run
from medml_cli.runs.records import write_metrics
from medml_cli.schemas import FeatureSchema
from medml_cli.workflows.heldout import prediction_table
from medml_cli.workflows.run_model import (
    align_category_spelling,
    load_card,
    load_run_config,
    load_schema,
    row_warning_summary,
    row_warnings,
)
from medml_cli.workflows.train import load_dataset
from medml_cli.workflows.train_tabular import split_rows

log = logging.getLogger("medml")


@dataclass
class EvaluationResult:
    """What evaluate returns: the output folder, its metrics, and notes."""

    path: Path
    metrics: dict[str, Any]
    #: how the evaluation was made (printed as notes)
    warnings: list[str] = field(default_factory=list)
    #: what makes its figures less trustworthy, e.g. features the scored data lack (printed
    #: as warnings even with --quiet; also in metrics.json `warnings` and the report)
    alerts: list[str] = field(default_factory=list)


def _external_data_config(run_cfg: Any, data_arg: Path, schema: FeatureSchema,
                          problem_name: str) -> Any:
    """The run's config with its data section replaced by what --data points at."""
    base = run_cfg.model_dump(mode="json")
    suffix = data_arg.suffix.lower()
    if suffix in {".yaml", ".yml"}:
        given, _ = read_config_file(data_arg)
        section = given.get("data", given)
        if not isinstance(section, dict) or "type" not in section:
            raise ConfigError(str(data_arg), [
                "expected a `data:` section (or a bare data mapping) with a `type:` key"])
        base["data"] = section
        base_dir = data_arg.resolve().parent
    elif suffix in TABLE_SUFFIXES:
        options = reading_options(data_arg, run_cfg.data)  # the training's separator etc.
        _require_target_column(data_arg, schema, options)
        outcome: dict[str, Any] = {"target": schema.target}
        if schema.event_column:  # survival: time and event columns
            outcome = {"time": schema.target, "event": schema.event_column,
                       "event_value": schema.event_value, "time_unit": schema.time_unit}
        section = {
            "type": table_format(data_arg),
            "path": str(data_arg.resolve()),
            **outcome,
            "features": schema.feature_names,
            "categorical": schema.names_of("categorical"),
            "id_column": schema.id_column,
        }
        section.update(options)
        if getattr(run_cfg.data, "na_values", None):  # the training's missing-value words
            section["na_values"] = list(run_cfg.data.na_values)
        problem = get_problem(problem_name)
        if problem.classifies and len(schema.classes) > 2:
            section["classes"] = list(schema.classes)  # the training's class codes
        elif problem.classifies and schema.positive_value:
            section["positive_class"] = schema.positive_value
        base["data"] = section
        # built-in presets keep their task; the file is read as a generic table
        base["task"] = problem.generic_task or (
            "tabular-classification" if problem.classifies else "tabular-regression")
        base_dir = None
    else:
        raise DataError(f"--data {data_arg}: expected a .yaml data config or a .csv/.parquet "
                        "file.", "pass a data config or a table with the training columns.")
    return validate_config_data(base, source=str(data_arg), base_dir=base_dir)


def _evaluation_config(run_cfg: Any, overrides: list[str], run_path: Path) -> Any:
    if not overrides:
        return run_cfg
    bad = [o for o in overrides if not o.split("=", 1)[0].startswith(("data.", "evaluation."))]
    if bad:
        raise ConfigError("--set", [f"'{b}': evaluate only accepts data.* and evaluation.* "
                                    "overrides (the model is already trained)" for b in bad])
    merged, applied = apply_overrides(run_cfg.model_dump(mode="json"), overrides)
    return validate_config_data(merged, source=str(run_path / "config.yaml"), overrides=applied)


def _require_target_column(path: Path, schema: FeatureSchema,
                           options: dict[str, Any] | None = None) -> None:
    """An evaluation table must carry the outcome; say which column, and how to make it."""
    columns = list(read_table(path, table_format(path), **(options or {}),
                              role="--data").columns)
    lacking = [c for c in (schema.target, schema.event_column) if c and c not in columns]
    if not lacking:
        return
    if schema.event_column:
        raise DataError(
            f"the evaluation table lacks the outcome column(s) {', '.join(lacking)} (follow-up "
            f"time '{schema.target}' and event '{schema.event_column}', as at training); it has "
            f"{', '.join(map(str, columns[:20]))}.",
            "add the follow-up time and event status of each patient, or use `medml predict` "
            "for data without outcomes.", source=str(path))
    hint = (" For the heart-disease data it is 1 when the UCI `num` column is above 0."
            if schema.target == "disease" else "")
    raise DataError(
        f"the evaluation table lacks the outcome column '{schema.target}' that the model was "
        f"trained to predict (it has {', '.join(map(str, columns[:20]))}).{hint}",
        f"add a '{schema.target}' column with the true outcomes, or use `medml predict` for "
        "data without outcomes.",
        source=str(path),
    )


def evaluate_run(
    run_path: Path,
    *,
    data: Path | None = None,
    overrides: list[str] | None = None,
    update: str | None = None,
) -> EvaluationResult:
    """Re-score a run on its own held-out data, or score its model on new data.

    Results (metrics.json with intervals, predictions.csv, plots, report.md/html, and for
    several sites a per-site table) go to a new folder
    ``<run>/evaluations/<stamp>-<heldout|external>-<id>/``; nothing in the run is overwritten.
    ``update`` (intercept | recalibrate | refit, with ``data``) also updates the model for
    the new data and saves it as a new run beside this one (:mod:`medml_cli.workflows.update`).
    """
    from medml_cli.workflows.update import check_update_request

    run_path = open_completed_run(Path(run_path))
    run_cfg = load_run_config(run_path)
    card = load_card(run_path)
    check_update_request(update, data, card)
    overrides = overrides or []
    cfg = _evaluation_config(run_cfg, overrides, run_path)
    if card.get("format") == "keras":
        return _evaluate_image_run(run_path, cfg, card, data, overrides)
    problem = card["problem"]
    ptype = problem_of_card(card)
    fixed = [o for o in overrides if o.split("=", 1)[0].strip() in ptype.training_settings]
    if fixed:
        raise ConfigError("--set", [
            f"'{o}': {o.split('=', 1)[0].strip()} is fixed when a {ptype.name} run is trained "
            "(the saved predictions and model card hold it); train again with this --set "
            "instead" for o in fixed])
    schema = load_schema(run_path)
    notes: list[str] = integrity_warnings(run_path / "model")
    # the run's own operating threshold, unless the user sets one for this evaluation
    new_threshold = any(o.startswith("evaluation.threshold") for o in overrides)
    threshold: Any = cfg.evaluation.threshold if new_threshold else card.get("threshold", 0.5)
    classes = list(schema.classes)

    if data is not None:
        data = Path(data)
        if not data.exists():
            raise DataError(f"--data {data}: file not found.", "check the path.")
        cfg = _external_data_config(cfg, data, schema, problem)
    external = data is not None or any(o.startswith("data.") for o in overrides)

    model = load_sklearn_model(run_path / "model")
    dataset = load_dataset(cfg)
    ptype.check_scored_data(dataset.y.to_numpy(), str(data or "the run's data"))
    # the saved pipeline handles missing values as at training, whatever the data config says
    dataset.schema = dataset.schema.model_copy(update={"missing": schema.missing})
    X = None
    missing: list[MissingFeature] = []
    alerts: list[str] = []
    if external and ptype.classifies:
        check_known_labels(dataset, schema, str(data or "data"))
    if external:
        X = align_category_spelling(
            prepare_features(dataset.X, schema, str(data or "data"), context="evaluation"),
            schema)
        score = ptype.scores(model, X, len(classes))
        missing = missing_features(X, model)
        alerts = [m.message() for m in missing]
        notes += row_warning_summary(row_warnings(X, schema), schema)
        predictions = _eval_frame(dataset, np.arange(dataset.n_samples), score, ptype,
                                  threshold, classes, fold=None)
        label = "external"
        trained_on = run_cfg.data.type + (f" {', '.join(run_cfg.data.sites)}"
                                          if hasattr(run_cfg.data, "sites") else "")
        notes.append(f"the run's model (trained on {trained_on}) scored on "
                     f"{dataset.n_samples} new rows")
    else:
        predictions = _heldout_predictions(run_path, cfg, dataset, model, ptype, threshold,
                                           classes, notes)
        if ptype.uses_threshold and not new_threshold and "threshold" in predictions:
            threshold = predictions["threshold"].to_numpy()  # per-fold, as at training
        label = "heldout"

    from medml_cli.evaluation.report import tabular_data_lines
    from medml_cli.workflows.train import subgroup_frame

    def site_blocks(out_tmp: Path, metrics: dict[str, Any]) -> None:
        """External validation by site (binary): the per-site table and missing policy."""
        from medml_cli.evaluation.clinical import site_table

        if external and ptype.uses_threshold and "site" in predictions and X is not None:
            sites = site_table(predictions, X, by="site", threshold=float(np.mean(threshold)),
                               ev=cfg.evaluation, seed=cfg.seed)
            sites.to_csv(out_tmp / "sites.csv", index=False)
            metrics["sites"] = sites.to_dict(orient="records")
            metrics["missing_policy"] = missing_policy_text(run_cfg)
        if external and X is not None:
            shift = shift_block(run_path, run_cfg, schema, X, dataset, ptype, notes)
            if shift is not None:
                pd.DataFrame(shift["features"]).to_csv(out_tmp / "site_shift.csv",
                                                       index=False)
                metrics["site_shift"] = shift

    extra: dict[str, Any] = {"missing_features": [m.as_json() for m in missing]}
    if update is not None and X is not None:
        from medml_cli.workflows.update import update_at_site

        site_update = update_at_site(
            update, run_path=run_path, run_cfg=run_cfg, cfg=cfg, card=card, schema=schema,
            problem=ptype, dataset=dataset, X=X, model=model, original=score,
            threshold=threshold, notes=notes)
        for column, values in site_update.columns.items():
            predictions[column] = values
        extra["update"] = site_update.block
    model_X = X if X is not None else dataset.X[schema.feature_names]
    scored = Scored(
        label=label, predictions=predictions, truth=ptype.read_truth(predictions),
        scores=ptype.read_scores(predictions, classes), threshold=threshold, classes=classes,
        groups=predictions[schema.group_column].to_numpy()
        if schema.group_column and schema.group_column in predictions else None,
        subgroup_frame=subgroup_frame(dataset, predictions["id"].astype(str))
        if cfg.evaluation.subgroups else None,
        provenance=dataset.provenance, notes=notes, alerts=alerts,
        data_lines=tabular_data_lines(dataset, model_X, external=external)
        + [f"**Warning:** {alert}." for alert in alerts],
        extra=extra, finish=site_blocks)
    return record_evaluation(run_path, run_cfg.task, cfg, card, ptype, scored)


@dataclass
class Scored:
    """One evaluation's scored rows and what its record says about them."""

    label: str  # heldout | external
    predictions: pd.DataFrame
    truth: np.ndarray
    scores: np.ndarray
    threshold: Any
    classes: list[str]
    groups: np.ndarray | None
    subgroup_frame: pd.DataFrame | None
    provenance: Any
    notes: list[str]
    alerts: list[str]
    data_lines: list[str]
    extra: dict[str, Any] = field(default_factory=dict)
    #: adds data-kind blocks (files under the folder, fields of metrics) before saving
    finish: Any = None


def record_evaluation(run_path: Path, task: str, cfg: Any, card: dict[str, Any],
                      problem: ProblemType, scored: Scored) -> EvaluationResult:
    """Assess scored rows through the problem type and write the evaluation folder
    (metrics.json, predictions.csv, plots, report), renamed into place only when complete."""
    out_tmp = _new_evaluation_tmp(run_path)
    try:
        threshold = scored.threshold
        metrics = {
            "task": task, "problem": problem.name, "run": run_path.name,
            "evaluation": scored.label, "data": cfg.data.model_dump(mode="json"),
            "synthetic": bool(card.get("synthetic_data")) or scored.provenance.synthetic,
            # the threshold predict uses: per-fold cut-offs have no meaningful mean to report
            "threshold": ((float(threshold) if np.ndim(threshold) == 0
                           else card.get("threshold")) if problem.uses_threshold else None),
            "threshold_method": card.get("threshold_method"),
            "metrics": problem.metrics(scored.truth, scored.scores, threshold),
            **problem.assess(scored.truth, scored.scores, threshold=threshold,
                             ev=cfg.evaluation, seed=cfg.seed, classes=scored.classes,
                             groups=scored.groups, subgroup_frame=scored.subgroup_frame,
                             out_dir=out_tmp, synthetic=scored.provenance.synthetic),
            "n": problem.sample_counts(scored.truth, scored.groups, scored.classes),
            "notes": scored.notes,
            "warnings": scored.alerts,
            **scored.extra,
        }
        if scored.finish is not None:
            scored.finish(out_tmp, metrics)
        out = _save_evaluation(run_path, out_tmp, scored.label, cfg, scored.provenance,
                               scored.data_lines, metrics, scored.predictions)
    except BaseException:
        shutil.rmtree(out_tmp, ignore_errors=True)
        raise
    return EvaluationResult(path=out, metrics=metrics, warnings=scored.notes,
                            alerts=scored.alerts)


def _outcome_rate(y: np.ndarray, problem: ProblemType) -> float | None:
    """The prevalence (binary) or event share (survival) of an outcome; None otherwise."""
    y = np.asarray(y, dtype=float)
    if problem.uses_threshold:
        return float(np.mean(y == 1))
    if y.ndim == 2:  # survival: time, event
        return float(np.mean(y[:, 1]))
    return None


def shift_block(run_path: Path, run_cfg: Any, schema: FeatureSchema, X: pd.DataFrame,
                dataset: LoadedDataset, problem: ProblemType,
                notes: list[str]) -> dict[str, Any] | None:
    """Site-shift diagnostics of external data against the run's development data, or None
    (with a note) when those data cannot be read as they were at training."""
    from medml_cli.errors import MedmlError
    from medml_cli.evaluation.site_shift import site_shift
    from medml_cli.evaluation.subgroups import natural_key

    try:
        development = load_dataset(run_cfg)
    except MedmlError as exc:
        notes.append(f"site-shift diagnostics skipped: the development data could not be "
                     f"read ({str(exc).splitlines()[0][:120]})")
        return None
    recorded = read_run_json(run_path / "environment.json", dict,
                             what="the run's environment and data checksums") \
        .get("data_sha256") or {}
    if recorded and recorded != development.provenance.files:
        notes.append("site-shift diagnostics skipped: the development data have changed "
                     "since training (sha256 differs)")
        return None
    from sklearn.linear_model import LogisticRegression

    from medml_cli.models.preprocessing import tabular_pipeline

    dev_X = prepare_features(development.X, schema, "development data", context="evaluation")
    membership = tabular_pipeline(schema.model_copy(update={"missing": "indicator"}),
                                  LogisticRegression(C=1.0, max_iter=2000))
    dev_rate = _outcome_rate(development.y.to_numpy(), problem)
    y = dataset.y.to_numpy()
    block = site_shift(dev_X, X, schema, seed=run_cfg.seed, membership_model=membership,
                       dev_rate=dev_rate, new_rate=_outcome_rate(y, problem))
    sites = dataset.column_values("site")
    if sites is not None and sites.nunique() > 1:
        # several new sites scored together: each one against the development data too,
        # as each hospital differs in its own way
        block["per_site"] = []
        for site in sorted(sites.unique(), key=natural_key):
            mask = (sites == site).to_numpy()
            one = site_shift(dev_X, X.loc[mask], schema, seed=run_cfg.seed,
                             membership_model=membership, dev_rate=dev_rate,
                             new_rate=_outcome_rate(y[mask], problem))
            block["per_site"].append({"site": site, **{k: v for k, v in one.items()
                                                       if k != "features"},
                                      "largest_smd": site_shift_summary(one["features"])})
    return block


def site_shift_summary(features: list[dict[str, Any]], top: int = 3) -> str:
    """The ``top`` features differing most (by |SMD|), as "restecg +1.07, ..."."""
    ranked = sorted((f for f in features if np.isfinite(f["smd"])),
                    key=lambda f: abs(f["smd"]), reverse=True)
    return ", ".join(f"{f['feature']} {f['smd']:+.2f}" for f in ranked[:top])


def missing_policy_text(run_cfg: Any) -> str:
    """The report sentence on how missing and excluded features are handled."""
    excluded = list(getattr(run_cfg.data, "exclude", []) or [])
    from medml_cli.evaluation.report import missing_handling_text

    policy = getattr(run_cfg.data, "missing", "impute")
    text = ("Missing-data policy: a feature missing at an external site is "
            f"{missing_handling_text(policy, external=True)}; no row is dropped.")
    if excluded:
        text += (f" Features excluded from the model by its config: {', '.join(excluded)} "
                 "(mostly missing outside the training site).")
    return text


def _heldout_predictions(run_path: Path, cfg: Any, dataset: LoadedDataset, model: Any,
                         problem: ProblemType, threshold: Any, classes: list[str],
                         notes: list[str]) -> pd.DataFrame:
    environment = read_run_json(run_path / "environment.json", dict,
                                what="the run's environment and data checksums")
    recorded = environment.get("data_sha256") or {}
    if not isinstance(recorded, dict):
        raise RunNotUsableError(
            f"{run_path / 'environment.json'} has an invalid `data_sha256` (expected a mapping "
            f"of file name to sha256); it was damaged or edited. Fix: {RUN_FIX}.")
    if recorded and recorded != dataset.provenance.files:
        raise DataError(
            "the run's data have changed since training (sha256 differs), so its held-out "
            "rows cannot be rebuilt.",
            "restore the original file, or score the new data with --data.",
        )
    if cfg.split.method == "holdout":
        test_idx = split_rows(cfg, dataset, problem)[0][1]
        score = problem.scores(model, dataset.X.iloc[test_idx], len(classes))
        notes.append("re-predicted the held-out test rows with the saved model")
        return _eval_frame(dataset, test_idx, score, problem, threshold, classes, fold=0)
    # k-fold: the saved model saw every row, so scoring it on them would be optimistic.
    # The honest held-out scores are the out-of-fold predictions made during training.
    notes.append("re-scored the out-of-fold predictions recorded at training (the final "
                 "model was refit on all rows)")
    return read_recorded_predictions(run_path / "predictions.csv", problem, classes)


def read_recorded_predictions(path: Path, problem: ProblemType,
                              classes: list[str]) -> pd.DataFrame:
    """predictions.csv of a run, checked for the columns evaluate re-scores (exit 2 naming
    the file when it is missing, unparsable or lacks them)."""
    what = (f"{path} (the out-of-fold predictions recorded at training, which evaluate "
            "re-scores for k-fold runs)")
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise RunNotUsableError(f"{what} is missing. Fix: {RUN_FIX}.") from None
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        detail = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
        raise RunNotUsableError(f"{what} cannot be parsed as CSV ({type(exc).__name__}: "
                                f"{detail}); it was damaged or edited. Fix: {RUN_FIX}.") from None
    score_columns = problem.score_column_names(classes)
    needed = ["id", *problem.truth_column_names(), *score_columns]
    lacking = [c for c in needed if c not in frame.columns]
    if lacking or frame.empty:
        found = ", ".join(map(str, frame.columns[:12]))
        problem_text = f"lacks the column(s) {', '.join(lacking)} (found: {found})" if lacking \
            else "has no rows"
        raise RunNotUsableError(f"{what} {problem_text}; it was damaged or edited. "
                                f"Fix: {RUN_FIX}.")
    numeric = [*score_columns, *problem.truth_column_names()] + (
        ["threshold"] if "threshold" in frame else [])
    for column in numeric:
        values = pd.to_numeric(frame[column], errors="coerce")
        if values.isna().any():
            row = int(np.flatnonzero(values.isna().to_numpy())[0]) + 2  # 1-based, after header
            raise RunNotUsableError(
                f"{what}: column '{column}' holds a missing or non-numeric value at line {row} "
                f"({frame[column].iloc[row - 2]!r}); it was damaged or edited. Fix: {RUN_FIX}.")
        frame[column] = values
    return frame


def _evaluate_image_run(run_path: Path, cfg: Any, card: dict[str, Any], data: Path | None,
                        overrides: list[str]) -> EvaluationResult:
    """Held-out test images re-predicted with the saved CNN, or a new image data config."""
    from medml_cli.runs.artifacts import load_keras_estimator
    from medml_cli.workflows.train_image import image_split

    notes: list[str] = integrity_warnings(run_path / "model")
    external = data is not None or any(o.startswith("data.") for o in overrides)
    if data is not None:
        data = Path(data)
        if data.suffix.lower() not in {".yaml", ".yml"} or not data.exists():
            raise DataError(f"--data {data}: image runs take a YAML data config (a `data:` "
                            "section, e.g. `data: {type: medmnist-npz, path: ...}`).",
                            "write one, or use `medml predict` for unlabelled inputs.")
        given, _ = read_config_file(data)
        merged = cfg.model_dump(mode="json")
        merged["data"] = given.get("data", given)
        cfg = validate_config_data(merged, source=str(data), base_dir=data.resolve().parent)
    dataset = load_dataset(cfg)
    model = load_keras_estimator(run_path / "model")
    if external:
        index = np.arange(dataset.n_samples)
        label = "external"
        notes.append(f"scored the saved model on all {dataset.n_samples} images of the new data")
    else:
        index = image_split(dataset, cfg)["test"]
        label = "heldout"
        notes.append("re-predicted the held-out test images with the saved model")
    problem = problem_of_card(card)
    classes = list(card.get("classes") or dataset.class_names)
    score = problem.scores(model, dataset.images[index], len(classes))
    new_threshold = any(o.startswith("evaluation.threshold") for o in overrides)
    threshold = (cfg.evaluation.threshold if new_threshold else card.get("threshold", 0.5)) \
        if problem.uses_threshold else None
    truth = dataset.labels[index]
    groups = dataset.groups[index] if dataset.groups is not None else None
    predictions = prediction_table(problem, ids=dataset.ids[index], truth=truth, scores=score,
                                   classes=classes, threshold=threshold,
                                   groups=("patient", groups) if groups is not None else None)
    from medml_cli.evaluation.report import image_data_lines

    return record_evaluation(run_path, cfg.task, cfg, card, problem, Scored(
        label=label, predictions=predictions, truth=truth, scores=score, threshold=threshold,
        classes=classes, groups=groups, subgroup_frame=None, provenance=dataset.provenance,
        notes=notes, alerts=[], data_lines=image_data_lines(dataset)))


def _eval_frame(dataset: LoadedDataset, idx: np.ndarray, score: np.ndarray,
                problem: ProblemType, threshold: float, classes: list[str],
                fold: int | None) -> pd.DataFrame:
    return prediction_table(
        problem, ids=dataset.ids.iloc[idx].to_numpy(), truth=dataset.y.iloc[idx].to_numpy(),
        scores=score, classes=classes, threshold=threshold, fold=fold,
        meta=dataset.meta.iloc[idx] if dataset.meta is not None else None)


def _new_evaluation_tmp(run_path: Path) -> Path:
    parent = run_path / "evaluations"
    parent.mkdir(exist_ok=True)
    tmp = parent / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    return tmp


def _save_evaluation(run_path: Path, tmp: Path, label: str, cfg: Any, provenance: Any,
                     data_lines: list[str], metrics: dict[str, Any],
                     predictions: pd.DataFrame) -> Path:
    """Write metrics, predictions and reports into ``tmp``, then rename it into place."""
    from medml_cli.evaluation.report import write_reports

    write_metrics(tmp / "metrics.json", metrics)
    write_csv(predictions, tmp / "predictions.csv")
    write_reports(tmp, cfg, provenance, data_lines, metrics,
                  title=f"medml evaluation ({label}) of run {run_path.name}")
    return _finish_evaluation(run_path, tmp, label)


def _finish_evaluation(run_path: Path, tmp: Path, label: str) -> Path:
    """Rename a fully written evaluation folder into place (never over an existing one)."""
    while True:
        final = run_path / "evaluations" / f"{_stamp()}-{label}-{uuid.uuid4().hex[:6]}"
        if not final.exists():
            os.rename(tmp, final)
            return final
