"""Enhanced (multi-frame) CT: one DICOM file holding every slice of a series.

Per-frame geometry lives in functional groups rather than top-level tags:

- ``PerFrameFunctionalGroupsSequence[i]`` holds what differs per frame, at least
  ``PlanePositionSequence[0].ImagePositionPatient``;
- ``SharedFunctionalGroupsSequence[0]`` holds what all frames share, typically
  ``PlaneOrientationSequence`` (ImageOrientationPatient), ``PixelMeasuresSequence``
  (PixelSpacing, SliceThickness) and ``PixelValueTransformationSequence``
  (RescaleSlope/Intercept);

a macro in the per-frame item overrides the shared one. Each frame becomes one slice record
like a single-frame file's, named ``<file>#<frame number>`` (1-based), so the series reader
orders and checks frames exactly as it does files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medml_cli.data.formats.dicom_header import header_value
from medml_cli.data.formats.hu import to_hu
from medml_cli.errors import DataError


def _item(sequence_owner: Any, keyword: str) -> Any:
    """First item of ``keyword`` (a sequence) in ``sequence_owner``, or None."""
    try:
        sequence = sequence_owner.get(keyword) if sequence_owner is not None else None
        return sequence[0] if sequence else None
    except Exception:  # a malformed sequence is treated as absent; required tags catch it
        return None


def _macro(frame: Any, shared: Any, keyword: str) -> tuple[Any, str]:
    """The functional-group macro ``keyword`` for one frame: its own, else the shared one."""
    for owner, label in ((frame, "PerFrameFunctionalGroupsSequence"),
                         (shared, "SharedFunctionalGroupsSequence")):
        item = _item(owner, keyword)
        if item is not None:
            return item, f"{label} > {keyword}"
    return None, ""


def is_enhanced(ds: Any) -> bool:
    """True when a DICOM dataset is a multi-frame (Enhanced CT) image."""
    return "PerFrameFunctionalGroupsSequence" in ds


def read_frames(ds: Any, path: Path, frames: int,
                geometry: dict[str, Any]) -> list[tuple[np.ndarray, dict[str, Any]]]:
    """Every frame of an Enhanced CT dataset as (HU slice, slice record).

    ``geometry`` is the file-level record (identifiers, modality, size); positions,
    orientation, spacing and rescale are filled in per frame from the functional groups.
    """
    name, source = path.name, str(path.parent)
    try:
        per_frame = list(ds.PerFrameFunctionalGroupsSequence)
    except Exception as exc:  # pydicom may fail to parse a damaged sequence
        raise DataError(
            f"'{name}' has an unreadable PerFrameFunctionalGroupsSequence "
            f"({type(exc).__name__}: {exc}).",
            "export the multi-frame file again, or as single-frame files.",
            source=source) from exc
    if len(per_frame) != frames:
        raise DataError(
            f"'{name}' declares {frames} frames (NumberOfFrames) but its "
            f"PerFrameFunctionalGroupsSequence has {len(per_frame)} items.",
            "export the multi-frame file again; it is inconsistent.", source=source)
    shared = _item(ds, "SharedFunctionalGroupsSequence")
    pixels = ds.pixel_array
    if pixels.ndim != 3 or pixels.shape[0] != frames:
        raise DataError(
            f"'{name}' holds pixel data of shape {pixels.shape}, not {frames} grayscale "
            "frames.", "give a grayscale Enhanced CT file.", source=source)
    top_slope = header_value(ds, "RescaleSlope", "float", path=path, required="if present",
                             default=1.0, why="to convert pixels to HU")
    top_intercept = header_value(ds, "RescaleIntercept", "float", path=path,
                                 required="if present", default=0.0,
                                 why="to convert pixels to HU")
    out = []
    for index, frame in enumerate(per_frame):
        number = index + 1
        where = f"frame {number}"
        position, at = _macro(frame, shared, "PlanePositionSequence")
        orientation, ot = _macro(frame, shared, "PlaneOrientationSequence")
        measures, mt = _macro(frame, shared, "PixelMeasuresSequence")
        transform, tt = _macro(frame, shared, "PixelValueTransformationSequence")
        content, _ = _macro(frame, None, "FrameContentSequence")

        def value(item: Any, keyword: str, kind: str, label: str, where: str = where,
                  **kw: Any) -> Any:
            if item is None:
                return kw.get("default")
            return header_value(item, keyword, kind, path=path,  # type: ignore[arg-type]
                                where=f"{where}, {label}", **kw)

        slope = value(transform, "RescaleSlope", "float", tt, required="if present",
                      default=top_slope, why="to convert pixels to HU")
        intercept = value(transform, "RescaleIntercept", "float", tt, required="if present",
                          default=top_intercept, why="to convert pixels to HU")
        if slope == 0:
            raise DataError(f"'{name}' has RescaleSlope 0 for {where}, so every pixel would "
                            "have the same HU.", "export the file again.", source=source)
        record = dict(geometry)
        record.update({
            "file": f"{name}#{number}",
            "sop_instance_uid": f"{geometry['sop_instance_uid']}#{number}",
            "instance_number": value(content, "InStackPositionNumber", "int", "",
                                     default=number) if content is not None else number,
            "image_position": value(position, "ImagePositionPatient", "floats", at, n=3),
            "image_orientation": value(orientation, "ImageOrientationPatient", "floats", ot,
                                       n=6) or geometry.get("image_orientation"),
            "pixel_spacing": value(measures, "PixelSpacing", "floats", mt, n=2)
            or geometry.get("pixel_spacing"),
            "slice_thickness": value(measures, "SliceThickness", "float", mt)
            or geometry.get("slice_thickness"),
            "spacing_between_slices": value(measures, "SpacingBetweenSlices", "float", mt)
            or geometry.get("spacing_between_slices"),
            "rescale_slope": slope,
            "rescale_intercept": intercept,
        })
        out.append((to_hu(pixels[index], slope, intercept), record))
    return out
