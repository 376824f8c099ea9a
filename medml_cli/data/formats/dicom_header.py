"""Read DICOM header values defensively: one helper for every tag medml looks at.

Real files carry malformed values (``NumberOfFrames = '1A'``, ``RescaleSlope = 'abc'``, a
position with two numbers instead of three). pydicom hands such values back as text, as a
half-parsed multi-value, or raises one of several exception types when they are accessed.
:func:`header_value` turns all of that into one of two outcomes:

- the tag is needed (``required=True``, or ``"if present"`` for a tag with a safe default
  when absent but whose wrong value would give wrong pixels): a :class:`DataError` naming the
  file, the tag (keyword and number) and the value found;
- the tag is not needed: its default, so a broken optional tag never stops a read.

It also decides which images are CT in Hounsfield units (:func:`check_ct_image`): Modality,
PhotometricInterpretation and SamplesPerPixel, before any pixel is scored.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal

from medml_cli.errors import DataError

Kind = Literal["int", "float", "floats", "text", "code"]
Required = bool | Literal["if present"]

#: SOP classes that are CT whatever the Modality tag says (used when it is missing).
CT_SOP_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.2",      # CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.1",    # Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.2",    # Legacy Converted Enhanced CT Image Storage
})
GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")
COLOUR = frozenset({"RGB", "PALETTE COLOR", "YBR_FULL", "YBR_FULL_422", "YBR_PARTIAL_422",
                    "YBR_PARTIAL_420", "YBR_ICT", "YBR_RCT", "HSV", "ARGB", "CMYK", "XYB"})
_MODALITY_NAMES = {
    "MR": "magnetic resonance", "PT": "PET", "NM": "nuclear medicine", "US": "ultrasound",
    "CR": "computed radiography", "DX": "digital X-ray", "MG": "mammography",
    "XA": "X-ray angiography", "RTDOSE": "radiotherapy dose grid", "SEG": "segmentation",
    "OT": "other", "SC": "secondary capture", "RTIMAGE": "radiotherapy image",
}
_MAX_SHOWN = 60


class _Unreadable(Exception):
    """A present value that cannot be read as the kind asked for."""


def tag_label(keyword: str) -> str:
    """``Keyword (gggg,eeee)`` for messages."""
    try:
        from pydicom.datadict import tag_for_keyword

        tag = tag_for_keyword(keyword)
    except Exception:  # an unknown keyword still gets a readable label
        tag = None
    return f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})" if tag is not None else keyword


def raw_text(ds: Any, keyword: str) -> str:
    """The value as stored, for messages (bytes decoded, long values cut)."""
    try:
        element = ds.get_item(keyword)
        value = element.value if element is not None else None
    except Exception:  # the message must never fail because of the value it reports
        return "(unreadable)"
    if isinstance(value, bytes):
        value = value.decode("latin-1", "replace").strip(" \x00")
    elif value is not None and not isinstance(value, str):
        try:
            value = "\\".join(str(v) for v in value) if _is_multi(value) else str(value)
        except Exception:  # a value pydicom cannot even print
            return "(unreadable)"
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 4] + "...'"


def _is_multi(value: Any) -> bool:
    return isinstance(value, list | tuple) or type(value).__name__ == "MultiValue"


def _number(value: Any) -> float:
    if isinstance(value, bytes):
        value = value.decode("latin-1").strip(" \x00")
    if isinstance(value, str):
        value = value.strip()
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise _Unreadable from exc
    if not math.isfinite(out):
        raise _Unreadable
    return out


def _parse(value: Any, kind: Kind, n: int | None) -> Any:
    if kind in ("text", "code"):
        if _is_multi(value):
            value = "\\".join(str(v) for v in value)
        if isinstance(value, bytes):
            value = value.decode("latin-1", "replace")
        text = str(value).strip(" \x00")
        return text.upper() if kind == "code" else text
    if kind == "floats":
        items = list(value) if _is_multi(value) else (
            str(value).split("\\") if isinstance(value, str | bytes) else [value])
        numbers = [_number(v) for v in items]
        if n is not None and len(numbers) != n:
            raise _Unreadable
        return numbers
    if _is_multi(value):  # one number asked, several found
        if len(value) != 1:
            raise _Unreadable
        value = value[0]
    number = _number(value)
    if kind == "int":
        if number != int(number):
            raise _Unreadable
        return int(number)
    return number


def header_value(
    ds: Any,
    keyword: str,
    kind: Kind,
    *,
    path: Path | str,
    required: Required = False,
    default: Any = None,
    n: int | None = None,
    where: str = "",
    why: str = "",
) -> Any:
    """The value of ``keyword`` in ``ds`` read as ``kind``, or ``default``.

    ``kind``: ``int``, ``float`` (finite), ``floats`` (``n`` finite numbers, for
    PixelSpacing/ImagePositionPatient/...), ``text`` or ``code`` (stripped, upper case).
    An absent or empty tag is "missing". ``required=True``: missing or unreadable is a
    DataError; ``"if present"``: only unreadable is; ``False``: both give ``default``.
    ``where`` names the sequence item the tag sits in, ``why`` what it is needed for.
    """
    name = Path(path).name
    try:
        present = keyword in ds
        value = ds.get(keyword) if present else None
    except Exception:  # pydicom converts lazily and may raise on access
        present, value = True, _Unreadable
    missing = not present or value is None or (
        value is not _Unreadable and not _is_multi(value) and str(value).strip(" \x00") == "")
    if not missing and value is not _Unreadable and _is_multi(value) and len(value) == 0:
        missing = True
    if missing:
        if required is True:
            raise DataError(
                f"'{name}' lacks the tag {tag_label(keyword)}{_in(where)}"
                f"{f', which is needed {why}' if why else ''}.",
                "export the file again with its full header (anonymisers must keep image "
                "tags), or remove it.",
                source=str(Path(path).parent),
            )
        return default
    if value is not _Unreadable:
        try:
            return _parse(value, kind, n)
        except (_Unreadable, TypeError, ValueError, AttributeError, IndexError):
            pass
    if required:
        expected = {"int": "a whole number", "float": "a number",
                    "floats": f"{n or 'several'} numbers separated by '\\'",
                    "text": "text", "code": "a code string"}[kind]
        raise DataError(
            f"'{name}' holds an unreadable value for {tag_label(keyword)}{_in(where)}: "
            f"{raw_text(ds, keyword)} is not {expected}"
            f"{f', and the tag is needed {why}' if why else ''}.",
            "correct the tag (e.g. `dcmodify -m \"" + keyword + "=...\"`) or export the file "
            "again from the scanner or PACS; otherwise remove it.",
            source=str(Path(path).parent),
        )
    return default


def _in(where: str) -> str:
    return f" (in {where})" if where else ""


def modality_of(ds: Any, path: Path | str) -> str:
    """Modality code (``CT``, ``MR`` ...); missing: ``CT`` for a CT SOP class, else ''."""
    modality = header_value(ds, "Modality", "code", path=path, default="")
    if not modality:
        sop = header_value(ds, "SOPClassUID", "text", path=path, default="")
        modality = "CT" if sop in CT_SOP_CLASSES else ""
    return modality


def check_ct_image(ds: Any, path: Path | str, modalities: Collection[str] = ("CT",)) -> str:
    """Refuse an image that is not grayscale CT (or of an allowed modality); its modality.

    CT pixel values become Hounsfield units through the rescale tags; an MR, PET, dose grid
    or ultrasound image has no HU, so a CT model scoring it would return a number that
    means nothing. Colour images (RGB, YBR, PALETTE COLOR) are never CT slices, whatever
    modality is allowed: they are screenshots or secondary captures.
    """
    name = Path(path).name
    source = str(Path(path).parent)
    allowed = {m.upper() for m in modalities} | {"CT"}
    modality = modality_of(ds, path)
    if modality not in allowed:
        found = (f"modality {modality} ({_MODALITY_NAMES[modality]})"
                 if modality in _MODALITY_NAMES else
                 f"modality {modality}" if modality else "no Modality tag and a non-CT SOP class")
        extra = sorted(allowed - {"CT"})
        raise DataError(
            f"'{name}' has {found}, not CT: medml reads CT in Hounsfield units"
            f"{' (and ' + ', '.join(extra) + ')' if extra else ''}, and this image's pixel "
            "values are not HU, so a CT model's score on it would mean nothing.",
            "give CT images. If you are sure a CT model should score this modality, allow "
            f"it explicitly: `medml predict ... --allow-modality {modality or 'OT'}`, or "
            f"`data.allow_modalities: [{modality or 'OT'}]` in a training config (its use "
            "is recorded as a warning).",
            source=source,
        )
    samples = header_value(ds, "SamplesPerPixel", "int", path=path, required=True,
                           why="to decode the pixels")
    photometric = header_value(ds, "PhotometricInterpretation", "code", path=path,
                               required=True, why="to decode the pixels")
    if photometric not in GRAYSCALE and photometric not in COLOUR:
        raise DataError(
            f"'{name}' has an unknown PhotometricInterpretation "
            f"{raw_text(ds, 'PhotometricInterpretation')} "
            "(expected MONOCHROME2 or MONOCHROME1 for CT), so its pixels cannot be read as "
            "grey values.",
            "correct the tag or export the file again from the scanner or PACS; otherwise "
            "remove it.",
            source=source,
        )
    if samples != 1 or photometric not in GRAYSCALE:
        raise DataError(
            f"'{name}' is a colour image (PhotometricInterpretation {photometric}, "
            f"{samples} sample(s) per pixel); a CT slice is one grey value per pixel, and "
            "a colour rendering (a screenshot, secondary capture or palette image) carries "
            "no Hounsfield units.",
            "give the original grayscale CT slices (PhotometricInterpretation MONOCHROME2 "
            "or MONOCHROME1); remove this file from the input.",
            source=source,
        )
    return modality
