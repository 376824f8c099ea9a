"""Exported ONNX bundles (``medml export RUN --format onnx``): their layout, their integrity
check, and scoring with ONNX Runtime.

A bundle is a folder holding ``model.onnx`` (the whole fitted pipeline as one graph),
``signature.json`` (how to feed it and what comes out), the run's ``card.json``
(``card.md`` when the run has one), ``config.yaml`` and, for tabular models,
``schema.json``. ``manifest.json`` records every file's sha256; a bundle whose files do not
match is refused. :class:`OnnxModel` answers ``predict_proba`` / ``predict`` like the fitted
model it was exported from, so predict scores a bundle with the same code as a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medml_cli.data.formats.paths import sha256_file
from medml_cli.errors import ModelLoadError
from medml_cli.jsonio import read_json, read_run_json, write_json

SIGNATURE = "signature.json"
MODEL_FILE = "model.onnx"
MANIFEST = "manifest.json"
BUNDLE_FORMAT = "medml.onnx-bundle"
BUNDLE_VERSION = 1
#: How a missing categorical value is fed to the graph's string inputs (a missing number
#: is NaN); the exporter's converters impute the same spelling.
MISSING_CATEGORY = ""
REEXPORT_FIX = "export it again with `medml export RUN --format onnx`"
#: Rows per ONNX Runtime call for survival bundles: a random survival forest's graph holds
#: an [n, leaves] leaf matrix (see medml_cli.export.survival).
SURVIVAL_BATCH_ROWS = 1024


def is_onnx_bundle(path: Path) -> bool:
    """A folder with signature.json or model.onnx (as opposed to a run directory); one
    that lacks the other file is then reported as an incomplete bundle, not as no run."""
    path = Path(path)
    return path.is_dir() and ((path / SIGNATURE).is_file() or (path / MODEL_FILE).is_file())


def write_manifest(folder: Path, names: list[str]) -> None:
    """Record the sha256 of each named file of the bundle in ``manifest.json``."""
    write_json(folder / MANIFEST, {"format": BUNDLE_FORMAT, "format_version": BUNDLE_VERSION,
                                   "files": {n: sha256_file(folder / n) for n in names}})


def verify_bundle(folder: Path) -> dict[str, Any]:
    """Check every file the manifest lists (and that the essentials are listed); returns the
    signature. ModelLoadError naming the file and the fix otherwise."""
    folder = Path(folder)
    manifest = read_run_json(folder / MANIFEST, dict, what="the bundle's checksums",
                             fix=REEXPORT_FIX, error=ModelLoadError)
    files = manifest.get("files")
    if manifest.get("format") != BUNDLE_FORMAT or not isinstance(files, dict):
        raise ModelLoadError(f"{folder / MANIFEST} is not a medml ONNX bundle manifest, so "
                             f"the bundle cannot be verified. Fix: {REEXPORT_FIX}.")
    for name in (MODEL_FILE, SIGNATURE, "card.json"):
        if name not in files:
            raise ModelLoadError(f"{folder / MANIFEST} does not list {name}, so the bundle "
                                 f"cannot be verified. Fix: {REEXPORT_FIX}.")
    for name, recorded in files.items():
        path = folder / str(name)
        if not path.is_file():
            raise ModelLoadError(f"the ONNX bundle {folder} is incomplete: {name} is missing. "
                                 f"Fix: {REEXPORT_FIX}.")
        if sha256_file(path) != recorded:
            raise ModelLoadError(
                f"{path} was changed after export (its sha256 differs from the one in "
                f"{MANIFEST}), so it was edited, truncated or tampered with and will not be "
                f"used. Fix: restore the original file, or {REEXPORT_FIX}.")
    signature = read_json(folder / SIGNATURE)
    if not isinstance(signature, dict) or signature.get("format") != BUNDLE_FORMAT:
        raise ModelLoadError(f"{folder / SIGNATURE} is not a medml bundle signature. "
                             f"Fix: {REEXPORT_FIX}.")
    if int(signature.get("format_version", 0)) > BUNDLE_VERSION:
        raise ModelLoadError(f"{folder} was exported by a newer medml (bundle format "
                             f"{signature.get('format_version')}); upgrade medml to use it.")
    return signature


def inference_session(model: Path | bytes) -> Any:
    """An ONNX Runtime CPU session over a model file (or its bytes)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initialisers are not the user's
    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
        raise ModelLoadError(f"ONNX Runtime cannot load the model ({type(exc).__name__}: "
                             f"{str(exc)[:300]}). Fix: {REEXPORT_FIX}.") from None


