"""SimpleITK images (MetaImage, NIfTI) to :class:`CtVolume`, with one geometry convention.

SimpleITK reports geometry in ITK's LPS world and (x, y, z) order; ``GetArrayFromImage``
returns the voxels as (z, y, x). :func:`sitk_to_volume` turns both into the (z, y, x)
convention of :class:`CtVolume`, so ``world_zyx = origin + direction @ (spacing * index)``.

:func:`orient_lps` permutes and flips the voxel axes (no interpolation) so that the index
axes point as nearly as possible along +x (patient left), +y (posterior) and +z (superior):
the layout the DICOM reader produces for an axial series and the one LUNA16 patches are
sampled in. NIfTI files are usually stored the other way round in x and y (RAS, as written by
dcm2niix or nibabel); without this a model trained on DICOM would see them mirrored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medml_cli.data.formats.types import CtVolume
from medml_cli.errors import DataError


def orient_lps(image: Any) -> Any:
    """``image`` with its axes reordered/flipped to the nearest LPS-aligned layout."""
    import SimpleITK as sitk

    # DICOMOrient names where each index axis points *to*: "LPS" = identity direction.
    return sitk.DICOMOrient(image, "LPS")


def sitk_to_volume(image: Any, path: Path, *, modality: str = "CT") -> CtVolume:
    """A 3-D scalar SimpleITK image as a CtVolume (values as stored: HU for CT)."""
    import SimpleITK as sitk

    source = str(path)
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise DataError(
            f"{path.name} has {image.GetNumberOfComponentsPerPixel()} values per voxel (a "
            "colour or vector image); a CT volume has one value (HU) per voxel.",
            "give a scalar CT volume.", source=source)
    if image.GetDimension() == 4 and image.GetSize()[3] == 1:
        size = list(image.GetSize())
        image = sitk.Extract(image, [*size[:3], 0], [0, 0, 0, 0])  # a 3-D volume saved as 4-D
    if image.GetDimension() != 3:
        raise DataError(
            f"{path.name} is a {image.GetDimension()}-D image of size {image.GetSize()}; a CT "
            "volume must be 3-D.",
            "give a 3-D CT volume (a 4-D file is a time series or several volumes: split it).",
            source=source,
        )
    hu = sitk.GetArrayFromImage(image).astype(np.float32, copy=False)  # already (z, y, x)
    spacing_xyz = np.asarray(image.GetSpacing(), dtype=np.float64)
    origin_xyz = np.asarray(image.GetOrigin(), dtype=np.float64)
    direction_xyz = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    direction_zyx = direction_xyz[::-1, ::-1]
    # World position of each slice along the slice axis, like DICOM's slice positions.
    slice_axis = direction_xyz[:, 2]
    first = float(np.dot(slice_axis, origin_xyz))
    positions = [first + i * float(spacing_xyz[2]) for i in range(hu.shape[0])]
    return CtVolume(
        hu=hu,
        spacing=tuple(float(s) for s in spacing_xyz[::-1]),  # type: ignore[arg-type]
        origin=tuple(float(o) for o in origin_xyz[::-1]),  # type: ignore[arg-type]
        slice_positions=positions,
        files=[path.name],
        direction=tuple(tuple(float(v) for v in row) for row in direction_zyx),
        modality=modality,
    )


def read_sitk_image(path: Path, what: str) -> Any:
    """``sitk.ReadImage`` with every failure as a DataError naming the file."""
    import SimpleITK as sitk

    try:
        return sitk.ReadImage(str(path))
    except Exception as exc:  # SimpleITK raises RuntimeError; anything else is also "unreadable"
        text = str(exc).strip()
        first = text.splitlines()[-1] if text else type(exc).__name__
        raise DataError(
            f"SimpleITK could not read {path.name} as {what}: {first[:300]}",
            "the file is probably truncated or corrupt (or not what its extension says); "
            "export or download it again.",
            source=str(path),
        ) from exc
