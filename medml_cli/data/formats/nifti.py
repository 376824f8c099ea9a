"""NIfTI (``.nii``, ``.nii.gz``) CT volumes, read with SimpleITK into Hounsfield units.

NIfTI carries no modality: a file given to a CT model is taken to be CT in HU (as written by
``dcm2niix``, which applies the DICOM rescale). SimpleITK applies the NIfTI ``scl_slope`` /
``scl_inter`` and maps the file's RAS affine to ITK's LPS world; the voxels are then put in
the DICOM reader's layout with :func:`~medml_cli.data.formats.sitk_volume.orient_lps`, so the
same scan read from DICOM or from NIfTI gives the same array.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medml_cli.data.formats.paths import require_regular_file
from medml_cli.data.formats.sitk_volume import orient_lps, read_sitk_image, sitk_to_volume
from medml_cli.data.formats.types import CtVolume
from medml_cli.errors import DataError

NIFTI_SUFFIXES = (".nii", ".nii.gz")
#: Volume files medml reads with SimpleITK (MetaImage headers and NIfTI).
VOLUME_SUFFIXES = (".mhd", *NIFTI_SUFFIXES)
#: A CT of a body includes air (about -1000 HU); a volume whose lowest value is above this is
#: probably not in HU (an MR, a mask, or stored values without the rescale).
_AIR_HU_CEILING = -500.0


def is_nifti(path: Path | str) -> bool:
    """True for a .nii or .nii.gz file name."""
    name = Path(path).name.lower()
    return name.endswith(NIFTI_SUFFIXES)


def is_volume_file(path: Path | str) -> bool:
    """True for a volume file medml reads with SimpleITK (.mhd, .nii, .nii.gz)."""
    name = Path(path).name.lower()
    return name.endswith(VOLUME_SUFFIXES)


def volume_stem(path: Path | str) -> str:
    """File name without ``.nii.gz`` / ``.nii`` / ``.mhd``."""
    name = Path(path).name
    for suffix in sorted(VOLUME_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def read_nifti(path: Path | str, *, reorient: bool = True) -> CtVolume:
    """A NIfTI CT volume as a :class:`CtVolume` (HU, geometry in z, y, x; LPS-aligned axes
    unless ``reorient`` is False)."""
    path = Path(path)
    source = str(path)
    if not path.exists() and not path.is_symlink():
        raise DataError(f"the volume {path} does not exist.", "check the path.", source=source)
    require_regular_file(path, "the NIfTI volume")  # a FIFO named .nii would block the read
    if not is_nifti(path):
        raise DataError(f"{path.name} is not a NIfTI file (.nii or .nii.gz).",
                        "give a .nii or .nii.gz volume.", source=source)
    image = read_sitk_image(path, "NIfTI")
    if reorient and image.GetDimension() == 3:
        image = orient_lps(image)
    return sitk_to_volume(image, path)


def read_volume_file(path: Path | str, *, reorient: bool = True) -> CtVolume:
    """A ``.mhd`` or ``.nii``/``.nii.gz`` CT volume, axes LPS-aligned (see ``orient_lps``)."""
    path = Path(path)
    if is_nifti(path):
        return read_nifti(path, reorient=reorient)
    from medml_cli.data.formats.mhd import read_mhd

    return read_mhd(path, reorient=reorient)


def hu_warning(volume: CtVolume, name: str) -> str:
    """'' or why the volume's values do not look like CT in Hounsfield units."""
    if volume.hu.size == 0:
        return ""
    low, high = float(np.min(volume.hu)), float(np.max(volume.hu))
    if low > _AIR_HU_CEILING:
        return (f"{name}: its values run from {low:g} to {high:g}, with no voxel of air "
                "(about -1000 HU); a CT volume in Hounsfield units normally has some, so this "
                "may not be CT in HU (an MR, a mask, or values stored without the rescale)")
    return ""
