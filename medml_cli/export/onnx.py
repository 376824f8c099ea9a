"""``medml export RUN --format onnx``: a run's fitted model, preprocessing included, as one
ONNX graph, checked against medml's own predictions before the bundle is written.

scikit-learn pipelines (imputation, scaling, one-hot encoding and the estimator) convert
with skl2onnx, helped by :mod:`medml_cli.export.converters` (and, for survival models,
:mod:`medml_cli.export.survival`: risk score and survival curve); Keras CNNs with Keras 3's own
``model.export(format="onnx")`` (tf2onnx underneath), with the model's intensity window
(e.g. the HU lung window) added in front of the graph, so both take the raw inputs predict
takes. The parity check replays the run's data through ONNX Runtime and through the saved
model; a difference above the tolerance (1e-5 tabular, 1e-4 CNN), or a model that cannot
be converted, is an error naming the step and nothing is written. The bundle is built in a
temporary folder and renamed into place only once it has passed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medml_cli.errors import MedmlUsageError, RunNotUsableError
from medml_cli.jsonio import write_json
from medml_cli.runs.artifacts import MANIFEST
from medml_cli.runs.directory import open_completed_run
from medml_cli.runs.onnx_bundle import (
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    MISSING_CATEGORY,
    MODEL_FILE,
    SIGNATURE,
    OnnxModel,
    inference_session,
    write_manifest,
)

FORMATS = ("onnx",)
#: Largest absolute difference between ONNX Runtime and medml's own scores that passes.
TABULAR_TOLERANCE = 1e-5
IMAGE_TOLERANCE = 1e-4
#: ONNX operator sets written: 21 has string Equal (missing categories); tree models import
#: ai.onnx.ml 5 (the float64 TreeEnsemble; measured with ONNX Runtime 1.32).
OPSET = {"": 21, "ai.onnx.ml": 3}
#: Images replayed through both runtimes (the held-out test images, first ones first).
MAX_PARITY_IMAGES = 256
#: Extra rows for the tabular check: copies of the data's rows with one feature blanked
#: each, so the imputation paths are compared even when the data have few gaps.
PROBE_ROWS = 200
DEFAULT_OUTPUT = Path("exports") / "onnx"


class ExportError(MedmlUsageError):
    """The run's model cannot be exported (unsupported, or the parity check failed)."""


@dataclass
class ExportResult:
    """What an export returns: where the bundle is and what its parity check measured."""

    path: Path
    parity: dict[str, Any]
    notes: list[str]


def _check_format(fmt: str) -> str:
    if fmt.lower() not in FORMATS:
        raise MedmlUsageError(f"unknown export format '{fmt}'. Valid formats: "
                              f"{', '.join(FORMATS)} (e.g. `--format onnx`).")
    return fmt.lower()


