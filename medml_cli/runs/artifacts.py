"""Saving and loading fitted models without ever unpickling a file.

scikit-learn pipelines are stored with skops. On load, every type the file asks for that
skops does not trust by default must be on :data:`TRUSTED_TYPES` (a short base list) or be
declared by a registered model (``register_model(..., trusted_types=...)``); anything else is
refused before an object is built. What is trusted never comes from the file itself. Each
model file's sha256 is recorded beside it and checked on load, so a tampered or truncated file
is refused too; so are the card (threshold, classes) and schema beside it, which change
predictions just as much as the model does.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from medml_cli.data.formats.paths import sha256_file
from medml_cli.errors import ModelLoadError
from medml_cli.jsonio import read_json, read_run_json, write_json, write_text_atomic

#: Types beyond skops' own defaults that any medml pipeline may hold; each model adds the
#: types its estimator needs when it registers (``trusted_types``).
TRUSTED_TYPES: tuple[str, ...] = ("numpy.dtype",)


def trusted_types() -> frozenset[str]:
    """The base list plus what every registered model (built-in or plug-in) declares."""
    from medml_cli.plugins import load_plugins
    from medml_cli.registry import model_trusted_types

    load_plugins()
    return frozenset(TRUSTED_TYPES) | model_trusted_types()

MANIFEST = "manifest.json"
#: 2: the manifest lists every file of ``model/`` that evaluate/predict read (model file(s),
#: card.json, schema.json), and card.md where the run has one. Manifests without a version
#: (1) listed the model file(s) only.
MANIFEST_VERSION = 2
#: Files a version-1 manifest did not list; such runs stay readable, with a warning.
LEGACY_UNLISTED = ("card.json", "schema.json")


def save_sklearn_model(model: Any, folder: Path, name: str = "model.skops") -> Path:
    """Save a fitted pipeline with skops and record its sha256 in the manifest."""
    import skops.io as sio

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    sio.dump(model, path)
    _record_hash(folder, name)
    return path


def write_model_json(folder: Path, name: str, data: Any) -> Path:
    """Write a JSON file of ``model/`` (card.json, schema.json) and record its sha256, so an
    edit after training (a new threshold, a changed schema) is refused on load."""
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / name, data)
    _record_hash(folder, name)
    return folder / name


def write_model_text(folder: Path, name: str, text: str) -> Path:
    """Write a text file of ``model/`` (card.md) and record its sha256: copies of the card
    (an export bundle) can be checked against the run it came from."""
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / name, text)
    _record_hash(folder, name)
    return folder / name


def _record_hash(folder: Path, name: str) -> None:
    manifest_path = folder / MANIFEST
    files = read_json(manifest_path).get("files", {}) if manifest_path.exists() else {}
    files[name] = sha256_file(folder / name)
    write_json(manifest_path, {"format_version": MANIFEST_VERSION, "files": files})


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a model folder: ``{"format_version": int, "files": {name: sha256}}``."""
    manifest_path = folder / MANIFEST
    fix = "re-run `medml train` with the run's config.yaml to recreate the run"
    manifest = read_run_json(manifest_path, dict, what="the checksums of the model files",
                             fix=fix, error=ModelLoadError)
    files = manifest.get("files")
    version = manifest.get("format_version", 1)
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()) \
            or not isinstance(version, int):
        raise ModelLoadError(
            f"{manifest_path} is not a medml manifest (expected a `files` mapping of file name "
            "to sha256), so the model files cannot be verified and will not be used. "
            f"Fix: {fix}.")
    return {"format_version": version, "files": files}


def verify_file(folder: Path, name: str) -> Path:
    """Check a file of ``model/`` against the sha256 recorded when the run was written.

    A run written before manifest version 2 did not record card.json and schema.json; those
    are read unverified (see :func:`integrity_warnings`). Anything else unlisted is refused.
    """
    path = folder / name
    if not path.exists():
        raise ModelLoadError(
            f"model file {path} is missing; the run directory is incomplete. "
            "Re-run `medml train` with the run's config.yaml to recreate it."
        )
    manifest = read_manifest(folder)
    recorded = manifest["files"].get(name)
    if recorded is None:
        if manifest["format_version"] < 2 and name in LEGACY_UNLISTED:
            return path
        raise ModelLoadError(
            f"{folder / MANIFEST} does not list {name}, so {path} cannot be verified and will "
            "not be used. Re-run `medml train` with the run's config.yaml to recreate the run."
        )
    actual = sha256_file(path)
    if actual != recorded:
        raise ModelLoadError(
            f"{path} was changed after training: it has changed since it was saved (sha256 "
            f"{actual[:12]}..., recorded in {MANIFEST} {recorded[:12]}...), so it was edited, "
            "truncated or tampered with and will not be used. Re-run `medml train` with the "
            "run's config.yaml to recreate the run, or restore the original file."
        )
    return path


def integrity_warnings(folder: Path) -> list[str]:
    """What the manifest of an older run leaves unchecked, for the user to hear about."""
    manifest = read_manifest(folder)
    unlisted = [n for n in LEGACY_UNLISTED
                if (folder / n).exists() and n not in manifest["files"]]
    if manifest["format_version"] >= 2 or not unlisted:
        return []
    return [f"{folder / MANIFEST} was written by an earlier medml and checksums the model file "
            f"only: {' and '.join(unlisted)} are not checksummed, so an edit to them (e.g. the "
            "threshold) would go unnoticed. Train again to get a fully checksummed run."]


def load_sklearn_model(folder: Path, name: str = "model.skops") -> Any:
    """Load a skops model after checking its hash and every type it would build.

    One pass: skops' ``load(..., trusted=...)`` audits the whole tree before it builds any
    object and refuses every type outside the list, so the happy path reads the file once.
    Only when that load fails is the file audited on its own, to say which problem it has
    (unreadable, untrusted types, or a build error) in medml's words.
    """
    import skops.io as sio

    path = verify_file(folder, name)
    trusted = trusted_types()
    try:
        return sio.load(path, trusted=sorted(trusted))
    except Exception as exc:  # noqa: BLE001 - any failure here means a bad file
        failure = exc
    try:
        asked = sio.get_untrusted_types(file=path)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ModelLoadError(
            f"{path} is not a readable skops model file ({type(exc).__name__}). medml never "
            "loads pickles; re-run `medml train` to recreate the model."
        ) from None
    refused = sorted(set(asked) - trusted)
    if refused:
        raise ModelLoadError(
            f"{path} asks to build type(s) outside medml's trusted list: {', '.join(refused)}. "
            "The file was not loaded. Only load models that medml itself trained."
        )
    raise ModelLoadError(
        f"{path} could not be loaded: {type(failure).__name__}: {failure}") from None


def save_keras_estimator(estimator: Any, folder: Path) -> Path:
    """Save an ImageCnnClassifier (model.keras + estimator.json) and record their hashes."""
    folder.mkdir(parents=True, exist_ok=True)
    estimator.save(folder)
    for name in ("model.keras", "estimator.json"):
        _record_hash(folder, name)
    return folder / "model.keras"


def load_keras_estimator(folder: Path) -> Any:
    """Load an ImageCnnClassifier after checking hashes; Keras safe mode stays on."""
    from medml_cli.models.keras.estimator import ImageCnnClassifier

    for name in ("model.keras", "estimator.json"):
        verify_file(folder, name)
    return ImageCnnClassifier.load(folder)


def load_run_model(folder: Path, card: dict[str, Any]) -> Any:
    """The model of a run, by the format its card names."""
    if card.get("format") == "keras":
        return load_keras_estimator(folder)
    return load_sklearn_model(folder)
