"""Hounsfield units: from stored pixel values, and windowed to [0, 1] for a network."""

from __future__ import annotations

import numpy as np

from medml_cli.schemas import DEFAULT_HU_WINDOW

DEFAULT_HU_MIN, DEFAULT_HU_MAX = DEFAULT_HU_WINDOW
#: Air in Hounsfield units: the value CT is padded with beyond its edges.
AIR_HU = -1000.0


def to_hu(pixel_array: np.ndarray, slope: float = 1.0, intercept: float = 0.0) -> np.ndarray:
    """Stored DICOM values to Hounsfield units: ``pixel * slope + intercept`` as float32."""
    # Multiply in float64 so a large uint16 value times a fractional slope keeps its precision,
    # then store float32 (ample for HU, half the memory).
    out = np.asarray(pixel_array, dtype=np.float64) * float(slope) + float(intercept)
    return out.astype(np.float32)


def clip_and_normalise(
    images: np.ndarray, hu_min: float = DEFAULT_HU_MIN, hu_max: float = DEFAULT_HU_MAX
) -> np.ndarray:
    """Clip to ``[hu_min, hu_max]`` and scale linearly to float32 in [0, 1]."""
    if not hu_max > hu_min:
        raise ValueError(f"hu_max ({hu_max}) must be greater than hu_min ({hu_min})")
    arr = np.asarray(images, dtype=np.float32)
    out = (np.clip(arr, hu_min, hu_max) - np.float32(hu_min)) / np.float32(hu_max - hu_min)
    return out.astype(np.float32, copy=False)


def window(images: np.ndarray, level: float, width: float) -> np.ndarray:
    """Radiology-style window (centre ``level``, ``width`` in HU) to float32 in [0, 1]."""
    if width <= 0:
        raise ValueError(f"window width must be positive, got {width}")
    return clip_and_normalise(images, level - width / 2.0, level + width / 2.0)


def lung_window(images: np.ndarray, level: float = -300.0, width: float = 1400.0) -> np.ndarray:
    """Lung window for nodule work; the defaults give the same [-1000, 400] HU range as
    :func:`clip_and_normalise`, so the two agree unless you change them.
    (The reading-room lung window, level -600 / width 1500, is ``lung_window(x, -600, 1500)``.)
    """
    return window(images, level, width)