def _check_output(output: Path, overwrite: bool) -> None:
    """Refuse, before any work, an output that exists (without --overwrite) or whose folder
    cannot be written."""
    if output.exists() and not output.is_dir():
        raise MedmlUsageError(f"--output {output} is a file; pass a folder for the bundle.")
    if output.exists() and any(output.iterdir()):
        if not (output / SIGNATURE).is_file() or not (output / MANIFEST).is_file():
            # --overwrite replaces a bundle, never a folder of other files (a run, say)
            raise MedmlUsageError(f"--output {output} already holds files that are not a "
                                  "medml export bundle; medml will not replace them. Pass a "
                                  "new or empty folder.")
        if not overwrite:
            raise MedmlUsageError(f"--output {output} already holds an exported bundle. Pass "
                                  "another folder, or --overwrite to replace that bundle.")
    existing = output.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        why = "is a file" if not existing.is_dir() else "is not writable"
        raise MedmlUsageError(f"cannot write the bundle to {output}: {existing} {why}. Pass "
                              "a writable folder with --output.")


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; returns those created, deepest first."""
    created = []
    while not folder.exists():
        created.append(folder)
        folder = folder.parent
    for path in reversed(created):
        try:
            path.mkdir()
        except OSError as exc:
            raise MedmlUsageError(f"cannot create {path} for the bundle "
                                  f"({exc.strerror or exc}). Pass a writable folder with "
                                  "--output.") from None
    return created


def export_run(run_path: Path, fmt: str = "onnx", output: Path | None = None, *,
               overwrite: bool = False) -> ExportResult:
    """Export a completed run's model as an ONNX bundle after a parity check.

    ``output`` defaults to ``RUN/exports/onnx``. Raises RunNotUsableError for a failed,
    incomplete or damaged run, ExportError for a model that cannot be converted or whose
    ONNX graph does not reproduce medml's predictions; nothing is written then.
    """
    from medml_cli.workflows.run_model import load_card, load_run_config

    _check_format(fmt)
    run_path = open_completed_run(Path(run_path))
    card = load_card(run_path)
    output = Path(output) if output is not None else run_path / DEFAULT_OUTPUT
    _check_output(output, overwrite)
    cfg = load_run_config(run_path)
    created = _make_parents(output.parent)
    tmp = output.parent / f".tmp-{output.name}-{uuid.uuid4().hex[:12]}"
    try:
        try:
            tmp.mkdir()
        except OSError as exc:
            raise MedmlUsageError(f"cannot write the bundle to {output} "
                                  f"({exc.strerror or exc}). Pass a writable folder with "
                                  "--output.") from None
        if card.get("format") == "keras":
            signature = _export_keras(run_path, cfg, card, tmp)
        else:
            signature = _export_sklearn(run_path, cfg, card, tmp)
        _copy_run_files(run_path, tmp, tabular=card.get("format") != "keras")
        signature["run"] = {"name": run_path.name, "path": str(run_path.resolve())}
        write_json(tmp / SIGNATURE, signature)
        names = sorted(p.name for p in tmp.iterdir() if p.is_file())
        write_manifest(tmp, names)
        _move_into_place(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for path in created:  # deepest first; only the folders this export made
            with contextlib.suppress(OSError):
                path.rmdir()
        raise
    notes = []
    if card.get("synthetic_data"):
        notes.append("this model was trained on SYNTHETIC data (the lung phantom); so is "
                     "the exported bundle")
    return ExportResult(path=output, parity=signature["parity"], notes=notes)


def _move_into_place(tmp: Path, output: Path) -> None:
    if output.exists():  # checked empty or --overwrite
        old = output.parent / f".old-{output.name}-{uuid.uuid4().hex[:12]}"
        os.rename(output, old)
        os.rename(tmp, output)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, output)


def _copy_run_files(run_path: Path, folder: Path, *, tabular: bool) -> None:
    """The model card (card.json, card.md if the run has one), the resolved config and, for
    tabular models, the feature schema, after checking them against the run's manifest."""
    from medml_cli.runs.artifacts import verify_file

    model = run_path / "model"
    names = ["card.json", *(["schema.json"] if tabular else [])]
    for name in names:
        shutil.copyfile(verify_file(model, name), folder / name)
    for extra in (model / "card.md", run_path / "card.md"):
        if extra.is_file():
            shutil.copyfile(extra, folder / "card.md")
            break
    shutil.copyfile(run_path / "config.yaml", folder / "config.yaml")


#: The oldest ONNX Runtime each kind of bundle was run on, outputs equal to the newest to
#: the bit (2026-12-03: 1.19.2, 1.20.0, 1.21.1, 1.22.0, 1.23.0 and 1.32.0 on eight shipped
#: tabular configs' bundles; 1.19.2, 1.20.0 and 1.21.1 on cnn2d and cnn3d bundles). 1.19
#: and 1.20 refuse the float64 trees: no ai.onnx.ml 5 ``TreeEnsemble``.
ORT_FOR_TREES = "1.21"
ORT_WITHOUT_TREES = "1.19"


def runtime_requirement(onx: Any) -> dict[str, str]:
    """The ONNX Runtime a bundle needs, and why, for the service that will run it."""
    from medml_cli.export.converters import has_tree_ensemble

    if has_tree_ensemble(onx):
        return {"onnxruntime": f">={ORT_FOR_TREES}",
                "why": "ai.onnx.ml 5 TreeEnsemble (float64 trees), first in ONNX Runtime "
                       f"{ORT_FOR_TREES}"}
    return {"onnxruntime": f">={ORT_WITHOUT_TREES}",
            "why": f"the oldest ONNX Runtime this kind of bundle was tested on "
                   f"({ORT_WITHOUT_TREES}); no tree operators"}


def graph_runtime(onx: Any) -> dict[str, Any]:
    """signature.json's ``opset`` (domain -> version the graph imports) and ``requires``."""
    return {"opset": {o.domain or "ai.onnx": o.version for o in onx.opset_import},
            "requires": runtime_requirement(onx)}


