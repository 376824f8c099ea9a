"""Saving and loading fitted models without ever unpickling a file.

scikit-learn pipelines are stored with skops. On load, every type the file asks for that
skops does not trust by default must be on :data:`TRUSTED_TYPES`, an explicit list; anything
else is refused before an object is built. Each model file's sha256 is recorded beside it and
checked on load, so a tampered or truncated file is refused too.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from medml_cli.data.base import sha256_file
from medml_cli.errors import ModelLoadError
from medml_cli.jsonio import read_json, write_json

#: Types beyond skops' own defaults that medml's tabular pipelines are made of.
TRUSTED_TYPES: tuple[str, ...] = (
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.isotonic.IsotonicRegression",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.tree._tree.Tree",
)

MANIFEST = "manifest.json"


def save_sklearn_model(model: Any, folder: Path, name: str = "model.skops") -> Path:
    import skops.io as sio

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    sio.dump(model, path)
    _record_hash(folder, name)
    return path


def _record_hash(folder: Path, name: str) -> None:
    manifest_path = folder / MANIFEST
    manifest = read_json(manifest_path) if manifest_path.exists() else {"files": {}}
    manifest["files"][name] = sha256_file(folder / name)
    write_json(manifest_path, manifest)


def verify_file(folder: Path, name: str) -> Path:
    """Check a model file against the sha256 recorded when it was saved."""
    path = folder / name
    if not path.exists():
        raise ModelLoadError(
            f"model file {path} is missing; the run directory is incomplete. "
            "Re-run `medml train` with the run's config.yaml to recreate it."
        )
    manifest_path = folder / MANIFEST
    try:
        recorded = read_json(manifest_path)["files"][name]
    except (OSError, ValueError, KeyError, TypeError):
        raise ModelLoadError(
            f"{manifest_path} is missing or does not list {name}, so the model file cannot be "
            "verified and will not be loaded. Re-run `medml train` to recreate the run."
        ) from None
    actual = sha256_file(path)
    if actual != recorded:
        raise ModelLoadError(
            f"model file {path} has changed since it was saved (sha256 {actual[:12]}..., "
            f"recorded {recorded[:12]}...); it may be truncated or tampered with and will not "
            "be loaded. Re-run `medml train` to recreate it."
        )
    return path


def load_sklearn_model(folder: Path, name: str = "model.skops") -> Any:
    """Load a skops model after checking its hash and every type it would build."""
    import skops.io as sio

    path = verify_file(folder, name)
    try:
        asked = sio.get_untrusted_types(file=path)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ModelLoadError(
            f"{path} is not a readable skops model file ({type(exc).__name__}). medml never "
            "loads pickles; re-run `medml train` to recreate the model."
        ) from None
    refused = sorted(set(asked) - set(TRUSTED_TYPES))
    if refused:
        raise ModelLoadError(
            f"{path} asks to build type(s) outside medml's trusted list: {', '.join(refused)}. "
            "The file was not loaded. Only load models that medml itself trained."
        )
    try:
        return sio.load(path, trusted=list(asked))
    except Exception as exc:  # noqa: BLE001 - any failure here means a bad file
        raise ModelLoadError(f"{path} could not be loaded: {type(exc).__name__}: {exc}") from None


def save_keras_estimator(estimator: Any, folder: Path) -> Path:
    """Save an ImageCnnClassifier (model.keras + estimator.json) and record their hashes."""
    folder.mkdir(parents=True, exist_ok=True)
    estimator.save(folder)
    for name in ("model.keras", "estimator.json"):
        _record_hash(folder, name)
    return folder / "model.keras"


def load_keras_estimator(folder: Path) -> Any:
    """Load an ImageCnnClassifier after checking hashes; Keras safe mode stays on."""
    from medml_cli.imaging.estimator import ImageCnnClassifier

    for name in ("model.keras", "estimator.json"):
        verify_file(folder, name)
    return ImageCnnClassifier.load(folder)


def load_run_model(folder: Path, card: dict[str, Any]) -> Any:
    """The model of a run, by the format its card names."""
    if card.get("format") == "keras":
        return load_keras_estimator(folder)
    return load_sklearn_model(folder)
