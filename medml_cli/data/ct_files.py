"""CT and image sources read from files: DICOM series, LUNA16, image folders, ``.npy`` arrays."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from medml_cli.data.base import sha256_file
from medml_cli.data.image_base import (
    ALLOW_MODALITIES_FIELD,
    HU_WINDOW_FIELD,
    ImageDataset,
    hu_intensity,
    modality_codes,
    modality_note,
)
from medml_cli.data.paths import require_regular_file
from medml_cli.data.tabular_file import FileDataConfig
from medml_cli.errors import DataError
from medml_cli.registry import DATASETS
from medml_cli.schemas import Provenance

IMAGE_TAGS = {"image", "binary-classification"}


def _size_list(value: list[int], n: int) -> list[int]:
    if len(value) != n or any(v < 4 or v > 1024 for v in value):
        raise ValueError(f"expected {n} sizes, each between 4 and 1024")
    return value


def _hash_files(paths: list[Path], limit: int = 2000) -> dict[str, str]:
    """sha256 of the input files (capped, so a huge archive does not stall every run)."""
    return {p.name: sha256_file(p) for p in sorted(paths)[:limit]}


# --------------------------------------------------------------------------- DICOM
class DicomSeriesData(FileDataConfig):
    """DICOM CT series labelled per slice (2D images) or per series (3D volumes) from a CSV."""

    type: Literal["dicom-series"]
    root: Path = Field(description="A series folder, or a folder of series folders (one per "
                                   "patient).")
    labels: Path = Field(description="CSV of 0/1 labels. level slice: `file` (or "
                                     "`sop_instance_uid`) and `label` (or `has_tumor_box`); "
                                     "level series: `series` (folder name) and `label`.")
    level: Literal["slice", "series"] = Field(
        "slice", description="slice: one 2D image per slice; series: one 3D volume per series.")
    label_column: str | None = Field(None, description="Label column name, if not `label`.")
    image_size: list[int] = Field(default_factory=lambda: [128, 128],
                                  description="level slice: slices resized to [height, width].")
    volume_shape: list[int] = Field(default_factory=lambda: [32, 64, 64],
                                    description="level series: volumes resized to [depth, "
                                                "height, width].")

    @field_validator("volume_shape")
    @classmethod
    def _three(cls, value: list[int]) -> list[int]:
        return _size_list(value, 3)
    hu_window: list[float] = HU_WINDOW_FIELD
    allow_modalities: list[str] = ALLOW_MODALITIES_FIELD

    @field_validator("allow_modalities")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        return modality_codes(value)

    @field_validator("image_size")
    @classmethod
    def _two(cls, value: list[int]) -> list[int]:
        return _size_list(value, 2)


def series_folders(root: Path) -> list[Path]:
    """``root`` itself when it holds files, else its sub-folders that do."""
    if not root.is_dir():
        raise DataError(f"{root} is not a folder.", "point `data.root` at a DICOM series "
                        "folder or a folder of series folders.")
    if any(p.is_file() and not p.name.startswith(".") for p in root.iterdir()):
        return [root]
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{root} holds no files and no series folders.",
                        "point `data.root` at DICOM data.")
    return folders


def resize_stack(images: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Linear resize of each image (N, *spatial) to ``shape``."""
    from scipy.ndimage import zoom

    if tuple(images.shape[1:]) == tuple(shape):
        return images.astype(np.float32, copy=False)
    factors = [1.0, *(t / s for t, s in zip(shape, images.shape[1:], strict=True))]
    out = zoom(images.astype(np.float32), factors, order=1)
    return out[(slice(None), *(slice(0, t) for t in shape))]


@DATASETS.register("dicom-series", config=DicomSeriesData, tags=IMAGE_TAGS,
                   summary="DICOM CT series, slice labels from a CSV (pydicom, HU)")