def _versions(*names: str) -> dict[str, str]:
    """The installed versions of ``names`` (absent ones left out), as runs record them."""
    from medml_cli.runs.environment import package_versions

    return {k: v for k, v in package_versions(names).items() if v is not None}


def _parity(expected: np.ndarray, got: np.ndarray, tolerance: float, rows: int,
            reference: str, step: str) -> dict[str, Any]:
    expected = np.asarray(expected, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64).reshape(expected.shape)
    finite = np.isfinite(expected) & np.isfinite(got)
    same_missing = np.array_equal(np.isfinite(expected), np.isfinite(got))
    diff = float(np.max(np.abs(expected[finite] - got[finite]))) if finite.any() else 0.0
    parity = {"max_abs_diff": diff, "rows": int(rows), "tolerance": tolerance,
              "reference": reference}
    if not same_missing or not diff <= tolerance:
        raise ExportError(
            f"parity check failed ({step}): on {rows} rows ONNX Runtime's scores differ from "
            f"medml's own by up to {diff:.3g} (tolerance {tolerance:g})"
            f"{'' if same_missing else ', and they disagree on which scores are missing'}. "
            "The ONNX graph would not be the same model, so no bundle was written. Report "
            "the model type; `medml predict` with the run itself is unaffected.")
    return parity


