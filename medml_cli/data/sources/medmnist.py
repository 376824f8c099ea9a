"""MedMNIST-layout ``.npz`` files (NoduleMNIST3D, PneumoniaMNIST, ...), with their own splits."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from medml_cli.data.file_config import FileDataConfig
from medml_cli.data.formats.paths import sha256_file
from medml_cli.data.image_base import MULTICLASS_IMAGE_TAGS, ImageDataset
from medml_cli.registry import DATASETS
from medml_cli.schemas import Provenance


class MedmnistData(FileDataConfig):
    """A MedMNIST archive: train/val/test images and labels; the file's splits are used.
    A multi-class set loads as k classes unless `positive_classes` binarises it."""

    type: Literal["medmnist-npz"]
    path: Path = Field(description="The .npz file; relative paths resolve against the config.")
    positive_classes: list[int] | None = Field(
        None, description="For multi-class sets: labels counted as positive (others "
                          "negative); without it all k classes are kept."
    )
    use_file_splits: bool = Field(True, description="Use the file's train/val/test splits.")


@DATASETS.register(
    "medmnist-npz",
    config=MedmnistData,
    summary="MedMNIST .npz (e.g. NoduleMNIST3D, PneumoniaMNIST) with its own splits",
    tags=MULTICLASS_IMAGE_TAGS,
)
def load_medmnist(cfg: MedmnistData, *, problem: str) -> ImageDataset:
    """Load a MedMNIST .npz, keeping its train/val/test split."""
    from medml_cli.data.formats.npz import load_medmnist_npz_with_names

    parts, names = load_medmnist_npz_with_names(cfg.path, cfg.positive_classes)
    images, labels, ids, splits = [], [], [], {}
    start = 0
    for name in ("train", "val", "test"):
        if name not in parts:
            continue
        x, y = parts[name]
        images.append(x)
        labels.append(np.asarray(y, dtype=int).reshape(-1))
        ids.extend(f"{name}-{i:05d}" for i in range(len(y)))
        splits[name] = np.arange(start, start + len(y))
        start += len(y)
    stacked = np.concatenate(images)
    spatial_dims = 3 if stacked.ndim == 4 and stacked.shape[-1] not in (1, 3) else 2
    if stacked.ndim == 5:
        spatial_dims = 3
    extra = {} if names is None else {"class_names": names}  # binary keeps the default
    return ImageDataset(
        images=stacked, labels=np.concatenate(labels), ids=np.asarray(ids),
        provenance=Provenance(source=f"MedMNIST file {cfg.path.name}",
                              licence="see the MedMNIST dataset's licence (CC BY 4.0 for most)",
                              citation="Yang J. et al. MedMNIST v2. Scientific Data 10, 41 (2023)",
                              files={cfg.path.name: sha256_file(cfg.path)}),
        intensity=("uint8", 0.0, 255.0) if stacked.dtype == np.uint8 else ("unit", 0.0, 1.0),
        spatial_dims=spatial_dims,
        splits=splits if cfg.use_file_splits else None,
        **extra,
    ).check(str(cfg.path))
