"""Prediction and evaluation with an image (CNN) run: DICOM series, volumes, arrays, images.

Inputs are brought to the model's input shape the way its training data were: CT slices and
image files are resized; whole CT volumes are tiled into patches of the model's input size
(one output row per patch); arrays (.npz/.npy) must already have the right shape.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medml_cli.data.formats.dicom import DICOM_SUFFIX
from medml_cli.data.formats.hu import AIR_HU
from medml_cli.data.formats.image_files import IMAGE_SUFFIXES
from medml_cli.data.formats.nifti import is_volume_file
from medml_cli.data.formats.npz import ARRAY_SUFFIXES
from medml_cli.errors import DataError


def _model_hw(card: dict[str, Any]) -> tuple[int, ...]:
    dims = int(card["spatial_dims"])
    return tuple(int(s) for s in card["input_shape"][:dims])


def _channels(card: dict[str, Any]) -> int:
    return int(card["input_shape"][-1])


def _check_ct_model(card: dict[str, Any], source: str) -> None:
    if card["intensity"][0] != "hu":
        raise DataError(
            f"{source} holds CT in Hounsfield units, but this model was trained on "
            f"{card['intensity'][0]} images.", "predict on inputs like its training data.")


def tile_volume(hu: np.ndarray, patch: tuple[int, int, int]) -> tuple[np.ndarray, list[str]]:
    """Non-overlapping patches covering the volume (edges padded with air)."""
    padded_shape = [int(np.ceil(s / p)) * p for s, p in zip(hu.shape, patch, strict=True)]
    padded = np.full(padded_shape, AIR_HU, dtype=np.float32)
    padded[: hu.shape[0], : hu.shape[1], : hu.shape[2]] = hu
    tiles, names = [], []
    for z in range(0, padded_shape[0], patch[0]):
        for y in range(0, padded_shape[1], patch[1]):
            for x in range(0, padded_shape[2], patch[2]):
                tiles.append(padded[z:z + patch[0], y:y + patch[1], x:x + patch[2]])
                names.append(f"z{z}-y{y}-x{x}")
    return np.stack(tiles), names


def _volume_inputs(hu: np.ndarray, label: str, card: dict[str, Any],
                   slice_names: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    from medml_cli.data.image_base import resize_stack

    shape = _model_hw(card)
    if card["spatial_dims"] == 3:
        tiles, names = tile_volume(hu, shape)  # type: ignore[arg-type]
        return tiles, [f"{label}:{n}" for n in names]
    names = slice_names or [f"slice-{i:04d}" for i in range(len(hu))]
    return resize_stack(hu, shape), [f"{label}/{n}" for n in names]


def _is_dicom_folder(folder: Path) -> bool:
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    if any(p.suffix.lower() == DICOM_SUFFIX for p in files):
        return True
    for path in files[:3]:
        if path.suffix.lower() in IMAGE_SUFFIXES or is_volume_file(path):
            continue
        try:
            with open(path, "rb") as handle:
                head = handle.read(132)
        except OSError:
            continue  # unreadable files are reported by the reader that opens them
        if head[128:132] == b"DICM":
            return True
    return False


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.parts))


def _from_image_files(paths: list[Path], card: dict[str, Any], root: Path | None
                      ) -> tuple[np.ndarray, list[str], list[str]]:
    from medml_cli.data.formats.image_files import load_image_with_note

    if card["intensity"][0] == "hu":
        raise DataError("PNG/JPEG images carry no Hounsfield units, but this model was trained "
                        "on CT in HU.", "predict on DICOM, .mhd, NIfTI or HU arrays instead.")
    mode = "rgb" if _channels(card) == 3 else "grayscale"
    loaded = [load_image_with_note(p, _model_hw(card), mode) for p in paths]
    images = np.stack([image for image, _ in loaded])
    if card["intensity"][0] == "uint8":  # trained on raw 0-255 (MedMNIST): match its scale
        images = images * 255.0
    ids = [str(p.relative_to(root)) if root else p.name for p in paths]
    return images, ids, [note for _, note in loaded]


def _from_array(images: np.ndarray, card: dict[str, Any], source: str) -> np.ndarray:
    want = tuple(int(s) for s in card["input_shape"])
    got = tuple(images.shape[1:])
    if got == want[:-1] and want[-1] == 1:
        return images
    if got != want:
        raise DataError(
            f"{source}: the images have shape {got} but the model takes {want} "
            f"(spatial size{' and channels' if len(got) == len(want) else ''} must match).",
            "resize the images to the model's input size, or train on data of this size.")
    return images


@dataclass
class PredictionInputs:
    """What predict scores: images shaped for the model, one id and one note per image
    ("" or why its score is less trustworthy), and warnings about the input as a whole."""

    images: np.ndarray
    ids: list[str]
    flags: list[str]
    warnings: list[str] = field(default_factory=list)


def read_prediction_inputs(path: Path, card: dict[str, Any],
                           allow_modalities: Collection[str] = ()) -> PredictionInputs:
    """Read whatever the user points at, with per-image notes and input-level warnings.

    DICOM must be CT (or a modality in ``allow_modalities``, which adds a warning) and
    grayscale when the model was trained on CT in HU; image files of the other colour mode
    than the model's are converted, with a note on each.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"input not found: {path}.", "check the --input path.")
    if not path.is_dir():
        from medml_cli.data.formats.paths import require_regular_file

        require_regular_file(path, "--input")  # np.load of a FIFO would block forever
    allowed = tuple(sorted({m.strip().upper() for m in allow_modalities if m.strip()}))
    reader = _CtReader(card, str(path), allowed)
    if path.is_dir():
        try:
            entries = sorted(path.iterdir())
        except PermissionError:
            raise DataError(f"the folder {path} cannot be read (permission denied).",
                            "check its permissions.") from None
        if _is_dicom_folder(path):
            return reader.done(*reader.series(path))
        series = [p for p in entries if p.is_dir() and _is_dicom_folder(p)]
        if series:
            parts = [reader.series(s) for s in series]
            return reader.done(np.concatenate([p[0] for p in parts]),
                               [i for p in parts for i in p[1]])
        volumes = [p for p in entries if p.is_file() and is_volume_file(p)
                   and not p.name.startswith(".")]
        if volumes:
            parts = [reader.volume_file(v) for v in volumes]
            return reader.done(np.concatenate([p[0] for p in parts]),
                               [i for p in parts for i in p[1]])
        files = _image_files(path)
        if not files:
            raise DataError(f"{path} holds no DICOM series, no NIfTI/.mhd volumes and no "
                            "PNG/JPEG images.",
                            "point --input at a DICOM series folder, a folder of .nii.gz "
                            "volumes, an image folder, a .npz/.npy array or an image file.")
        return PredictionInputs(*_from_image_files(files, card, path))
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return PredictionInputs(*_from_image_files([path], card, None))
    if suffix == DICOM_SUFFIX:
        return reader.done(*reader.dicom_file(path))
    if is_volume_file(path):
        return reader.done(*reader.volume_file(path))
    if suffix in ARRAY_SUFFIXES:
        images, ids = _from_array_file(path, card)
        return PredictionInputs(images, ids, [""] * len(ids))
    raise DataError(f"{path.name}: medml cannot read '{suffix}' files for image models.",
                    "give a DICOM series folder, .dcm (single- or multi-frame CT), .mhd, "
                    ".nii/.nii.gz, .npz, .npy, PNG or JPEG.")


