"""LUNA16: MetaImage (.mhd/.raw) chest CTs and candidate patches around world coordinates.

LUNA16 ships ``subset0`` ... ``subset9`` folders of ``<seriesuid>.mhd`` + ``.raw`` files and a
``candidates.csv`` (or ``candidates_V2.csv``) with ``seriesuid,coordX,coordY,coordZ,class``,
where the coordinates are world millimetres in (x, y, z) order and class 1 is a nodule.

Conventions here: arrays are (z, y, x); a :class:`CtVolume` stores spacing, origin and the
direction matrix in (z, y, x) order too. Functions that take LUNA16 / ITK values directly
(:func:`world_to_voxel`) take them in the ITK (x, y, z) order and say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medml_cli.data.formats.hu import AIR_HU
from medml_cli.data.formats.paths import require_regular_file
from medml_cli.data.formats.sitk_volume import orient_lps, read_sitk_image, sitk_to_volume
from medml_cli.data.formats.types import CtVolume, PatchSet
from medml_cli.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

CANDIDATE_COLUMNS = ("seriesuid", "coordX", "coordY", "coordZ", "class")
#: Names tried, in order, when no candidates CSV is given.
CANDIDATE_FILE_NAMES = ("candidates_V2.csv", "candidates.csv")


def _mhd_header(path: Path) -> dict[str, str]:
    header: dict[str, str] = {}
    try:
        with open(path, encoding="latin-1") as handle:
            for line in handle:
                if "=" in line:
                    name, _, value = line.partition("=")
                    header[name.strip()] = value.strip()
    except OSError as exc:
        raise DataError(
            f"the MetaImage header {path.name} cannot be read ({exc.strerror or exc}).",
            "check that the file exists and is readable.",
            source=str(path),
        ) from exc
    return header


def read_mhd(path: Path | str, *, reorient: bool = False) -> CtVolume:
    """Read a MetaImage volume with SimpleITK into a :class:`CtVolume` (geometry in z, y, x).

    The voxels are kept as stored (LUNA16 patches are sampled in world coordinates, so the
    stored layout does not matter there); ``reorient=True`` permutes/flips them to the
    LPS-aligned layout of the DICOM reader, as ``medml predict`` does before tiling.
    """
    path = Path(path)
    source = str(path)
    if not path.exists() and not path.is_symlink():
        raise DataError(f"the volume {path} does not exist.", "check the path.", source=source)
    require_regular_file(path, "the .mhd header")
    header = _mhd_header(path)
    data_file = header.get("ElementDataFile")
    if not data_file:
        raise DataError(
            f"{path.name} is not a MetaImage header (it has no ElementDataFile line).",
            "give the .mhd file of a LUNA16 volume, or re-download it.",
            source=source,
        )
    # "LOCAL" means the pixels follow the header in the same file; "LIST" and patterns
    # (several files) are left to SimpleITK.
    if (
        data_file.upper() != "LOCAL"
        and not data_file.upper().startswith("LIST")
        and "%" not in data_file
    ):
        raw = path.parent / data_file
        if raw.exists():  # SimpleITK would read a FIFO or /dev/zero named .raw forever
            require_regular_file(raw, f"the voxel file of {path.name}")
        if not raw.is_file():
            raise DataError(
                f"{path.name} stores its voxels in '{data_file}', which is missing from "
                f"{path.parent}.",
                "copy the .raw file next to its .mhd header (LUNA16 ships them together in "
                "each subset folder; an interrupted unzip is the usual cause).",
                source=source,
            )
    image = read_sitk_image(path, "MetaImage")
    if reorient and image.GetDimension() == 3:
        image = orient_lps(image)
    return sitk_to_volume(image, path)


def world_to_voxel(
    world_xyz: Sequence[float] | np.ndarray,
    origin_xyz: Sequence[float] | np.ndarray,
    spacing_xyz: Sequence[float] | np.ndarray,
    direction: Sequence[float] | np.ndarray | None = None,
) -> np.ndarray:
    """World millimetres (x, y, z) to continuous voxel indices in (z, y, x) order.

    ``origin_xyz``, ``spacing_xyz`` and ``direction`` are as ITK / the .mhd header give them:
    ``direction`` is the 3x3 matrix (or its 9 values row by row) whose columns are the world
    directions of the x, y and z index axes; None means identity. ``world_xyz`` may be one
    point (3,) or many (N, 3); the result has the same leading shape.
    """
    world = np.asarray(world_xyz, dtype=np.float64)
    origin = np.asarray(origin_xyz, dtype=np.float64)
    spacing = np.asarray(spacing_xyz, dtype=np.float64)
    matrix = (
        np.eye(3) if direction is None else np.asarray(direction, dtype=np.float64).reshape(3, 3)
    )
    # world = origin + D @ (spacing * index)  =>  index = (D^-1 @ (world - origin)) / spacing
    index_xyz = np.linalg.solve(matrix, (world - origin).reshape(-1, 3).T).T / spacing
    return index_xyz[:, ::-1].reshape(world.shape)


def resample_isotropic(
    volume: np.ndarray, spacing_zyx: Sequence[float], new_spacing: float = 1.0
) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Resample a (z, y, x) volume to ~``new_spacing`` mm voxels with linear interpolation.

    Returns the resampled volume and its exact spacing: ``scipy.ndimage.zoom`` keeps the
    first and last voxel centres fixed, so the achieved spacing is
    ``old * (n_old - 1) / (n_new - 1)``, which differs slightly from ``new_spacing``.
    Voxel ``i`` of the output lies at input index ``i * new / old`` (of that exact spacing).
    """
    from scipy import ndimage

    if new_spacing <= 0:
        raise ValueError(f"new_spacing must be positive, got {new_spacing}")
    arr = np.asarray(volume, dtype=np.float32)
    spacing = np.asarray(spacing_zyx, dtype=np.float64)
    out_shape = np.maximum(1, np.round(np.asarray(arr.shape) * spacing / new_spacing)).astype(int)
    factors = out_shape / np.asarray(arr.shape)
    out = ndimage.zoom(arr, factors, order=1, mode="nearest")
    achieved = tuple(
        float(s * (n_in - 1) / (n_out - 1)) if n_out > 1 else float(s * n_in)
        for s, n_in, n_out in zip(spacing, arr.shape, out.shape, strict=True)
    )
    return out, achieved  # type: ignore[return-value]


