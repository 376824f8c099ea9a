"""Hounsfield-unit conversion and windowing."""

from __future__ import annotations

import numpy as np
import pytest

from medml_cli.data.formats.hu import clip_and_normalise, lung_window, to_hu, window


def test_to_hu_applies_slope_and_intercept() -> None:
    stored = np.array([[0, 1024, 4095]], dtype=np.uint16)
    hu = to_hu(stored, 1.0, -1024.0)
    assert hu.dtype == np.float32
    np.testing.assert_array_equal(hu, [[-1024.0, 0.0, 3071.0]])
    np.testing.assert_allclose(to_hu(np.array([100], dtype=np.int16), 0.5, -10), [40.0])


def test_clip_and_normalise_range() -> None:
    hu = np.array([-2000.0, -1000.0, -300.0, 400.0, 3000.0])
    out = clip_and_normalise(hu)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.0, 0.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(clip_and_normalise(hu, -1000, 0), [0, 0, 0.7, 1, 1])
    with pytest.raises(ValueError, match="greater"):
        clip_and_normalise(hu, 100, 100)


def test_lung_window_defaults_match_clip_and_normalise() -> None:
    hu = np.linspace(-1200, 600, 50, dtype=np.float32)
    np.testing.assert_array_equal(lung_window(hu), clip_and_normalise(hu))
    np.testing.assert_allclose(window(hu, -600, 1500), clip_and_normalise(hu, -1350, 150))
