"""Read a CT series from a folder of DICOM files into Hounsfield units, with its geometry.

Only pixel data and geometry leave this module: no patient name, id, birth date or any other
identifying tag is copied into what it returns, so a volume can be logged or saved safely.

Which files are read (one rule, applied to the files directly inside the folder):

- skipped: hidden files (name starting with "."), ``DICOMDIR``, and files whose extension
  says they are not DICOM (``.txt``, ``.csv``, ``.xml``, ``.json``, ``.png`` ... see
  ``NON_DICOM_SUFFIXES``);
- every other file must be DICOM, or the read fails naming it (a truncated download is
  better reported than silently dropped); it must also be a regular file (or a link to one):
  a FIFO, device, socket or broken link is refused before anything is opened;
- DICOM files without pixel data (structured reports, presentation states, RT structures)
  are skipped and listed in ``CtVolume.skipped``.

Slices are ordered by ``ImagePositionPatient`` projected on the slice normal (the cross
product of the two ``ImageOrientationPatient`` direction cosines), ascending; when a file
lacks position or orientation the whole series is ordered by ``InstanceNumber`` instead.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from medml_cli.data.paths import require_regular_file
from medml_cli.errors import DataError
from medml_cli.imaging.hu import to_hu
from medml_cli.imaging.types import CtVolume

#: Extensions that are never DICOM; such files in a series folder are ignored.
NON_DICOM_SUFFIXES = frozenset(
    (
        ".txt .csv .tsv .md .json .xml .yaml .yml .html .htm .pdf .png .jpg .jpeg .bmp .gif "
        ".tif .tiff .zip .gz .log .ini .py .nii .mhd .raw .npy .npz .sha256 .md5"
    ).split()
)

# Two slices closer than this along the normal (mm) are treated as the same position.
_POSITION_TOLERANCE_MM = 1e-3


def _read_dataset(path: Path) -> Any:
    """pydicom dataset of ``path`` or a DataError naming the file."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path)
    except InvalidDicomError:
        pass  # perhaps a valid file written without the 128-byte preamble; try below
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(
            f"'{path.name}' could not be read as DICOM ({type(exc).__name__}: {exc}).",
            "the file is probably truncated or corrupt: download or export it again, or "
            "move it out of the folder.",
            source=str(path.parent),
        ) from exc
    try:
        ds = pydicom.dcmread(path, force=True)
        # force=True parses almost anything; accept it only if it looks like an image object.
        if "SOPClassUID" in ds or "PixelData" in ds:
            return ds
    except Exception:  # any failure here means "not DICOM", reported below
        pass
    raise DataError(
        f"'{path.name}' is not a DICOM file (no DICOM header found).",
        "remove it from the series folder, or give it an extension such as .txt so it is "
        "ignored; a real slice that fails here is corrupt and must be exported again.",
        source=str(path.parent),
    )


def _floats(value: Any, n: int) -> list[float] | None:
    """A multi-valued DICOM number as ``n`` floats, or None when absent or malformed."""
    if value is None:
        return None
    try:
        out = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    return out if len(out) == n else None


def _pixels_to_hu(ds: Any, path: Path) -> np.ndarray:
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise DataError(
            f"'{path.name}' is a multi-frame DICOM object ({frames} frames); medml reads "
            "series stored as one file per slice.",
            "convert it to single-frame files (e.g. with dcm2niix or emf2sf), or use the "
            "MetaImage/NIfTI route.",
            source=str(path.parent),
        )
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # pydicom raises several types for codecs and bad lengths
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        syntax_name = getattr(syntax, "name", str(syntax))
        raise DataError(
            f"the pixel data of '{path.name}' could not be decoded (transfer syntax "
            f"{syntax_name}; {type(exc).__name__}: {exc}).",
            "for compressed files install a decoder (`pip install pylibjpeg pylibjpeg-libjpeg "
            "pylibjpeg-openjpeg`, or gdcm); otherwise the file is corrupt and must be "
            "exported again.",
            source=str(path.parent),
        ) from exc
    if pixels.ndim != 2:
        raise DataError(
            f"'{path.name}' holds pixel data of shape {pixels.shape}, not one 2-D slice "
            "(colour or multi-frame images are not CT slices).",
            "remove it from the series folder.",
            source=str(path.parent),
        )
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    return to_hu(pixels, slope, intercept)


