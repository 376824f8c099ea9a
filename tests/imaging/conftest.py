"""Fixtures for the imaging tests: the real Lung-PET-CT-Dx sample series, when present."""

from __future__ import annotations

from pathlib import Path

import pytest

# The shared data folder sits beside the repository on the development machine (and in CI).
LUNG_SAMPLE = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "lung-pet-ct-dx-sample"
)


@pytest.fixture(scope="session")
def lung_sample() -> Path:
    """Root of the real TCIA sample (series folder + slice_labels.csv), or skip."""
    path = LUNG_SAMPLE.resolve()
    if not (path / "Lung_Dx-A0002_CT_B40f").is_dir():
        pytest.skip(
            f"real TCIA sample series not found at {path}; it lives in ../shared/data on the "
            "development machine"
        )
    return path