def extract_patch(
    volume: np.ndarray,
    center_zyx: Sequence[float],
    size_zyx: Sequence[int],
    pad_value: float = AIR_HU,
) -> np.ndarray:
    """Cut a ``size_zyx`` box around ``center_zyx`` (rounded to a voxel), padding at borders.

    The centre voxel sits at index ``size // 2`` of each axis of the patch. Parts of the box
    outside the volume are filled with ``pad_value`` (air by default), so a candidate near
    the edge of the scan still gives a full-size patch.
    """
    arr = np.asarray(volume)
    size = [int(s) for s in size_zyx]
    if len(size) != arr.ndim or len(center_zyx) != arr.ndim:
        raise ValueError(
            f"centre {tuple(center_zyx)} and size {tuple(size)} must have one value per axis "
            f"of the {arr.ndim}-D volume"
        )
    out = np.full(size, pad_value, dtype=arr.dtype)
    src, dst = [], []
    for c, s, n in zip(center_zyx, size, arr.shape, strict=True):
        start = int(np.floor(float(c) + 0.5)) - s // 2
        lo, hi = max(start, 0), min(start + s, n)
        if hi <= lo:  # box entirely outside the volume: all padding
            return out
        src.append(slice(lo, hi))
        dst.append(slice(lo - start, hi - start))
    out[tuple(dst)] = arr[tuple(src)]
    return out