def load_dicom_series(cfg: DicomSeriesData, *, problem: str) -> ImageDataset:
    if cfg.level == "series":
        return _load_dicom_volumes(cfg)
    from medml_cli.imaging.dicom_series import read_dicom_series, read_slice_labels

    labels_by_key = read_slice_labels(cfg.labels, label_column=cfg.label_column)
    images, labels, ids, groups, files = [], [], [], [], []
    unlabelled = 0
    other: dict[str, int] = {}
    for folder in series_folders(cfg.root):
        volume = read_dicom_series(folder, modalities=cfg.allow_modalities)
        _count_modality(other, volume.modality)
        for index, (name, uid) in enumerate(zip(volume.files, volume.sop_instance_uids,
                                                strict=False)):
            label = next((labels_by_key[k] for k in (uid, f"{folder.name}/{name}", name)
                          if k in labels_by_key), None)
            if label is None:
                unlabelled += 1
                continue
            images.append(volume.hu[index])
            labels.append(label)
            ids.append(f"{folder.name}/{name}")
            groups.append(folder.name)
            files.append(_source_file(folder, name))
    if not images:
        raise DataError(
            f"none of the slices under {cfg.root} has a label in {cfg.labels.name} "
            f"({unlabelled} unlabelled).",
            "the CSV's `file` column must hold the DICOM file names (or SOPInstanceUIDs).",
        )
    shapes = {im.shape for im in images}
    stack = np.stack([resize_stack(im[None], tuple(cfg.image_size))[0] for im in images]) \
        if len(shapes) > 1 or next(iter(shapes)) != tuple(cfg.image_size) else np.stack(images)
    return ImageDataset(
        images=stack.astype(np.float32), labels=np.asarray(labels, dtype=int),
        ids=np.asarray(ids), groups=np.asarray(groups),
        provenance=_dicom_provenance(cfg, other, [*files, cfg.labels]),
        intensity=hu_intensity(cfg.hu_window), spatial_dims=2,
        notes=[modality_note(other, cfg.allow_modalities)] if other else [],
    ).check(str(cfg.root))


def _source_file(folder: Path, name: str) -> Path:
    """The file a slice came from: frames of an Enhanced CT file are named ``<file>#<n>``."""
    stem, sep, frame = name.rpartition("#")
    if sep and frame.isdigit() and not (folder / name).exists():
        return folder / stem
    return folder / name


def _count_modality(other: dict[str, int], modality: str) -> None:
    if modality and modality != "CT":
        other[modality] = other.get(modality, 0) + 1


def _dicom_provenance(cfg: DicomSeriesData, other: dict[str, int],
                      files: list[Path]) -> Provenance:
    # the modality note rides in the source line too, so the report shows it
    extra = f" (includes non-CT: {', '.join(sorted(other))})" if other else ""
    return Provenance(source=f"DICOM series under {cfg.root.name}{extra}",
                      files=_hash_files(files))


def _series_labels(cfg: DicomSeriesData) -> dict[str, int]:
    """Series-level labels: folder name -> 0/1."""
    if not cfg.labels.exists() and not cfg.labels.is_symlink():
        raise DataError(f"the labels CSV {cfg.labels} does not exist.", "check `data.labels`.")
    require_regular_file(cfg.labels, "`data.labels`")
    table = pd.read_csv(cfg.labels, dtype=str)
    key = next((c for c in ("series", "folder", "patient") if c in table.columns), None)
    label = cfg.label_column or "label"
    if key is None or label not in table.columns:
        raise DataError(
            f"{cfg.labels.name} needs a `series` column (the series folder names) and a "
            f"`{label}` column for level series; it has {', '.join(table.columns)}.",
            "add them, or use `data.level: slice` with per-slice labels.")
    values = pd.to_numeric(table[label], errors="coerce")
    if not values.isin([0, 1]).all():
        raise DataError(f"the `{label}` column of {cfg.labels.name} must hold 0 or 1 on every "
                        "row.", "fill in every row with 0 or 1.")
    return dict(zip(table[key].astype(str), values.astype(int), strict=True))


