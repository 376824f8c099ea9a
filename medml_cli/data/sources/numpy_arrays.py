"""Images and labels from `.npy` files: the `numpy-arrays` data source."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from medml_cli.data.file_config import FileDataConfig
from medml_cli.data.formats.paths import require_regular_file
from medml_cli.data.image_base import (
    HU_WINDOW_FIELD,
    MULTICLASS_IMAGE_TAGS,
    ImageDataset,
    _hash_files,
    hu_intensity,
)
from medml_cli.errors import DataError
from medml_cli.registry import DATASETS
from medml_cli.schemas import Provenance


class NumpyArraysData(FileDataConfig):
    """A `.npy` image array opened memory-mapped (training streams it from disk) and a
    labels CSV. The way to train on more images than fit in memory."""

    type: Literal["numpy-arrays"]
    images: Path = Field(description=".npy of shape (N, H, W[, C]) or (N, D, H, W[, C]).")
    labels: Path = Field(description="CSV with a `label` column, row i for image i: 0/1, or "
                                     "k > 2 classes (integers or names, coded in sorted "
                                     "order); optional `id` and `patient` columns.")
    spatial_dims: Literal[2, 3] = Field(2, description="2 for slices, 3 for volumes.")
    intensity: Literal["hu", "uint8", "unit"] = Field("hu", description="How to normalise.")
    hu_window: list[float] = HU_WINDOW_FIELD


@DATASETS.register("numpy-arrays", config=NumpyArraysData, tags=MULTICLASS_IMAGE_TAGS,
                   summary=".npy image array (memory-mapped, streamed) + labels CSV")
def load_numpy_arrays(cfg: NumpyArraysData, *, problem: str) -> ImageDataset:
    """Load images and labels from the configured array and label files."""
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
    labels, names = _labels(table["label"])
    return ImageDataset(
        images=images, labels=labels, ids=ids, groups=groups,
        provenance=Provenance(source=f"arrays {cfg.images.name}",
                              files=_hash_files([cfg.images, cfg.labels])),
        intensity=intensity, spatial_dims=cfg.spatial_dims,
        **({} if names is None else {"class_names": names}),
    ).check(str(cfg.images))


def _labels(column: pd.Series) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """Codes and, for k > 2 classes, their names.

    Up to two distinct values: the 0/1 labels as they are (anything else is refused by the
    dataset check, as before). More: non-negative integers or names, coded 0..k-1 in sorted
    order and named by their value.
    """
    numbers = pd.to_numeric(column, errors="coerce")
    if not column.isna().any() and column.nunique() > 2:
        if not numbers.isna().any():
            values = numbers.to_numpy(dtype=float)
            if np.all(values == np.round(values)) and values.min() >= 0:
                classes = np.unique(values.astype(np.int64))
                codes = np.searchsorted(classes, values.astype(np.int64))
                return codes.astype(int), tuple(str(c) for c in classes)
        elif numbers.isna().all():
            text = column.astype(str).str.strip()
            classes = np.unique(text.to_numpy())
            if len(classes) > 2 and all(classes):
                codes = np.searchsorted(classes, text.to_numpy())
                return codes.astype(int), tuple(str(c) for c in classes)
    return numbers.fillna(-1).astype(int).to_numpy(), None