def _geometry(ds: Any, path: Path) -> dict[str, Any]:
    """Only geometry and identifiers of the image itself: the allow-list of what is kept."""
    instance = ds.get("InstanceNumber")
    try:
        instance_number = int(instance) if instance not in (None, "") else None
    except (TypeError, ValueError):
        instance_number = None
    thickness = ds.get("SliceThickness")
    between = ds.get("SpacingBetweenSlices")
    return {
        "file": path.name,
        "sop_instance_uid": str(ds.get("SOPInstanceUID", "")),
        "series_instance_uid": str(ds.get("SeriesInstanceUID", "")),
        "modality": str(ds.get("Modality", "")),
        "instance_number": instance_number,
        "image_position": _floats(ds.get("ImagePositionPatient"), 3),
        "image_orientation": _floats(ds.get("ImageOrientationPatient"), 6),
        "pixel_spacing": _floats(ds.get("PixelSpacing"), 2),
        "slice_thickness": float(thickness) if thickness not in (None, "") else None,
        "spacing_between_slices": float(between) if between not in (None, "") else None,
        "rescale_slope": float(ds.get("RescaleSlope", 1.0) or 1.0),
        "rescale_intercept": float(ds.get("RescaleIntercept", 0.0) or 0.0),
        "rows": int(ds.get("Rows", 0) or 0),
        "columns": int(ds.get("Columns", 0) or 0),
    }