def _load_dicom_volumes(cfg: DicomSeriesData) -> ImageDataset:
    """One HU volume per series folder, resized to ``volume_shape``, labelled per series."""
    from medml_cli.imaging.dicom_series import read_dicom_series

    labels_by_series = _series_labels(cfg)
    volumes, labels, ids, files = [], [], [], []
    other: dict[str, int] = {}
    for folder in series_folders(cfg.root):
        if folder.name not in labels_by_series:
            continue
        volume = read_dicom_series(folder, modalities=cfg.allow_modalities)
        _count_modality(other, volume.modality)
        volumes.append(resize_stack(volume.hu[None], tuple(cfg.volume_shape))[0])
        labels.append(labels_by_series[folder.name])
        ids.append(folder.name)
        files.extend({_source_file(folder, name) for name in volume.files})
    if not volumes:
        raise DataError(f"none of the series folders under {cfg.root} is listed in "
                        f"{cfg.labels.name}.", "the `series` column must hold the folder names.")
    names = np.asarray(ids)
    return ImageDataset(
        images=np.stack(volumes).astype(np.float32), labels=np.asarray(labels, dtype=int),
        ids=names, groups=names,
        provenance=_dicom_provenance(cfg, other, [*files, cfg.labels]),
        intensity=hu_intensity(cfg.hu_window), spatial_dims=3,
        notes=[modality_note(other, cfg.allow_modalities)] if other else [],
    ).check(str(cfg.root))


# --------------------------------------------------------------------------- LUNA16
class Luna16Data(FileDataConfig):
    """LUNA16: .mhd/.raw CT volumes plus candidates.csv (world coordinates, mm)."""

    type: Literal["luna16"]
    root: Path = Field(description="Folder holding subset0..subset9 (searched recursively).")
    candidates: Path | None = Field(None, description="candidates.csv (default: found under "
                                                      "root).")
    patch_size: list[int] = Field(default_factory=lambda: [32, 32, 32],
                                  description="Patch [z, y, x] in voxels after resampling.")
    spacing_mm: float = Field(1.0, gt=0, le=10, description="Isotropic resampling spacing.")
    max_negatives_per_positive: int | None = Field(
        5, ge=1, description="Subsample the ~490:1 negatives; null keeps all.")
    seed: int = Field(0, ge=0, description="Seed of the negative subsampling.")
    hu_window: list[float] = HU_WINDOW_FIELD

    @field_validator("patch_size")
    @classmethod
    def _three(cls, value: list[int]) -> list[int]:
        return _size_list(value, 3)


@DATASETS.register("luna16", config=Luna16Data, tags=IMAGE_TAGS,
                   summary="LUNA16 .mhd/.raw volumes + candidates.csv, patches (SimpleITK)")
def load_luna16(cfg: Luna16Data, *, problem: str) -> ImageDataset:
    from medml_cli.imaging.luna16 import load_luna16_candidates

    patches = load_luna16_candidates(
        cfg.root, cfg.candidates, tuple(cfg.patch_size), cfg.spacing_mm,
        cfg.max_negatives_per_positive, cfg.seed,
    )
    used = sorted({str(g) for g in patches.groups})
    files = [p for p in cfg.root.rglob("*.mhd") if p.stem in set(used)]
    candidates = cfg.candidates or next(cfg.root.rglob("candidates*.csv"), None)
    return ImageDataset(
        images=patches.images, labels=np.asarray(patches.labels, dtype=int),
        ids=np.asarray(patches.ids).astype(str), groups=np.asarray(patches.groups).astype(str),
        provenance=Provenance(source=f"LUNA16 under {cfg.root.name}", licence="CC BY 4.0",
                              citation="Setio A. et al., Medical Image Analysis 42 (2017)",
                              files=_hash_files([*files, *([candidates] if candidates else [])])),
        intensity=hu_intensity(cfg.hu_window), spatial_dims=3,
    ).check(str(cfg.root))


# --------------------------------------------------------------------------- image folder
class ImageFolderData(FileDataConfig):
    """PNG/JPEG images in one sub-folder per class, as Keras `flow_from_directory` reads."""

    type: Literal["image-folder"]
    root: Path = Field(description="Folder with one sub-folder per class.")
    image_size: list[int] = Field(default_factory=lambda: [128, 128],
                                  description="Images are resized to [height, width].")
    color_mode: Literal["grayscale", "rgb"] = Field("grayscale", description="Channels.")
    positive_class: str | None = Field(
        None, description="Class folder counted as positive (default: the second, "
                          "alphabetically, when there are two).")

    @field_validator("image_size")
    @classmethod
    def _two(cls, value: list[int]) -> list[int]:
        return _size_list(value, 2)


