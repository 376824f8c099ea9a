"""Class-per-folder image datasets: labels, channel handling and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medml_cli.data.formats.image_files import load_image_folder, load_single_image
from medml_cli.errors import DataError


def save_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "xray"
    for i in range(3):
        save_png(root / "NORMAL" / f"n{i}.png", np.full((20, 30), 40 * i, dtype=np.uint8))
    for i in range(2):
        save_png(root / "PNEUMONIA" / f"p{i}.png", np.full((16, 16), 200, dtype=np.uint8))
    (root / "NORMAL" / ".DS_Store").write_bytes(b"\x00")
    (root / "NORMAL" / "notes.txt").write_text("ignored")
    return root


def test_two_classes_alphabetical(folder: Path) -> None:
    images, labels, classes, paths = load_image_folder(folder, (8, 12))
    assert images.shape == (5, 8, 12, 1) and images.dtype == np.float32
    assert classes == ["NORMAL", "PNEUMONIA"]
    assert labels.tolist() == [0, 0, 0, 1, 1]
    assert [Path(p).name for p in paths] == ["n0.png", "n1.png", "n2.png", "p0.png", "p1.png"]
    assert 0.0 <= images.min() and images.max() <= 1.0
    np.testing.assert_allclose(images[1], 40 / 255, atol=1e-6)
    np.testing.assert_allclose(images[3], 200 / 255, atol=1e-6)


def test_channel_counts_are_converted(tmp_path: Path) -> None:
    gray = save_png(tmp_path / "g.png", np.full((10, 10), 128, dtype=np.uint8))
    rgb = save_png(
        tmp_path / "c.png", np.dstack([np.full((10, 10), v, np.uint8) for v in (255, 0, 0)])
    )
    rgba = np.zeros((10, 10, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[:5, :, 3] = 255  # top half opaque red, bottom half transparent
    rgba_path = save_png(tmp_path / "a.png", rgba)
    deep = save_png(tmp_path / "d.png", np.full((10, 10), 65535, dtype=np.uint16))

    assert load_single_image(gray, (10, 10), "rgb").shape == (10, 10, 3)
    np.testing.assert_allclose(load_single_image(gray, (10, 10), "rgb"), 128 / 255, atol=1e-6)
    as_gray = load_single_image(rgb, (10, 10), "grayscale")
    assert as_gray.shape == (10, 10, 1)
    np.testing.assert_allclose(as_gray, 76 / 255, atol=2 / 255)  # ITU-R 601 luma of red
    alpha = load_single_image(rgba_path, (10, 10), "rgb")
    np.testing.assert_allclose(alpha[0, 0], [1, 0, 0])
    np.testing.assert_allclose(alpha[-1, 0], [0, 0, 0])  # transparent -> black
    sixteen = load_single_image(deep, (5, 5), "grayscale")
    np.testing.assert_allclose(sixteen, 1.0, atol=1e-6)  # 16-bit white stays white


def test_positive_class_with_three_folders(folder: Path) -> None:
    save_png(folder / "COVID" / "c0.png", np.zeros((8, 8), dtype=np.uint8))
    _, labels, classes, _ = load_image_folder(folder, (8, 8))  # three classes
    assert classes == ["COVID", "NORMAL", "PNEUMONIA"]
    assert labels.tolist() == [0, 1, 1, 1, 2, 2]
    _, labels, classes, _ = load_image_folder(folder, (8, 8), positive_class="PNEUMONIA")
    assert classes == ["not PNEUMONIA", "PNEUMONIA"]
    assert labels.tolist() == [0, 0, 0, 0, 1, 1]
    with pytest.raises(DataError, match="not one of the class folders"):
        load_image_folder(folder, (8, 8), positive_class="pneumonia")


def test_corrupt_image_is_named(folder: Path) -> None:
    good = (folder / "NORMAL" / "n1.png").read_bytes()
    (folder / "NORMAL" / "n1.png").write_bytes(good[:40])
    with pytest.raises(DataError, match="n1.png"):
        load_image_folder(folder, (8, 8))


def test_single_class_folder(tmp_path: Path) -> None:
    save_png(tmp_path / "only" / "a.png", np.zeros((8, 8), dtype=np.uint8))
    with pytest.raises(DataError, match="at least two; it has only 'only'"):
        load_image_folder(tmp_path, (8, 8))


def test_empty_class_and_missing_root(folder: Path, tmp_path: Path) -> None:
    (folder / "EMPTY").mkdir()
    with pytest.raises(DataError, match="'EMPTY' holds no images"):
        load_image_folder(folder, (8, 8), positive_class="PNEUMONIA")
    with pytest.raises(DataError, match="does not exist"):
        load_image_folder(tmp_path / "nope", (8, 8))
    with pytest.raises(DataError, match="does not exist"):
        load_single_image(tmp_path / "nope.png", (8, 8))