def tabular_feeds(X: Any, inputs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """One ``[n, 1]`` array per input of the signature: numbers as float64 with NaN for
    missing, categories as the strings medml's pipeline sees, ``""`` for missing."""
    feeds: dict[str, np.ndarray] = {}
    for spec in inputs:
        values = X[spec["feature"]]
        if spec["type"] == "string":
            text = values.astype(object).where(values.notna(), MISSING_CATEGORY)
            feeds[spec["name"]] = text.astype(str).to_numpy(dtype=object).reshape(-1, 1)
        else:
            feeds[spec["name"]] = values.to_numpy(dtype=np.float64).reshape(-1, 1)
    return feeds


class OnnxModel:
    """An exported graph that answers like the fitted model it came from: ``predict_proba``
    (classifiers) and ``predict`` on a DataFrame (tabular) or an image array (raw
    intensities; the graph applies the model's intensity window itself)."""

    def __init__(self, session: Any, signature: dict[str, Any]) -> None:
        self.session = session
        self.signature = signature
        self.classes_ = np.asarray(signature.get("model_classes") or [])

    def _run(self, X: Any) -> np.ndarray:
        if self.signature["kind"] == "image":
            spec = self.signature["inputs"][0]
            shape = tuple(int(s) for s in self.signature["image"]["input_shape"])
            images = np.asarray(X, dtype=np.float32).reshape((len(X), *shape))
            feeds = {spec["name"]: images}
        else:
            feeds = tabular_feeds(X, self.signature["inputs"])
        out = self.session.run([self.signature["score_output"]], feeds)[0]
        return np.asarray(out, dtype=np.float64)

    def risk_and_survival(self, X: Any, times: Any) -> tuple[np.ndarray, np.ndarray]:
        """A survival bundle's risk score (n,) and S(t | x) at ``times`` (n, len(times)),
        read from the graph's step curve as medml reads a fitted estimator's."""
        from medml_cli.models.survival_output import as_times, step_values

        block = self.signature["survival"]
        names = [block["risk_output"], block["survival_output"]]
        risks, curves = [], []
        for start in range(0, max(len(X), 1), SURVIVAL_BATCH_ROWS):
            rows = X.iloc[start:start + SURVIVAL_BATCH_ROWS]
            risk, curve = self.session.run(names, tabular_feeds(rows, self.signature["inputs"]))
            risks.append(np.asarray(risk, np.float64).reshape(-1))
            curves.append(np.asarray(curve, np.float64).reshape(len(rows), -1))
        knots = np.asarray(block["times"], dtype=np.float64)
        return (np.concatenate(risks),
                step_values(knots, np.vstack(curves), as_times(times)))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities in the order of ``classes_``."""
        out = self._run(X)
        if out.ndim == 1 or out.shape[1] == 1:  # a sigmoid head: P(class 1)
            p = out.reshape(-1)
            return np.column_stack([1.0 - p, p])
        return out

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values (regression) or the most probable class (classification)."""
        if self.signature["problem"] in ("binary-classification", "multiclass"):
            return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        return self._run(X).reshape(-1)


def open_bundle(folder: Path) -> OnnxModel:
    """Verify a bundle and open its graph in ONNX Runtime."""
    signature = verify_bundle(Path(folder))
    return OnnxModel(inference_session(Path(folder) / MODEL_FILE), signature)