def _sample_patches(
    hu: np.ndarray,
    centres_world_xyz: np.ndarray,
    origin_xyz: np.ndarray,
    spacing_xyz: np.ndarray,
    direction_xyz: np.ndarray,
    patch_size: tuple[int, int, int],
    spacing_mm: float,
) -> np.ndarray:
    """Patches on a world-aligned grid of ``spacing_mm`` voxels around each centre.

    Equivalent to resample_isotropic + extract_patch, but samples only the voxels the patches
    need (a whole LUNA16 scan at 1 mm is ~100M voxels) and keeps the candidate at the exact
    patch centre instead of rounding it to the nearest resampled voxel. Patch axes follow
    world z, y, x, so a scan stored with a flipped direction gives the same orientation.
    """
    from scipy import ndimage

    size = np.asarray(patch_size)
    # Offsets in mm, (z, y, x) patch order, with the candidate at index size // 2.
    axes = [(np.arange(n) - n // 2) * spacing_mm for n in size]
    oz, oy, ox = np.meshgrid(*axes, indexing="ij")
    offsets_xyz = np.stack([ox.ravel(), oy.ravel(), oz.ravel()], axis=1)
    out = np.empty((len(centres_world_xyz), *patch_size), dtype=np.float32)
    for i, centre in enumerate(centres_world_xyz):
        coords_zyx = world_to_voxel(centre + offsets_xyz, origin_xyz, spacing_xyz, direction_xyz)
        sampled = ndimage.map_coordinates(
            hu, coords_zyx.T, order=1, mode="constant", cval=AIR_HU, prefilter=False
        )
        out[i] = sampled.reshape(patch_size)
    return out


def _find_candidates_csv(root: Path) -> Path:
    for folder in (root, root / "CSVFILES", root / "csvfiles"):
        for name in CANDIDATE_FILE_NAMES:
            if (folder / name).is_file():
                return folder / name
    raise DataError(
        f"no candidates file ({' or '.join(CANDIDATE_FILE_NAMES)}) was found in {root} "
        "or its CSVFILES folder.",
        "pass the path of LUNA16's candidates.csv explicitly, or copy it into the root folder.",
        source=str(root),
    )


def _read_candidates(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.exists() and not path.is_symlink():
        raise DataError(
            f"the candidates file {path} does not exist.", "check the path.", source=str(path)
        )
    require_regular_file(path, "`data.candidates`")
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(
            f"the candidates file could not be read as CSV ({exc}).",
            "give LUNA16's candidates.csv unchanged.",
            source=str(path),
        ) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in CANDIDATE_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"the candidates file lacks the column(s) {', '.join(missing)} "
            f"(found: {', '.join(map(str, frame.columns[:20]))}).",
            f"it needs {', '.join(CANDIDATE_COLUMNS)} (world mm, as in LUNA16's "
            "candidates.csv); annotations.csv has no 'class' column and is not a candidates file.",
            source=str(path),
        )
    for column in ("coordX", "coordY", "coordZ", "class"):
        values = pd.to_numeric(frame[column], errors="coerce")
        if values.isna().any():
            row = int(np.flatnonzero(values.isna().to_numpy())[0]) + 1
            raise DataError(
                f"column '{column}' must be numeric, but data row {row} holds "
                f"{frame[column].iloc[row - 1]!r}.",
                "fix or delete that row.",
                source=str(path),
            )
        frame[column] = values
    bad = ~frame["class"].isin([0, 1])
    if bad.any():
        raise DataError(
            f"column 'class' must be 0 or 1; it also holds "
            f"{', '.join(map(str, sorted(frame.loc[bad, 'class'].unique())[:10]))}.",
            "use 1 for a nodule and 0 for a non-nodule candidate.",
            source=str(path),
        )
    frame["seriesuid"] = frame["seriesuid"].astype(str).str.strip()
    frame["class"] = frame["class"].astype(int)
    return frame


def load_luna16_candidates(
    root: Path | str,
    candidates_csv: Path | str | None = None,
    patch_size: tuple[int, int, int] = (32, 32, 32),
    spacing_mm: float = 1.0,
    max_negatives_per_positive: int | None = None,
    seed: int = 0,
) -> PatchSet:
    """Patches (HU, ``spacing_mm`` isotropic) around LUNA16 candidates, grouped by series.

    ``<seriesuid>.mhd`` files are found recursively under ``root``; candidates whose volume is
    absent (e.g. only subset0 downloaded) are left out, and it is an error only when none
    remains. ``max_negatives_per_positive`` keeps at most that many negatives per positive,
    drawn at random with ``seed`` over the whole set (LUNA16 has ~490 negatives per nodule).
    ``ids`` are ``<seriesuid>:<row>`` with the 0-based data row of the candidates file.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            f"the LUNA16 folder {root} does not exist or is not a folder.",
            "point to the folder that holds subset0 ... subset9 (with the .mhd/.raw files).",
            source=str(root),
        )
    if len(patch_size) != 3 or any(int(s) < 1 for s in patch_size):
        raise ValueError(f"patch_size must be three positive sizes, got {patch_size}")
    if spacing_mm <= 0:
        raise ValueError(f"spacing_mm must be positive, got {spacing_mm}")
    csv_path = Path(candidates_csv) if candidates_csv is not None else _find_candidates_csv(root)
    frame = _read_candidates(csv_path)
    frame["row"] = np.arange(len(frame))

    volumes: dict[str, Path] = {}
    try:
        for path in sorted(root.rglob("*.mhd")):
            volumes.setdefault(path.stem, path)  # first in sorted order wins on duplicates
    except OSError as exc:
        raise DataError(
            f"the LUNA16 folder cannot be searched ({exc}).",
            "check its permissions.",
            source=str(root),
        ) from exc
    present = frame[frame["seriesuid"].isin(volumes.keys())]
    if present.empty:
        example = frame["seriesuid"].iloc[0] if len(frame) else "(the file has no rows)"
        raise DataError(
            f"none of the {frame['seriesuid'].nunique()} series in {csv_path.name} has a "
            f"volume under {root} ({len(volumes)} .mhd file(s) found; e.g. no {example}.mhd).",
            "point root to the folder holding the subset folders, and check that the "
            "candidates file belongs to these scans.",
            source=str(root),
        )

    if max_negatives_per_positive is not None:
        if max_negatives_per_positive < 0:
            raise ValueError("max_negatives_per_positive must be >= 0 or None")
        positives = present[present["class"] == 1]
        negatives = present[present["class"] == 0]
        keep = min(len(negatives), max_negatives_per_positive * len(positives))
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(len(negatives), size=keep, replace=False))
        present = present.loc[positives.index.union(negatives.index[chosen])].sort_values("row")
    if present.empty:
        raise DataError(
            "after keeping at most max_negatives_per_positive negatives per positive no "
            "candidate is left (the available scans have no positive candidate).",
            "set max_negatives_per_positive to None, or add scans with nodules.",
            source=str(root),
        )

    size = tuple(int(s) for s in patch_size)
    images = np.empty((len(present), *size), dtype=np.float32)
    labels = np.empty(len(present), dtype=np.int64)
    groups = np.empty(len(present), dtype=object)
    ids = np.empty(len(present), dtype=object)
    start = 0
    # One volume in memory at a time: a LUNA16 scan is ~300 MB as float32.
    for seriesuid, rows in present.groupby("seriesuid", sort=True):
        volume = read_mhd(volumes[seriesuid])
        centres = rows[["coordX", "coordY", "coordZ"]].to_numpy(dtype=np.float64)
        stop = start + len(rows)
        images[start:stop] = _sample_patches(
            volume.hu,
            centres,
            np.asarray(volume.origin[::-1]),
            np.asarray(volume.spacing[::-1]),
            np.asarray(volume.direction)[::-1, ::-1],
            size,  # type: ignore[arg-type]
            spacing_mm,
        )
        labels[start:stop] = rows["class"].to_numpy()
        groups[start:stop] = seriesuid
        ids[start:stop] = [f"{seriesuid}:{r}" for r in rows["row"]]
        start = stop
        del volume
    return PatchSet(images=images, labels=labels, groups=groups.astype(str), ids=ids.astype(str))
