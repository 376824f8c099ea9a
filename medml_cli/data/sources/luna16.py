"""LUNA16 candidate patches from MetaImage (.mhd/.raw) CT volumes: the `luna16` data source."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from medml_cli.data.file_config import FileDataConfig
from medml_cli.data.image_base import (
    HU_WINDOW_FIELD,
    IMAGE_TAGS,
    ImageDataset,
    _hash_files,
    _size_list,
    hu_intensity,
)
from medml_cli.registry import DATASETS
from medml_cli.schemas import Provenance


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
    """Load LUNA16 candidate patches cut from the .mhd CT volumes."""
    from medml_cli.data.formats.mhd import load_luna16_candidates

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
