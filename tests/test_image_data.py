"""Image data sources through the config: each loads, checks and labels what it returns."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medml_cli.config.loader import validate_config_data
from medml_cli.errors import DataError
from medml_cli.workflows.train import load_dataset
from tests.imaging.test_dicom_series import write_slice
from tests.imaging.test_luna16 import luna  # noqa: F401 - fixture


def load(data: dict, tmp_path, model: str = "cnn2d"):
    cfg = validate_config_data({"task": "lung-ct", "data": data, "model": {"type": model}},
                               base_dir=tmp_path)
    return load_dataset(cfg)


def test_phantom_is_labelled_synthetic_and_grouped(tmp_path):
    ds = load({"type": "lung-phantom", "dim": 2, "size": 16, "n_patients": 6,
               "samples_per_patient": 4}, tmp_path)
    assert ds.provenance.synthetic and "SYNTHETIC" in ds.provenance.source
    assert ds.images.shape == (24, 16, 16) and ds.input_shape == (16, 16, 1)
    assert len(np.unique(ds.groups)) == 6
    assert ds.intensity == ("hu", -1000.0, 400.0)


def test_medmnist_npz_keeps_the_file_splits(tmp_path):
    rng = np.random.default_rng(0)
    parts = {}
    for name, n in (("train", 20), ("val", 6), ("test", 8)):
        parts[f"{name}_images"] = rng.integers(0, 255, (n, 28, 28, 28), dtype=np.uint8)
        parts[f"{name}_labels"] = (np.arange(n) % 2).reshape(-1, 1)
    np.savez(tmp_path / "nodule.npz", **parts)
    ds = load({"type": "medmnist-npz", "path": "nodule.npz"}, tmp_path, model="cnn3d")
    assert ds.spatial_dims == 3 and ds.input_shape == (28, 28, 28, 1)
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 20, "val": 6, "test": 8}
    assert ds.intensity[0] == "uint8"


def test_medmnist_missing_keys(tmp_path):
    np.savez(tmp_path / "bad.npz", images=np.zeros((4, 28, 28)))
    with pytest.raises(DataError, match="train_images"):
        load({"type": "medmnist-npz", "path": "bad.npz"}, tmp_path)


def test_numpy_arrays_are_memory_mapped(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(-500, 100, (10, 8, 8))
            .astype(np.float32))
    (tmp_path / "y.csv").write_text("label,patient\n" + "".join(
        f"{i % 2},p{i // 2}\n" for i in range(10)))
    ds = load({"type": "numpy-arrays", "images": "x.npy", "labels": "y.csv"}, tmp_path)
    assert isinstance(ds.images, np.memmap)
    assert len(np.unique(ds.groups)) == 5


def test_image_folder(tmp_path):
    for cls in ("benign", "malignant"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((20, 24), 40 * i, np.uint8)).save(
                tmp_path / "imgs" / cls / f"{i}.png")
    ds = load({"type": "image-folder", "root": "imgs", "image_size": [16, 16]}, tmp_path)
    assert ds.images.shape == (6, 16, 16, 1) and ds.labels.sum() == 3
    assert ds.class_names == ("benign", "malignant")
    assert ds.ids[0] == "benign/0.png"


def test_dicom_series_slices_with_labels(tmp_path):
    folder = tmp_path / "patient-1"
    folder.mkdir()
    for i in range(6):
        write_slice(folder / f"{i}.dcm", i)
    (tmp_path / "labels.csv").write_text("file,label\n" + "".join(
        f"{i}.dcm,{int(i >= 3)}\n" for i in range(6)))
    ds = load({"type": "dicom-series", "root": "patient-1", "labels": "labels.csv",
               "image_size": [16, 16]}, tmp_path)
    assert ds.images.shape == (6, 16, 16)
    # slices come in anatomical order (ascending z); labels follow their files
    assert {i: int(v) for i, v in zip(ds.ids, ds.labels, strict=True)} == {
        f"patient-1/{i}.dcm": int(i >= 3) for i in range(6)}
    assert ds.ids.tolist() == [f"patient-1/{i}.dcm" for i in reversed(range(6))]
    assert set(ds.groups) == {"patient-1"}
    assert "SECRET123" not in repr(ds) and "SECRET123" not in str(ds.provenance)


def test_luna16_patches(tmp_path, luna):  # noqa: F811
    ds = load({"type": "luna16", "root": str(luna), "patch_size": [16, 16, 16],
               "max_negatives_per_positive": None}, tmp_path, model="cnn3d")
    assert ds.images.shape == (5, 16, 16, 16)
    assert ds.labels.sum() == 2 and len(np.unique(ds.groups)) == 2


def test_dicom_series_level_volumes(tmp_path):
    for patient in range(4):
        folder = tmp_path / "ct" / f"patient-{patient}"
        folder.mkdir(parents=True)
        for i in range(6):
            write_slice(folder / f"{i}.dcm", i, series_uid=f"1.2.{patient}")
    (tmp_path / "series.csv").write_text("series,label\n" + "".join(
        f"patient-{p},{p % 2}\n" for p in range(4)))
    ds = load({"type": "dicom-series", "root": "ct", "labels": "series.csv", "level": "series",
               "volume_shape": [8, 16, 16]}, tmp_path, model="cnn3d")
    assert ds.images.shape == (4, 8, 16, 16) and ds.spatial_dims == 3
    assert ds.labels.tolist() == [0, 1, 0, 1]
    assert ds.ids.tolist() == [f"patient-{p}" for p in range(4)]
    with pytest.raises(Exception, match="2D input"):
        load({"type": "dicom-series", "root": "ct", "labels": "series.csv", "level": "series"},
             tmp_path, model="cnn2d")
