"""A folder of 2-D images, one sub-folder per class: the `image-folder` data source."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from medml_cli.data.file_config import FileDataConfig
from medml_cli.data.image_base import (
    MULTICLASS_IMAGE_TAGS,
    ImageDataset,
    _hash_files,
    _size_list,
)
from medml_cli.registry import DATASETS
from medml_cli.schemas import Provenance


class ImageFolderData(FileDataConfig):
    """PNG/JPEG images in one sub-folder per class, as Keras `flow_from_directory` reads.
    More than two class folders give k classes (sorted by name) unless `positive_class`
    binarises them."""

    type: Literal["image-folder"]
    root: Path = Field(description="Folder with one sub-folder per class.")
    image_size: list[int] = Field(default_factory=lambda: [128, 128],
                                  description="Images are resized to [height, width].")
    color_mode: Literal["grayscale", "rgb"] = Field("grayscale", description="Channels.")
    positive_class: str | None = Field(
        None, description="Class folder counted as positive, all others negative (default: "
                          "the second, alphabetically, when there are two; with more, each "
                          "folder is its own class).")

    @field_validator("image_size")
    @classmethod
    def _two(cls, value: list[int]) -> list[int]:
        return _size_list(value, 2)


@DATASETS.register("image-folder", config=ImageFolderData, tags=MULTICLASS_IMAGE_TAGS,
                   summary="PNG/JPEG images, one sub-folder per class")
def load_image_folder_data(cfg: ImageFolderData, *, problem: str) -> ImageDataset:
    """Load a folder of class sub-folders of image files."""
    from medml_cli.data.formats.image_files import load_image_folder

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
        class_names=tuple(class_names), notes=notes,
    ).check(str(cfg.root))
