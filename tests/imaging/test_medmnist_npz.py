"""MedMNIST .npz archives: 2-D and 3-D layouts, binarising, and refusing pickles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medml_cli.data.formats.npz import load_medmnist_npz
from medml_cli.errors import DataError


def medmnist_arrays(image_shape: tuple[int, ...], n_classes: int = 2, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", 20), ("val", 6), ("test", 8)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, *image_shape), dtype=np.uint8)
        labels = np.arange(n) % n_classes  # every class in every split
        arrays[f"{split}_labels"] = labels.reshape(n, 1).astype(np.uint8)
    return arrays


def save(path: Path, arrays: dict) -> Path:
    np.savez_compressed(path, **arrays)
    return path


@pytest.mark.parametrize("shape", [(28, 28), (28, 28, 3), (28, 28, 28), (64, 64, 64)])
def test_loads_2d_and_3d_layouts(tmp_path: Path, shape: tuple[int, ...]) -> None:
    arrays = medmnist_arrays(shape)
    data = load_medmnist_npz(save(tmp_path / "set.npz", arrays))
    assert set(data) == {"train", "val", "test"}
    images, labels = data["train"]
    assert images.shape == (20, *shape) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, arrays["train_images"])
    assert labels.shape == (20,) and labels.dtype == np.int64
    assert set(labels.tolist()) == {0, 1}


def test_multiclass_loads_k_classes_or_binarises(tmp_path: Path) -> None:
    path = save(tmp_path / "organ.npz", medmnist_arrays((28, 28), n_classes=4))
    np.testing.assert_array_equal(load_medmnist_npz(path)["train"][1][:4], [0, 1, 2, 3])
    data = load_medmnist_npz(path, positive_classes=[2, 3])
    np.testing.assert_array_equal(data["train"][1][:4], [0, 0, 1, 1])
    with pytest.raises(DataError, match="positive_classes 7 do not occur"):
        load_medmnist_npz(path, positive_classes=[7])


def test_missing_keys_are_listed(tmp_path: Path) -> None:
    arrays = medmnist_arrays((28, 28))
    del arrays["val_labels"], arrays["test_images"]
    with pytest.raises(DataError, match="lacks the array.*val_labels, test_images") as info:
        load_medmnist_npz(save(tmp_path / "partial.npz", arrays))
    assert "train_images" in str(info.value)  # what the file does hold


def test_corrupt_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_medmnist_npz(tmp_path / "none.npz")
    (tmp_path / "html.npz").write_text("<html>rate limited</html>")
    with pytest.raises(DataError, match="not an .npz archive"):
        load_medmnist_npz(tmp_path / "html.npz")
    good = save(tmp_path / "good.npz", medmnist_arrays((28, 28))).read_bytes()
    (tmp_path / "cut.npz").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError):
        load_medmnist_npz(tmp_path / "cut.npz")


def test_pickled_arrays_are_refused_without_unpickling(tmp_path: Path) -> None:
    arrays = medmnist_arrays((28, 28))
    arrays["train_labels"] = np.array([Exploding()] * 20, dtype=object)
    path = tmp_path / "pickled.npz"
    np.savez(path, **arrays)  # np.savez pickles object arrays
    with pytest.raises(DataError, match="pickled Python objects"):
        load_medmnist_npz(path)


class Exploding:
    """Unpickling this fails the test loudly, so a load that unpickles cannot pass."""

    def __reduce__(self):
        return (pytest.fail, ("the npz was unpickled",))


def test_length_mismatch_and_bad_shapes(tmp_path: Path) -> None:
    arrays = medmnist_arrays((28, 28))
    arrays["val_labels"] = arrays["val_labels"][:-1]
    with pytest.raises(DataError, match="val has 6 images but 5 labels"):
        load_medmnist_npz(save(tmp_path / "a.npz", arrays))
    arrays = medmnist_arrays((28, 28))
    arrays["test_images"] = arrays["test_images"].reshape(8, -1)
    with pytest.raises(DataError, match=r"test_images has shape \(8, 784\)"):
        load_medmnist_npz(save(tmp_path / "b.npz", arrays))
    arrays = medmnist_arrays((28, 28))
    arrays["train_labels"] = np.zeros((20, 14), dtype=np.uint8)
    with pytest.raises(DataError, match="Multi-label"):
        load_medmnist_npz(save(tmp_path / "c.npz", arrays))
