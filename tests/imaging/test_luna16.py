"""LUNA16 volumes: MetaImage geometry, world-to-voxel mapping, patches and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medml_cli.data.formats.mhd import (
    extract_patch,
    load_luna16_candidates,
    read_mhd,
    resample_isotropic,
    world_to_voxel,
)
from medml_cli.errors import DataError

SPACING_XYZ = (0.7, 0.7, 2.5)
ORIGIN_XYZ = (-40.0, 25.0, -300.0)
FLIPPED = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)  # x and y axes reversed
SHAPE_ZYX = (24, 80, 80)
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
NODULE_XYZ = (-60.0, 5.0, -275.0)  # world mm, inside the flipped volume
NODULE_IDENTITY_XYZ = (-20.0, 40.0, -272.0)  # inside the same grid with identity direction
NODULE_RADIUS = 5.0


def write_volume(
    folder: Path, uid: str, direction: tuple[float, ...] = FLIPPED, centre=NODULE_XYZ
) -> Path:
    """Air-ish lung with a +50 HU sphere at ``centre`` (world mm), saved as .mhd + .raw."""
    folder.mkdir(parents=True, exist_ok=True)
    idx = np.indices(SHAPE_ZYX).reshape(3, -1)[::-1].T  # (N, 3) indices in x, y, z order
    matrix = np.asarray(direction).reshape(3, 3)
    world = np.asarray(ORIGIN_XYZ) + (matrix @ (idx * np.asarray(SPACING_XYZ)).T).T
    inside = np.linalg.norm(world - np.asarray(centre), axis=1) <= NODULE_RADIUS
    array = np.where(inside, 50, -850).astype(np.int16).reshape(SHAPE_ZYX)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(SPACING_XYZ)
    image.SetOrigin(ORIGIN_XYZ)
    image.SetDirection(direction)
    path = folder / f"{uid}.mhd"
    sitk.WriteImage(image, str(path), useCompression=False)
    return path


@pytest.fixture
def luna(tmp_path: Path) -> Path:
    write_volume(tmp_path / "subset0", "1.2.840.1")
    write_volume(tmp_path / "subset1", "1.2.840.2", IDENTITY, NODULE_IDENTITY_XYZ)
    rows = [
        "seriesuid,coordX,coordY,coordZ,class",
        f"1.2.840.1,{NODULE_XYZ[0]},{NODULE_XYZ[1]},{NODULE_XYZ[2]},1",
        "1.2.840.1,-30.0,10.0,-260.0,0",
        "1.2.840.2,{},{},{},1".format(*NODULE_IDENTITY_XYZ),
        "1.2.840.2,0.0,60.0,-290.0,0",
        "1.2.840.2,-25.0,70.0,-285.0,0",
        "9.9.9.9,0,0,0,1",  # a scan that is not downloaded: left out
    ]
    (tmp_path / "candidates.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def centroid(patch: np.ndarray, threshold: float = -400.0) -> np.ndarray:
    return np.argwhere(patch > threshold).mean(axis=0)


def test_read_mhd_geometry_is_zyx(luna: Path) -> None:
    volume = read_mhd(luna / "subset0" / "1.2.840.1.mhd")
    assert volume.hu.shape == SHAPE_ZYX and volume.hu.dtype == np.float32
    assert volume.spacing == pytest.approx(SPACING_XYZ[::-1])
    assert volume.origin == pytest.approx(ORIGIN_XYZ[::-1])
    np.testing.assert_allclose(volume.direction, np.diag([1.0, -1.0, -1.0]))


@pytest.mark.parametrize("direction", [FLIPPED, (0, -1, 0, 1, 0, 0, 0, 0, 1)])
def test_world_to_voxel_matches_simpleitk(direction: tuple[float, ...]) -> None:
    image = sitk.Image(10, 10, 10, sitk.sitkInt16)
    image.SetSpacing(SPACING_XYZ)
    image.SetOrigin(ORIGIN_XYZ)
    image.SetDirection(direction)
    points = np.array([[-42.3, 20.1, -290.0], [-45.0, 30.0, -280.5]])
    got = world_to_voxel(points, ORIGIN_XYZ, SPACING_XYZ, direction)
    expected = [image.TransformPhysicalPointToContinuousIndex(p.tolist())[::-1] for p in points]
    np.testing.assert_allclose(got, expected, atol=1e-9)
    single = world_to_voxel(points[0], ORIGIN_XYZ, SPACING_XYZ, np.reshape(direction, (3, 3)))
    assert single.shape == (3,)


def test_resample_then_extract_is_centred_on_the_sphere(tmp_path: Path) -> None:
    volume = read_mhd(write_volume(tmp_path, "v", IDENTITY, NODULE_IDENTITY_XYZ))
    iso, spacing = resample_isotropic(volume.hu, volume.spacing, 1.0)
    assert iso.shape == (60, 56, 56)
    assert spacing == pytest.approx((1.0, 1.0, 1.0), abs=0.03)
    voxel = world_to_voxel(NODULE_IDENTITY_XYZ, ORIGIN_XYZ, SPACING_XYZ)  # original (z, y, x) index
    centre = voxel * np.asarray(volume.spacing) / np.asarray(spacing)
    patch = extract_patch(iso, centre, (16, 16, 16))
    np.testing.assert_allclose(centroid(patch), [8, 8, 8], atol=0.75)


def test_extract_patch_pads_at_borders() -> None:
    volume = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)
    patch = extract_patch(volume, (0, 0, 0), (4, 4, 4))
    assert patch.shape == (4, 4, 4)
    assert np.all(patch[:2] == -1000.0) and np.all(patch[:, :2] == -1000.0)
    np.testing.assert_array_equal(patch[2:, 2:, 2:], volume[:2, :2, :2])
    outside = extract_patch(volume, (50, 50, 50), (3, 3, 3), pad_value=0.0)
    assert np.all(outside == 0.0)
    inner = extract_patch(volume, (2, 3, 3), (3, 3, 3))
    np.testing.assert_array_equal(inner, volume[1:4, 2:5, 2:5])


def test_load_candidates_centres_positives(luna: Path) -> None:
    patches = load_luna16_candidates(luna, patch_size=(16, 16, 16), spacing_mm=1.0)
    assert patches.images.shape == (5, 16, 16, 16)
    assert patches.images.dtype == np.float32
    assert patches.labels.tolist() == [1, 0, 1, 0, 0]
    assert patches.groups.tolist() == ["1.2.840.1"] * 2 + ["1.2.840.2"] * 3
    assert patches.ids.tolist()[:2] == ["1.2.840.1:0", "1.2.840.1:1"]
    for i in np.flatnonzero(patches.labels == 1):
        # The same sphere, flipped direction or not, lands at the patch centre.
        np.testing.assert_allclose(centroid(patches.images[i]), [8, 8, 8], atol=0.6)
        assert patches.images[i][8, 8, 8] > 0
    # Sphere of 5 mm radius at 1 mm voxels: about 4/3 pi 5^3 = 524 voxels.
    assert 380 < np.sum(patches.images[0] > -400) < 680


def test_max_negatives_per_positive(luna: Path) -> None:
    patches = load_luna16_candidates(
        luna, patch_size=(8, 8, 8), max_negatives_per_positive=1, seed=1
    )
    assert patches.labels.sum() == 2 and len(patches.labels) == 4
    again = load_luna16_candidates(luna, patch_size=(8, 8, 8), max_negatives_per_positive=1, seed=1)
    assert patches.ids.tolist() == again.ids.tolist()


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_luna16_candidates(tmp_path / "nope")


def test_missing_columns_are_listed(luna: Path) -> None:
    bad = luna / "annotations.csv"
    bad.write_text("seriesuid,coordX,coordY,coordZ,diameter_mm\n1.2.840.1,0,0,0,5\n")
    with pytest.raises(DataError, match="lacks the column.*class") as info:
        load_luna16_candidates(luna, bad)
    assert "diameter_mm" in str(info.value)


def test_missing_candidates_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no candidates file"):
        load_luna16_candidates(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_luna16_candidates(tmp_path, tmp_path / "candidates.csv")


def test_missing_raw_is_named(luna: Path) -> None:
    (luna / "subset0" / "1.2.840.1.raw").unlink()
    with pytest.raises(DataError, match=r"1\.2\.840\.1\.raw.*missing"):
        load_luna16_candidates(luna, patch_size=(8, 8, 8))


def test_truncated_raw(luna: Path) -> None:
    raw = luna / "subset0" / "1.2.840.1.raw"
    raw.write_bytes(raw.read_bytes()[:1000])
    with pytest.raises(DataError, match="could not read"):
        read_mhd(luna / "subset0" / "1.2.840.1.mhd")


def test_no_volume_for_any_candidate(luna: Path) -> None:
    csv = luna / "other.csv"
    csv.write_text("seriesuid,coordX,coordY,coordZ,class\n7.7.7,0,0,0,1\n")
    with pytest.raises(DataError, match=r"none of the 1 series.*7\.7\.7\.mhd"):
        load_luna16_candidates(luna, csv)