def read_dicom_file(path: Path | str) -> tuple[np.ndarray, dict[str, Any]]:
    """One DICOM slice as (float32 HU array (rows, columns), geometry dict).

    The dict holds only image geometry and identifiers of the image (file name,
    SOPInstanceUID, position, orientation, spacing, rescale values), never patient tags.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise DataError(
            f"DICOM file {path} does not exist.",
            "check the path.",
            source=str(path),
        )
    require_regular_file(path, "the DICOM path")
    ds = _read_dataset(path)
    if "PixelData" not in ds:
        raise DataError(
            f"'{path.name}' is DICOM but holds no image (no PixelData; SOP class "
            f"{getattr(ds.get('SOPClassUID'), 'name', ds.get('SOPClassUID', 'unknown'))}).",
            "point to an image slice; reports, DICOMDIR and presentation states have no pixels.",
            source=str(path.parent),
        )
    hu = _pixels_to_hu(ds, path)
    return hu, _geometry(ds, path)


def _candidate_files(folder: Path) -> tuple[list[Path], list[str]]:
    """Files to read as DICOM, and names skipped by the extension / DICOMDIR rule."""
    if not folder.exists():
        raise DataError(
            f"the DICOM folder {folder} does not exist.",
            "check the path (it should be the folder holding one series' .dcm files).",
            source=str(folder),
        )
    if not folder.is_dir():
        raise DataError(
            f"{folder} is a file, not a folder.",
            "give the folder that holds the series' slices (use read_dicom_file for one file).",
            source=str(folder),
        )
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise DataError(
            f"the DICOM folder {folder} cannot be listed ({exc.strerror or exc}).",
            "check its permissions.",
            source=str(folder),
        ) from exc
    files, skipped = [], []
    for entry in entries:
        if entry.name.startswith(".") or entry.is_dir():
            continue
        if entry.name.upper() == "DICOMDIR" or entry.suffix.lower() in NON_DICOM_SUFFIXES:
            skipped.append(entry.name)
            continue
        # a FIFO would block the read forever and a device never ends: refuse, never open
        require_regular_file(entry, f"the DICOM folder {folder}",
                             fix="remove it from the series folder (or replace it with the "
                                 "real slice file).")
        files.append(entry)
    if not files:
        subfolders = [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]
        hint = (
            f" It has sub-folders ({', '.join(subfolders[:5])}); a series is usually one of them."
            if subfolders
            else ""
        )
        raise DataError(
            f"the folder {folder} holds no DICOM files.{hint}",
            "point to the folder that directly contains the slices (e.g. 1-01.dcm ...).",
            source=str(folder),
        )
    return files, skipped


def _normal(orientation: list[float]) -> np.ndarray:
    row = np.asarray(orientation[:3], dtype=np.float64)
    col = np.asarray(orientation[3:], dtype=np.float64)
    normal = np.cross(row, col)
    norm = np.linalg.norm(normal)
    return normal / norm if norm > 0 else np.array([0.0, 0.0, 1.0])


def read_dicom_series(folder: Path | str) -> CtVolume:
    """Read one CT series (one file per slice) from ``folder`` into a :class:`CtVolume`.

    See the module docstring for which files are read and how slices are ordered. Raises
    :class:`~medml_cli.errors.DataError` for a missing or unreadable folder, no DICOM files,
    a corrupt or non-DICOM file, several series mixed in one folder, slices of different
    shapes or orientations, and two slices at the same position.
    """
    folder = Path(folder)
    source = str(folder)
    files, skipped = _candidate_files(folder)

    slices: list[tuple[np.ndarray, dict[str, Any]]] = []
    for path in files:
        ds = _read_dataset(path)
        if "PixelData" not in ds:
            skipped.append(path.name)
            continue
        slices.append((_pixels_to_hu(ds, path), _geometry(ds, path)))
        del ds  # drop the header (and its patient tags) as soon as the pixels are out
    if not slices:
        raise DataError(
            f"none of the {len(files)} DICOM file(s) in {folder} holds an image "
            f"(skipped: {', '.join(skipped[:5])}).",
            "point to a folder of image slices, not one of reports or a DICOMDIR.",
            source=source,
        )

    metas = [m for _, m in slices]
    series = sorted({m["series_instance_uid"] for m in metas if m["series_instance_uid"]})
    if len(series) > 1:
        counts = [sum(m["series_instance_uid"] == s for m in metas) for s in series]
        raise DataError(
            f"the folder mixes {len(series)} series ({', '.join(map(str, counts))} slices); "
            "one volume must come from one series.",
            "put each series in its own folder (DICOM exports usually already do).",
            source=source,
        )

    shapes: dict[tuple[int, ...], str] = {}
    for hu, meta in slices:
        shapes.setdefault(hu.shape, meta["file"])
    if len(shapes) > 1:
        (shape_a, file_a), (shape_b, file_b) = list(shapes.items())[:2]
        raise DataError(
            f"the slices differ in shape: '{file_a}' is {shape_a[0]}x{shape_a[1]} but "
            f"'{file_b}' is {shape_b[0]}x{shape_b[1]}, so they cannot be stacked into one "
            "volume (the folder probably mixes a scout/localiser or another series).",
            "remove the slices that do not belong to the series.",
            source=source,
        )

    has_geometry = all(m["image_position"] and m["image_orientation"] for m in metas)
    if has_geometry:
        orientation = metas[0]["image_orientation"]
        for meta in metas[1:]:
            if not np.allclose(meta["image_orientation"], orientation, atol=1e-3):
                raise DataError(
                    f"the slices have different orientations: '{metas[0]['file']}' has "
                    f"{orientation} but '{meta['file']}' has {meta['image_orientation']}.",
                    "a volume needs parallel slices; remove the slices of the other orientation "
                    "(often a localiser).",
                    source=source,
                )
        normal = _normal(orientation)
        keys = [float(np.dot(normal, m["image_position"])) for m in metas]
        how = "position"
    elif all(m["instance_number"] is not None for m in metas):
        keys = [float(m["instance_number"]) for m in metas]
        how = "InstanceNumber"
    elif len(metas) == 1:
        keys, how = [0.0], "position"
    else:
        raise DataError(
            "the slices have neither ImagePositionPatient/ImageOrientationPatient nor "
            "InstanceNumber, so their order cannot be known.",
            "export the series again with its geometry tags (anonymisers should keep them).",
            source=source,
        )

    order = np.argsort(keys, kind="stable")
    sorted_keys = np.asarray(keys)[order]
    gaps = np.diff(sorted_keys)
    tolerance = _POSITION_TOLERANCE_MM if how == "position" else 0.5
    if gaps.size and np.any(gaps < tolerance):
        i = int(np.flatnonzero(gaps < tolerance)[0])
        a, b = metas[order[i]]["file"], metas[order[i + 1]]["file"]
        raise DataError(
            f"'{a}' and '{b}' have the same slice {how} ({sorted_keys[i]:g}); the folder "
            "probably holds a duplicated slice or two reconstructions of one scan.",
            "remove the duplicate files so that each position occurs once.",
            source=source,
        )

    ordered = [slices[i] for i in order]
    metas = [m for _, m in ordered]
    hu = np.stack([h for h, _ in ordered]).astype(np.float32, copy=False)
    first = metas[0]
    row_spacing, col_spacing = first["pixel_spacing"] or (1.0, 1.0)
    if how == "position" and gaps.size:
        z_spacing = float(np.median(gaps))
    else:
        z_spacing = float(first["spacing_between_slices"] or first["slice_thickness"] or 1.0)

    if has_geometry:
        orientation = first["image_orientation"]
        row_dir = np.asarray(orientation[:3])  # direction of increasing column index (x)
        col_dir = np.asarray(orientation[3:])  # direction of increasing row index (y)
        slice_dir = _normal(orientation)
        # Columns of the (x, y, z) matrix are the index axes; reverse rows and columns for zyx.
        direction_xyz = np.column_stack([row_dir, col_dir, slice_dir])
        direction = tuple(tuple(float(v) for v in row) for row in direction_xyz[::-1, ::-1])
        x0, y0, z0 = first["image_position"]
        origin = (float(z0), float(y0), float(x0))
        positions = [float(k) for k in sorted_keys]
    else:
        direction = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
        origin = (0.0, 0.0, 0.0)
        positions = [float(i * z_spacing) for i in range(len(metas))]

    return CtVolume(
        hu=hu,
        spacing=(z_spacing, float(row_spacing), float(col_spacing)),
        origin=origin,
        slice_positions=positions,
        sop_instance_uids=[m["sop_instance_uid"] for m in metas],
        files=[m["file"] for m in metas],
        direction=direction,
        modality=first["modality"] or "CT",
        skipped=skipped,
    )


_KEY_COLUMNS = {
    "file": ("file", "filename", "file_name"),
    "sop_instance_uid": ("sop_instance_uid", "sopinstanceuid"),
}
_BINARY_TEXT = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1}


def read_slice_labels(
    csv_path: Path | str, *, key: str | None = None, label_column: str | None = None
) -> dict[str, int]:
    """Per-slice 0/1 labels from a CSV, keyed by file name or SOPInstanceUID.

    The key column is ``file`` (also ``filename``) or ``sop_instance_uid`` (also
    ``SOPInstanceUID``); ``key`` picks one when both exist (default: ``file``). The label
    column is ``label_column`` when given; otherwise ``label`` if every value in it is 0/1,
    else ``has_tumor_box`` if present. (In the Lung-PET-CT-Dx sample ``label`` holds the
    histology letter of boxed slices, e.g. "A", and ``has_tumor_box`` holds 0/1.)
    """
    path = Path(csv_path)
    source = str(path)
    if not path.exists() and not path.is_symlink():
        raise DataError(
            f"the slice-label CSV {path} does not exist.", "check the path.", source=source
        )
    require_regular_file(path, "`data.labels`")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in (reader.fieldnames or [])]
            rows = [
                {(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(
            f"the slice-label CSV could not be read ({exc}).",
            "save it as UTF-8 CSV with a header row.",
            source=source,
        ) from exc
    lower = {h.lower(): h for h in header}

    def find(names: tuple[str, ...]) -> str | None:
        return next((lower[n] for n in names if n in lower), None)

    if key is not None and key not in _KEY_COLUMNS:
        raise ValueError(f"key must be 'file' or 'sop_instance_uid', not {key!r}")
    key_col = (
        find(_KEY_COLUMNS[key])
        if key
        else find(_KEY_COLUMNS["file"]) or find(_KEY_COLUMNS["sop_instance_uid"])
    )
    if key_col is None:
        wanted = key or "file or sop_instance_uid"
        raise DataError(
            f"the slice-label CSV has no {wanted} column (columns: {', '.join(header)}).",
            "add a 'file' column with the DICOM file names, or 'sop_instance_uid'.",
            source=source,
        )

    def binary(column: str) -> list[int] | None:
        values = [_BINARY_TEXT.get(row.get(column, "").lower()) for row in rows]
        return None if any(v is None for v in values) else [int(v) for v in values]

    if label_column is not None:
        col = lower.get(label_column.lower())
        if col is None:
            raise DataError(
                f"the slice-label CSV has no column '{label_column}' "
                f"(columns: {', '.join(header)}).",
                "name an existing column as the label.",
                source=source,
            )
        labels = binary(col)
        if labels is None:
            seen = sorted({row.get(col, "") for row in rows})[:10]
            raise DataError(
                f"the label column '{col}' must hold 0/1 on every row; it holds "
                f"{', '.join(repr(s) for s in seen)}.",
                "fill in every row with 0 or 1.",
                source=source,
            )
    else:
        labels = None
        for candidate in ("label", "has_tumor_box"):
            if candidate in lower:
                labels = binary(lower[candidate])
                if labels is not None:
                    break
        if labels is None:
            raise DataError(
                "the slice-label CSV has no column of 0/1 labels (looked for 'label', then "
                f"'has_tumor_box'; columns: {', '.join(header)}).",
                "add a 'label' column of 0/1, or pass label_column=... naming one.",
                source=source,
            )

    out: dict[str, int] = {}
    for number, (row, label) in enumerate(zip(rows, labels, strict=True), start=1):
        name = row.get(key_col, "")
        if not name:
            raise DataError(
                f"row {number} has an empty '{key_col}'.",
                "fill it in or delete the row.",
                source=source,
            )
        if name in out:
            raise DataError(
                f"'{name}' is listed twice in column '{key_col}' (again on row {number}).",
                "keep one row per slice.",
                source=source,
            )
        out[name] = label
    return out
