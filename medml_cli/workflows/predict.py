"""``medml predict``: score new rows (or images) with a trained run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medml_cli.data.base import prepare_features
from medml_cli.data.formats.table import read_table, reading_options, table_format
from medml_cli.models.imputation import missing_features
from medml_cli.problems import problem_of_card
from medml_cli.runs.artifacts import integrity_warnings, load_sklearn_model, verify_file
from medml_cli.runs.directory import open_completed_run
from medml_cli.runs.onnx_bundle import REEXPORT_FIX, OnnxModel, is_onnx_bundle, open_bundle
from medml_cli.runs.records import read_card
from medml_cli.schemas import FeatureSchema
from medml_cli.workflows.heldout import prediction_output
from medml_cli.workflows.run_model import (
    align_category_spelling,
    load_card,
    load_feature_schema,
    load_run_config,
    load_schema,
    row_warning_summary,
    row_warnings,
)


@dataclass
class PredictionResult:
    """What predict returns: the prediction table and warnings."""

    frame: pd.DataFrame
    warnings: list[str]


def predict_with_run(run_path: Path, input_path: Path,
                     allow_modalities: list[str] | tuple[str, ...] = ()) -> PredictionResult:
    """Predict for every row of a CSV/Parquet file with a completed run's model, or with an
    ONNX bundle exported from one (``medml export``): same checks, same output columns.

    ``allow_modalities``: DICOM modalities besides CT an image model trained on CT accepts.
    """
    if is_onnx_bundle(Path(run_path)):
        return _predict_with_bundle(Path(run_path), Path(input_path), allow_modalities)
    run_path = open_completed_run(Path(run_path))
    card = load_card(run_path)
    warnings: list[str] = integrity_warnings(run_path / "model")
    if card.get("format") == "keras":
        from medml_cli.runs.artifacts import load_keras_estimator

        return _predict_images(Path(input_path), card, allow_modalities,
                               lambda: load_keras_estimator(run_path / "model"), warnings)
    return _predict_table(Path(input_path), load_schema(run_path),
                          load_run_config(run_path).data, card,
                          lambda: load_sklearn_model(run_path / "model"), warnings)


def _predict_with_bundle(bundle: Path, input_path: Path,
                         allow_modalities: list[str] | tuple[str, ...]) -> PredictionResult:
    """Score with ONNX Runtime: the bundle's files are checked against its manifest first."""
    model = open_bundle(bundle)
    card = read_card(bundle).as_dict()
    note = [f"scored with the ONNX bundle {bundle} (ONNX Runtime), exported from run "
            f"{model.signature.get('run', {}).get('name', '?')}"]
    if model.signature["kind"] == "image":
        return _predict_images(input_path, card, allow_modalities, lambda: model, note)
    schema = load_feature_schema(verify_file(bundle, "schema.json"), fix=REEXPORT_FIX)
    return _predict_table(input_path, schema, load_run_config(bundle).data, card,
                          lambda: model, note)


def _predict_table(input_path: Path, schema: FeatureSchema, data: Any, card: dict[str, Any],
                   load_model: Callable[[], Any], warnings: list[str]) -> PredictionResult:
    frame = read_table(input_path, table_format(input_path),
                       **reading_options(input_path, data),
                       categorical=schema.names_of("categorical"),
                       text_columns=(schema.id_column, schema.group_column),
                       na_values=getattr(data, "na_values", ()),
                       role="--input")
    warnings = list(warnings)
    known = set(schema.feature_names) | {schema.target, schema.event_column, schema.id_column,
                                         schema.group_column}
    unexpected = [c for c in frame.columns if c not in known]
    if unexpected:
        warnings.append(
            f"ignored {len(unexpected)} column(s) the model was not trained on: "
            f"{', '.join(unexpected[:20])}{' ...' if len(unexpected) > 20 else ''}"
        )
    X = align_category_spelling(prepare_features(frame, schema, str(input_path),
                                                 context="input"), schema)
    model = load_model()
    problem = problem_of_card(card)
    classes = list(card.get("classes") or schema.classes or [])
    score = problem.scores(model, X, len(classes))
    imputed = model.signature.get("imputed") if isinstance(model, OnnxModel) else None
    warnings += [m.message() for m in missing_features(X, model, imputed=imputed)]
    if schema.id_column and schema.id_column in frame.columns:
        ids = frame[schema.id_column].astype(str).to_numpy()
    else:
        ids = np.arange(1, len(frame) + 1)
        if schema.id_column:
            warnings.append(f"no '{schema.id_column}' column in the input; rows are numbered "
                            "from 1 instead")
    flags = row_warnings(X, schema)
    out = prediction_output(problem, ids, score, card.get("threshold"), classes,
                            flags.to_numpy())
    warnings += row_warning_summary(flags, schema)
    return PredictionResult(frame=out, warnings=warnings)


def _predict_images(input_path: Path, card: dict[str, Any],
                    allow_modalities: list[str] | tuple[str, ...],
                    load_model: Callable[[], Any], warnings: list[str]) -> PredictionResult:
    from medml_cli.workflows.predict_image import image_warnings, read_prediction_inputs

    inputs = read_prediction_inputs(input_path, card, allow_modalities)
    images, ids = inputs.images, inputs.ids
    flags = ["; ".join(f for f in pair if f) for pair in zip(  # refuses NaN/inf pixels
        image_warnings(images, ids, str(input_path)), inputs.flags, strict=True)]
    model = load_model()
    problem = problem_of_card(card)
    classes = list(card.get("classes") or ["negative", "positive"])
    score = problem.scores(model, images, len(classes))
    warnings = list(warnings) + inputs.warnings
    if card.get("synthetic_data"):
        warnings.append("this model was trained on SYNTHETIC data (the lung phantom); its "
                        "predictions say nothing about real patients")
    frame = prediction_output(problem, ids, score, card.get("threshold"), classes, flags)
    warnings += row_warning_summary(frame["warnings"])
    return PredictionResult(frame=frame, warnings=warnings)