@DATASETS.register("image-folder", config=ImageFolderData, tags=IMAGE_TAGS,
                   summary="PNG/JPEG images, one sub-folder per class")
def load_image_folder_data(cfg: ImageFolderData, *, problem: str) -> ImageDataset:
    from medml_cli.imaging.image_folder import load_image_folder

    notes: list[str] = []
    images, labels, class_names, paths = load_image_folder(
        cfg.root, tuple(cfg.image_size), cfg.color_mode, cfg.positive_class, notes=notes)
    root = cfg.root.resolve()
    ids = np.asarray([str(Path(p).resolve().relative_to(root)) for p in paths])
    return ImageDataset(
        images=images, labels=np.asarray(labels, dtype=int), ids=ids,
        provenance=Provenance(source=f"image folder {cfg.root.name}",
                              files=_hash_files([Path(p) for p in paths])),
        intensity=("unit", 0.0, 1.0), spatial_dims=2,
        class_names=(class_names[0], class_names[1]), notes=notes,
    ).check(str(cfg.root))


# --------------------------------------------------------------------------- .npy arrays
class NumpyArraysData(FileDataConfig):
    """A `.npy` image array opened memory-mapped (training streams it from disk) and a
    labels CSV. The way to train on more images than fit in memory."""

    type: Literal["numpy-arrays"]
    images: Path = Field(description=".npy of shape (N, H, W[, C]) or (N, D, H, W[, C]).")
    labels: Path = Field(description="CSV with a 0/1 `label` column, row i for image i; "
                                     "optional `id` and `patient` columns.")
    spatial_dims: Literal[2, 3] = Field(2, description="2 for slices, 3 for volumes.")
    intensity: Literal["hu", "uint8", "unit"] = Field("hu", description="How to normalise.")
    hu_window: list[float] = HU_WINDOW_FIELD


@DATASETS.register("numpy-arrays", config=NumpyArraysData, tags=IMAGE_TAGS,
                   summary=".npy image array (memory-mapped, streamed) + labels CSV")
def load_numpy_arrays(cfg: NumpyArraysData, *, problem: str) -> ImageDataset:
    for path, role in ((cfg.images, "`data.images`"), (cfg.labels, "`data.labels`")):
        if not path.exists() and not path.is_symlink():
            raise DataError(f"file not found: {path}.", "check the paths under `data`.")
        require_regular_file(path, role)  # np.load / read_csv of a FIFO would never return
    try:
        images = np.load(cfg.images, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"{cfg.images.name} is not a readable .npy array ({exc}).",
                        "save the images with numpy.save (no object arrays).") from None
    # ids and patients are text: "00002" must not become 2
    table = pd.read_csv(cfg.labels, dtype={"id": str, "patient": str})
    if "label" not in table.columns:
        raise DataError(f"{cfg.labels.name} has no `label` column "
                        f"(columns: {', '.join(table.columns)}).", "add one 0/1 per image.")
    if images.ndim not in (cfg.spatial_dims + 1, cfg.spatial_dims + 2):
        raise DataError(f"{cfg.images.name} has shape {images.shape}, which is not "
                        f"(N, {'D, ' if cfg.spatial_dims == 3 else ''}H, W[, C]).",
                        "check `data.spatial_dims` and the array.")
    intensity = hu_intensity(cfg.hu_window) if cfg.intensity == "hu" else (
        ("uint8", 0.0, 255.0) if cfg.intensity == "uint8" else ("unit", 0.0, 1.0))
    ids = table["id"].astype(str).to_numpy() if "id" in table else \
        np.asarray([str(i) for i in range(len(table))])
    groups = table["patient"].astype(str).to_numpy() if "patient" in table else None
    return ImageDataset(
        images=images, labels=pd.to_numeric(table["label"], errors="coerce").fillna(-1)
        .astype(int).to_numpy(), ids=ids, groups=groups,
        provenance=Provenance(source=f"arrays {cfg.images.name}",
                              files=_hash_files([cfg.images, cfg.labels])),
        intensity=intensity, spatial_dims=cfg.spatial_dims,
    ).check(str(cfg.images))
