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

Every header value is read through :func:`~medml_cli.data.formats.dicom_header.header_value`: a
needed tag that is unreadable (``NumberOfFrames = '1A'``) is a DataError naming the file, tag
and value; an unneeded one (PixelSpacing, positions) falls back to a default. Any other
failure inside pydicom while reading one file is also a DataError naming it. Images must be
grayscale CT (``Modality``, ``PhotometricInterpretation``, ``SamplesPerPixel`` are checked
before pixels are decoded) unless their modality is allowed explicitly.

A folder may instead hold one Enhanced (multi-frame) CT file: its frames are read as the
slices (see :mod:`medml_cli.data.formats.enhanced_ct`) and ordered the same way.

Slices are ordered by ``ImagePositionPatient`` projected on the slice normal (the cross
product of the two ``ImageOrientationPatient`` direction cosines), ascending; when a file
lacks position or orientation the whole series is ordered by ``InstanceNumber`` instead.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from medml_cli.data.formats.dicom_header import check_ct_image, header_value, modality_of
from medml_cli.data.formats.enhanced_ct import is_enhanced, read_frames
from medml_cli.data.formats.hu import to_hu
from medml_cli.data.formats.image_files import IMAGE_SUFFIXES
from medml_cli.data.formats.npz import ARRAY_SUFFIXES
from medml_cli.data.formats.paths import require_regular_file
from medml_cli.data.formats.types import CtVolume
from medml_cli.errors import DataError

