"""The two containers the imaging readers return: a CT volume and a set of labelled patches."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_IDENTITY = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


@dataclass(repr=False)
class CtVolume:
    """Pixel data and geometry of one CT series; deliberately nothing about the patient.

    All geometry is in (z, y, x) order, in millimetres:

    - ``hu``: float32 array (z, y, x) of Hounsfield units (rescale slope and intercept
      applied);
    - ``spacing``: voxel size (z, y, x);
    - ``origin``: world position of voxel (0, 0, 0), given as (z, y, x);
    - ``direction``: 3x3 direction cosines in (z, y, x) order, so that
      ``world_zyx = origin + direction @ (spacing * index_zyx)``;
    - ``slice_positions``: position of each slice along the slice normal;
    - ``sop_instance_uids`` / ``files``: per slice, for DICOM input (file names only).
    """

    hu: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    slice_positions: list[float]
    sop_instance_uids: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    direction: tuple[tuple[float, float, float], ...] = _IDENTITY
    modality: str = "CT"
    #: Files in the folder that were not image slices (DICOMDIR, reports, ...), by name.
    skipped: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the HU array."""
        return tuple(self.hu.shape)

    def __repr__(self) -> str:
        # Compact on purpose: printing a volume must not dump half a million numbers.
        spacing = ", ".join(f"{s:.4g}" for s in self.spacing)
        origin = ", ".join(f"{o:.4g}" for o in self.origin)
        return (
            f"CtVolume(shape={self.shape}, spacing=({spacing}), origin=({origin}), "
            f"modality={self.modality!r}, n_files={len(self.files)}, n_skipped={len(self.skipped)})"
        )


@dataclass(repr=False)
class PatchSet:
    """Labelled image patches (or slices) ready for a CNN.

    ``images`` is float32 (N, *patch_shape) in Hounsfield units (or [0, 1] intensities for
    non-CT sources), ``labels`` int (N,) of 0/1, ``groups`` str (N,) with the patient (or
    series) each patch came from, for grouped splits, and ``ids`` str (N,) unique per patch.
    """

    images: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    ids: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.images)
        lengths = {len(self.labels), len(self.groups), len(self.ids)}
        if lengths != {n}:
            raise ValueError(
                f"PatchSet parts differ in length: images {n}, labels {len(self.labels)}, "
                f"groups {len(self.groups)}, ids {len(self.ids)}"
            )

    @property
    def n_samples(self) -> int:
        """Number of patches."""
        return len(self.labels)

    def __repr__(self) -> str:
        n_pos = int(np.sum(self.labels == 1)) if self.n_samples else 0
        return (
            f"PatchSet(n={self.n_samples}, patch_shape={tuple(self.images.shape[1:])}, "
            f"positives={n_pos}, groups={len(np.unique(self.groups))})"
        )