class _CtReader:
    """CT inputs for one predict call: the model must take HU; modalities are checked."""

    def __init__(self, card: dict[str, Any], source: str, allowed: tuple[str, ...]) -> None:
        self.card, self.source, self.allowed = card, source, allowed
        self.warnings: list[str] = []
        self.other_modalities: dict[str, int] = {}

    def _start(self) -> None:
        _check_ct_model(self.card, self.source)

    def _seen(self, modality: str, n: int) -> None:
        if modality and modality != "CT":
            self.other_modalities[modality] = self.other_modalities.get(modality, 0) + n

    def series(self, folder: Path) -> tuple[np.ndarray, list[str]]:
        from medml_cli.data.formats.dicom import read_dicom_series

        self._start()
        volume = read_dicom_series(folder, modalities=self.allowed)
        self._seen(volume.modality, 1)
        return _volume_inputs(volume.hu, folder.name, self.card, list(volume.files))

    def dicom_file(self, path: Path) -> tuple[np.ndarray, list[str]]:
        from medml_cli.data.formats.dicom import read_dicom_volume_file

        self._start()
        volume = read_dicom_volume_file(path, modalities=self.allowed)
        self._seen(volume.modality, 1)
        if self.card["spatial_dims"] == 3 and volume.hu.shape[0] == 1:
            raise DataError(f"{path.name} is a single slice but the model takes 3D volumes.",
                            "pass the whole series folder (or an Enhanced multi-frame CT "
                            "file, a .nii.gz or .mhd volume).")
        names = list(volume.files) if len(volume.files) == volume.hu.shape[0] else None
        return _volume_inputs(volume.hu, path.stem, self.card, names)

    def volume_file(self, path: Path) -> tuple[np.ndarray, list[str]]:
        from medml_cli.data.formats.nifti import hu_warning, read_volume_file, volume_stem

        self._start()
        volume = read_volume_file(path)  # axes put in the DICOM reader's layout
        note = hu_warning(volume, path.name)
        if note:
            self.warnings.append(note)
        return _volume_inputs(volume.hu, volume_stem(path), self.card)

    def done(self, images: np.ndarray, ids: list[str]) -> PredictionInputs:
        warnings = list(self.warnings)
        if self.other_modalities:
            found = ", ".join(f"{m} ({n} series/file(s))" for m, n in
                              sorted(self.other_modalities.items()))
            warnings.append(
                f"scored {found} with a model trained on CT in Hounsfield units, because "
                f"--allow-modality {' '.join(self.allowed)} was given; the pixel values are "
                "not HU, so these scores are outside what the model was validated on")
        return PredictionInputs(images, ids, [""] * len(ids), warnings)