# ----------------------------------------------------------------------- scikit-learn
def _parity_rows(X: Any, schema: Any, seed: int) -> Any:
    """The rows themselves plus up to PROBE_ROWS copies with one feature blanked each."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    take = rng.choice(len(X), size=min(PROBE_ROWS, len(X)), replace=False)
    probes = X.iloc[take].copy().reset_index(drop=True)
    names = schema.feature_names
    for i in range(len(probes)):
        probes.iloc[i, probes.columns.get_loc(names[i % len(names)])] = np.nan
    return pd.concat([X.reset_index(drop=True), probes], ignore_index=True)


def _export_sklearn(run_path: Path, cfg: Any, card: dict[str, Any],
                    folder: Path) -> dict[str, Any]:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType
    from sklearn.base import is_classifier

    from medml_cli.data.base import prepare_features
    from medml_cli.export.converters import (
        export_copy,
        register_converters,
        unsupported_target_transformers,
        use_tree_ensemble_opset,
    )
    from medml_cli.models.imputation import imputed_values
    from medml_cli.problems import problem_of_card
    from medml_cli.runs.artifacts import load_sklearn_model
    from medml_cli.workflows.run_model import align_category_spelling, load_schema
    from medml_cli.workflows.train import load_dataset

    schema = load_schema(run_path)
    model = load_sklearn_model(run_path / "model")
    bad = unsupported_target_transformers(model)
    if bad:
        raise ExportError(f"converting the model to ONNX: its target transformer "
                          f"{', '.join(bad)} has no ONNX converter in medml (only a "
                          "standardised target is supported).")
    survival = card.get("problem") == "survival"
    if survival:
        from medml_cli.export.survival import (
            RISK_OUTPUT,
            SURVIVAL_OUTPUT,
            register_survival_converter,
            survival_head_copy,
            unsupported_survival_reason,
        )

        estimator = model.steps[-1][1] if hasattr(model, "steps") else model
        reason = unsupported_survival_reason(estimator)
        if reason:
            raise ExportError(
                f"run {run_path.name} is a survival model ({card.get('model')}) that cannot "
                f"be exported to ONNX: {reason}. Use `medml predict` with the run itself.")
        register_survival_converter()
    register_converters()
    initial = [(c.name, StringTensorType([None, 1]) if c.kind == "categorical"
                else DoubleTensorType([None, 1])) for c in schema.columns]
    classifier = is_classifier(model)
    try:
        with warnings.catch_warnings():  # skl2onnx reads attributes sklearn 1.9 deprecates
            warnings.simplefilter("ignore", FutureWarning)
            onx = convert_sklearn(survival_head_copy(model) if survival else export_copy(model),
                                  initial_types=initial,
                                  options={"zipmap": False} if classifier else None,
                                  target_opset=OPSET)
    except Exception as exc:  # noqa: BLE001 - skl2onnx raises many types for one reason
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise ExportError(
            f"converting the model to ONNX failed ({card.get('model')}, "
            f"{type(exc).__name__}: {first}). The model holds a step skl2onnx cannot "
            "convert, so no bundle was written; `medml predict` with the run itself "
            "still works.") from None
    use_tree_ensemble_opset(onx)
    onx.doc_string = f"medml {card.get('model')} ({card.get('task')}) from run {run_path.name}"
    (folder / MODEL_FILE).write_bytes(onx.SerializeToString())

    session = inference_session(folder / MODEL_FILE)
    outputs = [o.name for o in session.get_outputs()]
    score_output = outputs[1] if classifier else outputs[0]
    problem = problem_of_card(card)
    if survival:
        survival_block = {
            "risk_output": RISK_OUTPUT, "survival_output": SURVIVAL_OUTPUT,
            "times": [float(t) for t in estimator.unique_times_], "time_unit": problem.time_unit,
            "time_grid": problem.grid, "horizons": problem.horizons,
            "max_follow_up": problem.max_follow_up,
            "reading": (f"`{RISK_OUTPUT}` [n] is the risk score (higher = earlier event); "
                        f"`{SURVIVAL_OUTPUT}` [n, len(times)] is S(t | x) at `times`, a step "
                        "curve: 1 before the first time, S(times[j]) from times[j] until the "
                        "next one, the last value after the last. medml reads it at the "
                        "horizons (survival_at_<h>) and takes median_survival as the first "
                        "time of its fine grid where S <= 0.5"),
        }
        score_output = RISK_OUTPUT
    inputs = [{"name": c.name, "feature": c.name, "kind": c.kind,
               "type": "string" if c.kind == "categorical" else "double", "shape": [None, 1],
               **({"categories": schema.categories.get(c.name, [])}
                  if c.kind == "categorical" else {})}
              for c in schema.columns]
    classes = list(card.get("classes") or schema.classes or [])
    signature = {
        "format": BUNDLE_FORMAT, "format_version": BUNDLE_VERSION, "kind": "tabular",
        "model_file": MODEL_FILE, "task": card.get("task"), "problem": card["problem"],
        "model": card.get("model"), "inputs": inputs,
        "feeding": ("one [n, 1] tensor per feature column, named as `inputs` lists: numbers "
                    "as float64 (NaN when missing), categorical values as strings spelled "
                    f"as in schema.json's categories ({MISSING_CATEGORY!r} when missing)"),
        "missing": {"numeric": "NaN", "categorical": MISSING_CATEGORY},
        "outputs": [{"name": o.name, "type": o.type, "shape": o.shape}
                    for o in session.get_outputs()],
        "score_output": score_output,
        "scores": ("`score_output` is what medml predicts: class probabilities in the order "
                   "of `model_classes` (binary: column 1 is the positive class, classed at "
                   "`threshold`; the graph's own `label` output is the argmax) or the "
                   "predicted value (regression)"),
        "model_classes": [int(c) if isinstance(c, np.integer) else c
                          for c in getattr(model, "classes_", [])] if classifier else [],
        "classes": classes, "threshold": card.get("threshold"),
        "positive_value": schema.positive_value,
        # what the pipeline imputes per feature (predict's missing-feature warnings)
        "imputed": {k: [how, [v if isinstance(v, str | int | float) else str(v)
                              for v in values]]
                    for k, (how, values) in imputed_values(model).items()},
        "versions": _versions("onnx", "skl2onnx", "onnxruntime", "scikit-learn",
                              *(["scikit-survival"] if survival else [])),
        **graph_runtime(onx),
    }
    if survival:
        signature["survival"] = survival_block
        signature["scores"] = survival_block["reading"]
    dataset = load_dataset(cfg)
    X = align_category_spelling(prepare_features(dataset.X, schema, "the run's data",
                                                 context="input"), schema)
    X = _parity_rows(X, schema, int(getattr(cfg, "seed", 0)))
    expected = problem.scores(model, X, len(classes))
    got = problem.scores(OnnxModel(session, signature), X, len(classes))
    signature["parity"] = _parity(
        expected, got, TABULAR_TOLERANCE, len(X),
        f"the saved model (model.skops) on the run's {dataset.n_samples} data rows plus "
        f"{len(X) - dataset.n_samples} copies with one feature blanked each",
        "scikit-learn pipeline vs ONNX Runtime")
    return signature


# ----------------------------------------------------------------------------- Keras
def _prepend_intensity(onx: Any, intensity: tuple[str, float, float]) -> None:
    """Put the model's intensity window in front of the graph: clip to [lo, hi], subtract
    lo, multiply by 1 / (hi - lo), in float32 as medml's input pipeline does."""
    from onnx import helper, numpy_helper

    mode, lo, hi = intensity
    if mode == "unit":
        return
    graph = onx.graph
    spec = graph.input[0]
    inner = f"{spec.name}__windowed"
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name == spec.name:
                node.input[k] = inner
    constants = {"window_lo": np.float32(lo), "window_hi": np.float32(hi),
                 "window_scale": np.float32(1.0 / (hi - lo))}
    for name, value in constants.items():
        graph.initializer.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
    nodes = [
        helper.make_node("Clip", [spec.name, "window_lo", "window_hi"], ["window_clipped"]),
        helper.make_node("Sub", ["window_clipped", "window_lo"], ["window_shifted"]),
        helper.make_node("Mul", ["window_shifted", "window_scale"], [inner]),
    ]
    for node in reversed(nodes):
        graph.node.insert(0, node)


