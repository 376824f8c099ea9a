"""CT volumes as NIfTI (``.nii``, ``.nii.gz``) or MetaImage (``.mhd``) files plus a labels CSV.

The CSV has one row per volume: ``file`` (the file name, or its path relative to ``root``),
a 0/1 ``label`` (or the column named by ``label_column``) and optionally ``patient`` (for
grouped splits; default: one patient per file). Each volume is read with SimpleITK in HU, its
axes put in the DICOM reader's layout, and resized to ``volume_shape`` for 3D models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from medml_cli.data.file_config import FileDataConfig
from medml_cli.data.formats.paths import require_regular_file
from medml_cli.data.image_base import (
    HU_WINDOW_FIELD,
    IMAGE_TAGS,
    ImageDataset,
    _hash_files,
    _size_list,
    hu_intensity,
    resize_stack,
)
from medml_cli.errors import DataError
from medml_cli.registry import DATASETS
from medml_cli.schemas import Provenance


class NiftiVolumesData(FileDataConfig):
    """A folder of CT volumes (.nii, .nii.gz or .mhd) labelled per volume from a CSV."""

    type: Literal["nifti-volumes"]
    root: Path = Field(description="Folder holding the volume files.")
    labels: Path = Field(description="CSV: `file` (name or path under root), 0/1 `label`, "
                                     "optional `patient`.")
    label_column: str | None = Field(None, description="Label column name, if not `label`.")
    volume_shape: list[int] = Field(default_factory=lambda: [32, 64, 64],
                                    description="Volumes are resized to [depth, height, "
                                                "width].")
    hu_window: list[float] = HU_WINDOW_FIELD

    @field_validator("volume_shape")
    @classmethod
    def _three(cls, value: list[int]) -> list[int]:
        return _size_list(value, 3)


def _read_labels(cfg: NiftiVolumesData) -> pd.DataFrame:
    path = cfg.labels
    if not path.exists() and not path.is_symlink():
        raise DataError(f"the labels CSV {path} does not exist.", "check `data.labels`.")
    require_regular_file(path, "`data.labels`")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path.name} could not be read as CSV ({exc}).",
                        "save it as a UTF-8 CSV with a header row.", source=str(path)) from None
    table.columns = [str(c).strip() for c in table.columns]
    label = cfg.label_column or "label"
    if "file" not in table.columns or label not in table.columns:
        raise DataError(
            f"{path.name} needs a `file` column (volume file names) and a `{label}` column "
            f"of 0/1; it has {', '.join(table.columns) or 'no columns'}.",
            "add them (one row per volume).", source=str(path))
    values = pd.to_numeric(table[label].str.strip(), errors="coerce")
    bad = ~values.isin([0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"the `{label}` column must hold 0 or 1 on every row; data row {row + 1} holds "
            f"{table[label].iloc[row]!r}.", "fill in every row with 0 or 1.", source=str(path))
    table["_label"] = values.astype(int)
    table["file"] = table["file"].str.strip()
    duplicated = table["file"].duplicated()
    if duplicated.any():
        name = table["file"][duplicated].iloc[0]
        raise DataError(f"'{name}' is listed twice in {path.name}.", "keep one row per volume.",
                        source=str(path))
    return table


def _volume_path(root: Path, name: str, source: str) -> Path:
    from medml_cli.data.formats.nifti import VOLUME_SUFFIXES, is_volume_file

    candidate = (root / name).resolve()
    if not candidate.is_relative_to(root.resolve()):
        raise DataError(f"the file '{name}' lies outside data.root.",
                        "list files by their name or path inside data.root.", source=source)
    if not candidate.exists():
        raise DataError(f"the volume '{name}' listed in the labels CSV is not in {root}.",
                        "check the `file` column against the folder's contents.", source=source)
    if not is_volume_file(candidate):
        raise DataError(f"'{name}' is not a volume file ({', '.join(VOLUME_SUFFIXES)}).",
                        "convert DICOM series with `dcm2niix -z y`, or use the dicom-series "
                        "source.", source=source)
    return candidate


@DATASETS.register("nifti-volumes", config=NiftiVolumesData, tags=IMAGE_TAGS,
                   summary="CT volumes (.nii/.nii.gz/.mhd, SimpleITK, HU) + labels CSV")
def load_nifti_volumes(cfg: NiftiVolumesData, *, problem: str) -> ImageDataset:
    """Load labelled CT volumes (.nii, .nii.gz, .mhd) from a folder."""
    from medml_cli.data.formats.nifti import hu_warning, read_volume_file

    if not cfg.root.is_dir():
        raise DataError(f"{cfg.root} is not a folder.",
                        "point `data.root` at the folder holding the volume files.")
    table = _read_labels(cfg)
    source = str(cfg.labels)
    volumes, files, notes = [], [], []
    for name in table["file"]:
        path = _volume_path(cfg.root, name, source)
        volume = read_volume_file(path)
        warning = hu_warning(volume, name)
        if warning:
            notes.append(warning)
        volumes.append(resize_stack(volume.hu[None], tuple(cfg.volume_shape))[0])
        files.append(path)
        if path.suffix.lower() == ".mhd":  # the voxels are in the .raw beside it
            raw = path.with_suffix(".raw")
            if raw.is_file():
                files.append(raw)
    ids = table["file"].to_numpy().astype(str)
    groups = (table["patient"].astype(str).str.strip().to_numpy() if "patient" in table
              else ids)
    return ImageDataset(
        images=np.stack(volumes).astype(np.float32), labels=table["_label"].to_numpy(),
        ids=ids, groups=np.asarray(groups),
        provenance=Provenance(source=f"CT volumes under {cfg.root.name}",
                              files=_hash_files([*files, cfg.labels])),
        intensity=hu_intensity(cfg.hu_window), spatial_dims=3, notes=notes,
    ).check(str(cfg.root))
