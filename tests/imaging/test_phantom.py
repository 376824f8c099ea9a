"""The synthetic nodule phantom: deterministic, right shapes, plausible HU, patient groups."""

from __future__ import annotations

import numpy as np
import pytest

from medml_cli.data.sources import lung_phantom as phantom
from medml_cli.data.sources.lung_phantom import make_lung_phantom


def test_is_marked_synthetic() -> None:
    assert phantom.SYNTHETIC is True
    assert "SYNTHETIC" in (phantom.__doc__ or "")


def test_same_seed_same_bytes_and_different_seed_differs() -> None:
    a = make_lung_phantom(n_patients=5, samples_per_patient=4, size=24, seed=3)
    b = make_lung_phantom(n_patients=5, samples_per_patient=4, size=24, seed=3)
    c = make_lung_phantom(n_patients=5, samples_per_patient=4, size=24, seed=4)
    assert a.images.tobytes() == b.images.tobytes()
    assert a.labels.tolist() == b.labels.tolist() and a.ids.tolist() == b.ids.tolist()
    assert a.images.tobytes() != c.images.tobytes()


@pytest.mark.parametrize("dim", [2, 3])
def test_shapes(dim: int) -> None:
    patches = make_lung_phantom(n_patients=4, samples_per_patient=3, dim=dim, size=20)
    assert patches.images.shape == (12,) + (20,) * dim
    assert patches.images.dtype == np.float32
    assert patches.labels.shape == patches.groups.shape == patches.ids.shape == (12,)
    assert len(set(patches.ids.tolist())) == 12


@pytest.mark.parametrize("fraction", [0.5, 0.25, 0.0, 1.0])
def test_positive_fraction(fraction: float) -> None:
    patches = make_lung_phantom(
        n_patients=10, samples_per_patient=4, size=16, positive_fraction=fraction
    )
    assert patches.labels.sum() == round(40 * fraction)
    assert set(patches.labels.tolist()) <= {0, 1}


def test_hounsfield_ranges_are_plausible() -> None:
    patches = make_lung_phantom(n_patients=8, samples_per_patient=6, seed=1)
    images, labels = patches.images, patches.labels
    assert -1300 < images.min() and images.max() < 400
    # Most voxels are lung parenchyma.
    assert -900 < np.median(images) < -780
    centre = images[:, 13:19, 13:19, 13:19]
    # Nodules put soft tissue at the centre; negatives are darker on average there.
    assert np.median(centre[labels == 1].max(axis=(1, 2, 3))) > -150
    assert centre[labels == 1].mean() > centre[labels == 0].mean()
    # The 2-D slice is the centre axial slice of the same kind of patch.
    slices = make_lung_phantom(n_patients=8, samples_per_patient=6, dim=2, seed=1)
    assert -900 < np.median(slices.images) < -780


def test_groups_are_patients_with_one_noise_level() -> None:
    patches = make_lung_phantom(n_patients=6, samples_per_patient=5, size=24, seed=2)
    groups = patches.groups
    assert sorted(set(groups.tolist())) == [f"phantom-{p:03d}" for p in range(6)]
    assert all((groups == g).sum() == 5 for g in set(groups.tolist()))
    assert patches.ids[0] == "phantom-000-s00" and patches.ids[-1] == "phantom-005-s04"
    # Noise level is per patient: high-pass residual spread is similar within a patient.
    residual = patches.images - np.roll(patches.images, 1, axis=-1)
    spread = np.median(np.abs(residual), axis=(1, 2, 3)).reshape(6, 5)
    within = spread.std(axis=1).mean()
    between = spread.mean(axis=1).std()
    assert between > within


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="dim"):
        make_lung_phantom(dim=4)
    with pytest.raises(ValueError, match="difficulty"):
        make_lung_phantom(difficulty="impossible")
    with pytest.raises(ValueError, match="positive_fraction"):
        make_lung_phantom(positive_fraction=1.5)