def _export_keras(run_path: Path, cfg: Any, card: dict[str, Any],
                  folder: Path) -> dict[str, Any]:
    import onnx

    from medml_cli.models.keras.input_pipeline import check_intensity
    from medml_cli.problems import problem_of_card
    from medml_cli.runs.artifacts import load_keras_estimator
    from medml_cli.workflows.train import load_dataset
    from medml_cli.workflows.train_image import image_split

    estimator = load_keras_estimator(run_path / "model")
    shape = tuple(int(s) for s in estimator.input_shape_)
    keras_model = estimator.model_
    keras_model.predict(np.zeros((1, *shape), dtype=np.float32), verbose=0)  # builds it
    raw = folder / "keras-export.onnx"
    try:
        # tf2onnx prints its progress and warns about numpy; neither is the user's
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            keras_model.export(str(raw), format="onnx", verbose=False)
        onx = onnx.load(str(raw))
    except Exception as exc:  # noqa: BLE001 - Keras/tf2onnx raise many types
        raise ExportError(
            f"converting the Keras model to ONNX failed ({type(exc).__name__}: "
            f"{str(exc).strip()[:300]}); no bundle was written.") from None
    finally:
        raw.unlink(missing_ok=True)
    intensity = check_intensity(estimator.intensity)
    _prepend_intensity(onx, intensity)
    onx.doc_string = f"medml {card.get('model')} ({card.get('task')}) from run {run_path.name}"
    (folder / MODEL_FILE).write_bytes(onx.SerializeToString())
    session = inference_session(folder / MODEL_FILE)
    spec = session.get_inputs()[0]
    classes = list(card.get("classes") or ["negative", "positive"])
    signature = {
        "format": BUNDLE_FORMAT, "format_version": BUNDLE_VERSION, "kind": "image",
        "model_file": MODEL_FILE, "task": card.get("task"), "problem": card["problem"],
        "model": card.get("model"),
        "inputs": [{"name": spec.name, "type": "float", "shape": [None, *shape]}],
        "feeding": ("one float32 tensor [n, *input_shape] of raw intensities (Hounsfield "
                    "units for CT); the graph clips them to the intensity window and scales "
                    "it to [0, 1] itself"),
        "outputs": [{"name": o.name, "type": o.type, "shape": o.shape}
                    for o in session.get_outputs()],
        "score_output": session.get_outputs()[0].name,
        "model_classes": list(range(len(classes))),
        "classes": classes, "threshold": card.get("threshold"),
        "image": {"input_shape": list(shape), "spatial_dims": card.get("spatial_dims"),
                  "intensity": list(intensity),
                  "hu_window": list(intensity[1:]) if intensity[0] == "hu" else None},
        "versions": _versions("onnx", "onnxruntime", "tf2onnx", "keras", "tensorflow"),
        **graph_runtime(onx),
    }
    dataset = load_dataset(cfg)
    index = image_split(dataset, cfg)["test"][:MAX_PARITY_IMAGES]
    if len(index) == 0:
        raise RunNotUsableError(f"run {run_path.name} has no held-out test images to check "
                                "the export against; train it with a test split.")
    images = np.asarray(dataset.images[index])
    problem = problem_of_card(card)
    expected = problem.scores(estimator, images, len(classes))
    got = problem.scores(OnnxModel(session, signature), images, len(classes))
    signature["parity"] = _parity(
        expected, got, IMAGE_TOLERANCE, len(index),
        f"the saved Keras model on the run's first {len(index)} held-out test images",
        "Keras vs ONNX Runtime")
    return signature