def _from_array_file(path: Path, card: dict[str, Any]) -> tuple[np.ndarray, list[str]]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path.name} could not be read as a numpy file ({exc}).",
                        "check that it is a .npz/.npy saved by numpy (no pickled objects).",
                        source=str(path)) from None
    if isinstance(loaded, np.ndarray):
        images = loaded
        ids = [str(i) for i in range(len(images))]
    else:
        with loaded:
            keys = list(loaded.keys())
            image_keys = [k for k in ("test_images", "val_images", "train_images", "images")
                          if k in keys]
            if not image_keys:
                raise DataError(f"{path.name} has no image array (keys: {', '.join(keys)}).",
                                "save the images under `images` or MedMNIST's "
                                "`test_images`/`val_images`/`train_images`.", source=str(path))
            try:
                arrays = [(k, loaded[k]) for k in image_keys]
            except ValueError as exc:
                raise DataError(f"{path.name} holds object arrays, which medml refuses to "
                                f"unpickle ({exc}).", "save plain numeric arrays.",
                                source=str(path)) from None
        images = np.concatenate([a for _, a in arrays])
        ids = [f"{k.replace('_images', '')}-{i:05d}" for k, a in arrays for i in range(len(a))]
    if images.dtype.kind not in "fiu":
        raise DataError(f"{path.name}: images must be numeric, not {images.dtype}.",
                        "save numeric arrays.", source=str(path))
    return _from_array(images, card, path.name), ids


def image_warnings(images: np.ndarray, ids: list[str], source: str,
                   chunk: int = 256) -> list[str]:
    """Per image, "" or why its score means little (a constant image: nothing to see).

    Images holding NaN or infinite pixels are refused: the network turns them into NaN
    probabilities, which would read as a prediction. Checked in chunks, so a memory-mapped
    input is never loaded whole.
    """
    flags: list[str] = []
    first_bad: tuple[str, int, int] | None = None
    n_bad = 0
    for start in range(0, len(images), chunk):
        block = np.asarray(images[start:start + chunk], dtype=np.float32)
        block = block.reshape(len(block), -1)
        finite = np.isfinite(block)
        bad = np.flatnonzero(~finite.all(axis=1))
        n_bad += len(bad)
        if len(bad) and first_bad is None:
            i = int(bad[0])
            first_bad = (ids[start + i], int((~finite[i]).sum()), block.shape[1])
        with np.errstate(invalid="ignore"):
            low, high = block.min(axis=1), block.max(axis=1)
        flags += [f"constant image (every pixel {lo:g})" if lo == hi else ""
                  for lo, hi in zip(low.tolist(), high.tolist(), strict=True)]
    if first_bad is not None:
        name, pixels, size = first_bad
        raise DataError(
            f"{n_bad} of {len(images)} image(s) hold NaN or infinite pixels, e.g. image "
            f"'{name}' "
            f"({pixels} of {size} pixels); such pixels cannot be scored (the network would "
            "return NaN, not a probability).",
            "fill those pixels (e.g. with the air value, -1000 HU for CT) or leave those "
            "images out.",
            source=source,
        )
    return flags
