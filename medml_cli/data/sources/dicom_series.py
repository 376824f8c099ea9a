"""The `dicom-series` data source: DICOM CT series labelled per slice (2D) or per series (3D)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from medml_cli.data.file_config import FileDataConfig
from medml_cli.data.formats.paths import require_regular_file
from medml_cli.data.image_base import (
    ALLOW_MODALITIES_FIELD,
    HU_WINDOW_FIELD,
    IMAGE_TAGS,
    ImageDataset,
    _hash_files,
    _size_list,
    hu_intensity,
    modality_codes,
    modality_note,
    resize_stack,
)
from medml_cli.errors import DataError
from medml_cli.registry import DATASETS
from medml_cli.schemas import Provenance


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


@DATASETS.register("dicom-series", config=DicomSeriesData, tags=IMAGE_TAGS,
                   summary="DICOM CT series, slice labels from a CSV (pydicom, HU)")
def load_dicom_series(cfg: DicomSeriesData, *, problem: str) -> ImageDataset:
    """Load labelled CT slices, or whole series when `level: series`, from DICOM folders."""
    if cfg.level == "series":
        return _load_dicom_volumes(cfg)
    from medml_cli.data.formats.dicom import read_dicom_series, read_slice_labels

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
    from medml_cli.data.formats.dicom import read_dicom_series

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