#: The suffix of a single DICOM file (series folders may also hold files without one).
DICOM_SUFFIX = ".dcm"
#: Extensions that are never DICOM; such files in a series folder are ignored.
NON_DICOM_SUFFIXES = IMAGE_SUFFIXES | ARRAY_SUFFIXES | frozenset(
    (
        ".txt .csv .tsv .md .json .xml .yaml .yml .html .htm .pdf "
        ".zip .gz .log .ini .py .nii .mhd .raw .sha256 .md5"
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


_NEEDED_TO_DECODE = "to decode the pixels"


def _pixels_to_hu(ds: Any, path: Path, modalities: Collection[str]) -> list[
        tuple[np.ndarray, dict[str, Any]]]:
    """The file's slice(s) in HU with their geometry: one for a single-frame file, one per
    frame for Enhanced CT. Header values are read through ``header_value``."""
    check_ct_image(ds, path, modalities)
    size = {keyword: header_value(ds, keyword, "int", path=path, required=True,
                                  why=_NEEDED_TO_DECODE)
            for keyword in ("Rows", "Columns", "BitsAllocated", "BitsStored",
                            "PixelRepresentation")}
    if not (0 < size["BitsStored"] <= size["BitsAllocated"] <= 64) or min(
            size["Rows"], size["Columns"]) < 1:
        raise DataError(
            f"'{path.name}' has an impossible image size in its header (Rows "
            f"{size['Rows']}, Columns {size['Columns']}, BitsAllocated "
            f"{size['BitsAllocated']}, BitsStored {size['BitsStored']}).",
            "correct the tags or export the file again from the scanner or PACS.",
            source=str(path.parent))
    frames = header_value(ds, "NumberOfFrames", "int", path=path, required="if present",
                          default=1, why=_NEEDED_TO_DECODE)
    if frames < 1:
        raise DataError(
            f"'{path.name}' has NumberOfFrames {frames}; an image has at least one frame.",
            "correct the tag or export the file again.", source=str(path.parent))
    if frames > 1 and not is_enhanced(ds):
        raise DataError(
            f"'{path.name}' is a multi-frame DICOM object ({frames} frames) without per-frame "
            "positions (no PerFrameFunctionalGroupsSequence), so its frames cannot be placed "
            "in space.",
            "export the series as Enhanced CT or as one file per slice, or convert it to "
            "NIfTI (e.g. `dcm2niix -z y`) and give the .nii.gz file.",
            source=str(path.parent))
    geometry = _geometry(ds, path)
    if frames > 1:
        return read_frames(ds, path, frames, geometry)
    pixels = _decode(ds, path)
    if pixels.ndim != 2:
        raise DataError(
            f"'{path.name}' holds pixel data of shape {pixels.shape}, not one 2-D slice "
            "(colour or multi-frame images are not CT slices).",
            "remove it from the series folder.",
            source=str(path.parent),
        )
    return [(to_hu(pixels, geometry["rescale_slope"], geometry["rescale_intercept"]),
             geometry)]


def _decode(ds: Any, path: Path) -> np.ndarray:
    try:
        return ds.pixel_array
    except Exception as exc:  # pydicom raises several types for codecs and bad lengths
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        syntax_name = getattr(syntax, "name", str(syntax))
        compressed = bool(getattr(syntax, "is_compressed", False))
        raise DataError(
            f"the pixel data of '{path.name}' could not be decoded (transfer syntax "
            f"{syntax_name}; {type(exc).__name__}: {str(exc)[:300]}).",
            "install a decoder for this compression (`pip install pylibjpeg pylibjpeg-libjpeg "
            "pylibjpeg-openjpeg`, or gdcm); if that does not help, the file is corrupt and "
            "must be exported again." if compressed else
            "the pixel data do not match the header's Rows/Columns/BitsAllocated/"
            "NumberOfFrames, or the file is truncated: export it again from the scanner or "
            "PACS.",
            source=str(path.parent),
        ) from exc


def _geometry(ds: Any, path: Path) -> dict[str, Any]:
    """Only geometry and identifiers of the image itself: the allow-list of what is kept.

    Geometry tags are not needed to score one image, so an unreadable one is dropped (the
    series reader then orders by InstanceNumber, and says so if it cannot); the rescale tags
    are needed for HU, so a present but unreadable one is an error.
    """
    def get(keyword: str, kind: str, **kw: Any) -> Any:
        return header_value(ds, keyword, kind, path=path, **kw)  # type: ignore[arg-type]

    slope = get("RescaleSlope", "float", required="if present", default=1.0,
                why="to convert pixels to HU")
    if slope == 0:
        raise DataError(
            f"'{path.name}' has RescaleSlope 0, so every pixel would have the same HU.",
            "correct the tag or export the file again.", source=str(path.parent))
    return {
        "file": path.name,
        "sop_instance_uid": get("SOPInstanceUID", "text", default=""),
        "series_instance_uid": get("SeriesInstanceUID", "text", default=""),
        "modality": modality_of(ds, path),
        "instance_number": get("InstanceNumber", "int"),
        "image_position": get("ImagePositionPatient", "floats", n=3),
        "image_orientation": get("ImageOrientationPatient", "floats", n=6),
        "pixel_spacing": _positive(get("PixelSpacing", "floats", n=2)),
        "slice_thickness": get("SliceThickness", "float"),
        "spacing_between_slices": get("SpacingBetweenSlices", "float"),
        "rescale_slope": slope,
        "rescale_intercept": get("RescaleIntercept", "float", required="if present",
                                 default=0.0, why="to convert pixels to HU"),
        "rows": get("Rows", "int", default=0),
        "columns": get("Columns", "int", default=0),
    }


def _positive(values: list[float] | None) -> list[float] | None:
    return values if values and all(v > 0 for v in values) else None


def _read_image(path: Path, modalities: Collection[str]
                ) -> list[tuple[np.ndarray, dict[str, Any]]] | None:
    """The slice(s) of one file, or None when it is DICOM without pixels.

    The reading boundary: whatever pydicom raises on a damaged header or pixel stream
    (ValueError, TypeError, KeyError, struct.error, NotImplementedError ...) becomes a
    DataError naming the file, so no input file can end in an internal error.
    """
    with warnings.catch_warnings():
        # pydicom warns on every invalid value; medml reports the ones it needs itself
        warnings.simplefilter("ignore")
        try:
            ds = _read_dataset(path)
            if "PixelData" not in ds:
                return None
            return _pixels_to_hu(ds, path, modalities)
        except DataError:
            raise
        except Exception as exc:
            raise DataError(
                f"'{path.name}' could not be read as a DICOM image ({type(exc).__name__}: "
                f"{str(exc)[:200]}).",
                "the file is damaged or uses a feature medml does not read: export it again, "
                "or move it out of the input.",
                source=str(path.parent),
            ) from exc


def _no_pixels(ds_path: Path) -> DataError:
    return DataError(
        f"'{ds_path.name}' is DICOM but holds no image (no PixelData).",
        "point to an image slice; reports, DICOMDIR and presentation states have no pixels.",
        source=str(ds_path.parent),
    )


def _check_file(path: Path) -> None:
    if not path.exists() and not path.is_symlink():
        raise DataError(
            f"DICOM file {path} does not exist.",
            "check the path.",
            source=str(path),
        )
    require_regular_file(path, "the DICOM path")


def read_dicom_file(
    path: Path | str, *, modalities: Collection[str] = ("CT",)
) -> tuple[np.ndarray, dict[str, Any]]:
    """One single-frame DICOM slice as (float32 HU array (rows, columns), geometry dict).

    The dict holds only image geometry and identifiers of the image (file name,
    SOPInstanceUID, position, orientation, spacing, rescale values), never patient tags.
    An image of another modality than CT (and ``modalities``) or a colour image is refused;
    a multi-frame file is refused here (read it with :func:`read_dicom_volume_file`).
    """
    path = Path(path)
    _check_file(path)
    slices = _read_image(path, modalities)
    if slices is None:
        raise _no_pixels(path)
    if len(slices) > 1:
        raise DataError(
            f"'{path.name}' is a multi-frame file ({len(slices)} frames), not one slice.",
            "read it as a volume (medml predict reads it whole).", source=str(path.parent))
    return slices[0]


def read_dicom_volume_file(
    path: Path | str, *, modalities: Collection[str] = ("CT",)
) -> CtVolume:
    """One DICOM file as a volume: an Enhanced multi-frame CT (every frame, ordered along
    the slice normal as a series is) or a single slice (a volume of depth 1)."""
    path = Path(path)
    _check_file(path)
    slices = _read_image(path, modalities)
    if slices is None:
        raise _no_pixels(path)
    return _assemble(slices, str(path), [])


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


def read_dicom_series(folder: Path | str, *, modalities: Collection[str] = ("CT",)
                      ) -> CtVolume:
    """Read one CT series from ``folder`` into a :class:`CtVolume`.

    The series is one file per slice, or one Enhanced (multi-frame) CT file. See the module
    docstring for which files are read and how slices are ordered. Raises
    :class:`~medml_cli.errors.DataError` for a missing or unreadable folder, no DICOM files,
    a corrupt or non-DICOM file, an image that is not CT (unless its modality is in
    ``modalities``) or is colour, several series mixed in one folder, slices of different
    shapes or orientations, and two slices at the same position.
    """
    folder = Path(folder)
    source = str(folder)
    files, skipped = _candidate_files(folder)

    slices: list[tuple[np.ndarray, dict[str, Any]]] = []
    multi_frame: list[str] = []
    n_files = 0
    for path in files:
        # the header (and its patient tags) is dropped inside _read_image
        read = _read_image(path, modalities)
        if read is None:
            skipped.append(path.name)
            continue
        n_files += 1
        if len(read) > 1:
            multi_frame.append(path.name)
        slices.extend(read)
    if not slices:
        raise DataError(
            f"none of the {len(files)} DICOM file(s) in {folder} holds an image "
            f"(skipped: {', '.join(skipped[:5])}).",
            "point to a folder of image slices, not one of reports or a DICOMDIR.",
            source=source,
        )
    if multi_frame and n_files > 1:
        raise DataError(
            f"the folder holds the multi-frame file '{multi_frame[0]}' and "
            f"{n_files - 1} other image file(s); a multi-frame (Enhanced) CT file is a whole "
            "series on its own.",
            "put each multi-frame file in its own folder (or give the file itself).",
            source=source,
        )
    return _assemble(slices, source, skipped)


def _assemble(slices: list[tuple[np.ndarray, dict[str, Any]]], source: str,
              skipped: list[str]) -> CtVolume:
    """Order and check slice records (files or frames) and stack them into a volume."""
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
        lacking = next(m["file"] for m in metas
                       if not (m["image_position"] and m["image_orientation"]))
        raise DataError(
            "the slices cannot be ordered: they lack InstanceNumber, and "
            f"'{lacking}' (at least) has no readable ImagePositionPatient/"
            "ImageOrientationPatient (absent, or not 3 and 6 numbers).",
            "export the series again with its geometry tags (anonymisers should keep them), "
            "or correct the damaged file.",
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
