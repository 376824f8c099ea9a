"""k-class image models and image data: softmax heads, k learnt from the labels, macro AUROC,
saving, Grad-CAM of the predicted class, and the sources that load k classes.

Tiny throughout (16x16 or 28x28 images, filters (4, 8), 1-3 epochs).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medml_cli.data.formats.image_files import load_image_folder
from medml_cli.data.formats.npz import load_medmnist_npz, load_medmnist_npz_with_names
from medml_cli.data.image_base import ImageDataset
from medml_cli.errors import DataError, ModelLoadError
from medml_cli.schemas import Provenance
from tests.imaging.shapes import make_shapes, make_shapes_npz

TINY = dict(filters=(4, 8), dense_units=16, epochs=2, batch_size=16)


def tf_test(func):
    """Marks a TensorFlow test (Keras's model.save trips numpy 2's __array__ deprecation)."""
    marked = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
    return pytest.mark.tensorflow(marked(func))


def _three_class(n: int = 48, shape: tuple[int, ...] = (16, 16), seed: int = 0):
    """uint8 images whose class c carries a bright square in corner c."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 60, (n, *shape)).astype(np.uint8)
    y = np.arange(n) % 3
    for c, corner in enumerate(((0, 0), (0, 8), (8, 0))):
        region = (y == c, *(slice(o, o + 6) for o in corner), *([slice(None)] * (len(shape) - 2)))
        x[region] = 220
    return x, y


def _est(**kw):
    from medml_cli.models.keras.estimator import ImageCnnClassifier

    return ImageCnnClassifier(intensity=("uint8", 0.0, 255.0), **{**TINY, **kw})


@pytest.fixture(scope="module")
def fitted3():
    x, y = _three_class()
    return _est(epochs=3).fit(x, y, X_val=x, y_val=y), x, y


# ------------------------------------------------------------------------------ networks


@tf_test
def test_every_network_has_a_softmax_head_for_k_classes_and_sigmoid_for_two():
    from medml_cli.models.keras.networks import ARCHITECTURES, OUTPUT, build_network

    for name, dims in ARCHITECTURES.items():
        shape = (16,) * dims + (1,)
        binary = build_network(name, shape, filters=(4, 8), dense_units=16, seed=3)
        multi = build_network(name, shape, filters=(4, 8), dense_units=16, seed=3, n_classes=5)
        assert binary.output_shape == (None, 1) and multi.output_shape == (None, 5)
        head = multi.get_layer(OUTPUT)
        assert head.activation.__name__ == "softmax"
        assert binary.get_layer(OUTPUT).activation.__name__ == "sigmoid"
        out = np.asarray(multi(np.zeros((2, *shape), np.float32)))
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
        # the same seeds below the head: every layer but the output starts identical
        for a, b in zip(binary.layers[:-1], multi.layers[:-1], strict=True):
            for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
                np.testing.assert_array_equal(wa, wb)
    with pytest.raises(ValueError, match="n_classes"):
        build_network("cnn2d", (16, 16, 1), n_classes=1)


def test_balanced_class_weights_for_k_classes():
    from medml_cli.models.keras.input_pipeline import class_weights

    y = np.array([0, 0, 0, 1, 2, 2])
    assert class_weights(y, 3) == pytest.approx({0: 6 / 9, 1: 2.0, 2: 1.0})
    assert class_weights(np.array([0, 1, 1, 1])) == {0: 2.0, 1: 4 / 6}  # binary as before
    with pytest.raises(DataError, match="class 3 has no examples"):
        class_weights(y, 4)
    with pytest.raises(DataError, match="0 or 1"):
        class_weights(y)


# ----------------------------------------------------------------------------- estimator


@tf_test
def test_k_learnt_from_labels_proba_shape_and_argmax(fitted3):
    est, x, y = fitted3
    assert est.n_classes_ == 3 and list(est.classes_) == [0, 1, 2]
    proba = est.predict_proba(x)
    assert proba.shape == (48, 3) and np.allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(est.predict(x), np.argmax(proba, axis=1))
    assert set(est.history_) == {"loss", "auroc", "val_loss", "val_auroc"}
    assert all(0.0 <= v <= 1.0 for v in est.history_["val_auroc"])
    assert est.model_.loss == "sparse_categorical_crossentropy"
    from medml_cli.models.keras.estimator import verify_model_io

    assert 1 / 3 - 1e-6 <= verify_model_io(est) <= 1.0


@tf_test
def test_val_auroc_is_the_macro_one_vs_rest_auroc(fitted3):
    """Keras's AUC over one-hot labels (200 thresholds) is close to sklearn's macro OvR."""
    from sklearn.metrics import roc_auc_score

    est, x, y = fitted3
    p = est.predict_proba(x)
    evaluated = est.model_.evaluate(x.astype(np.float32)[..., None] / 255.0, y.astype(np.float32),
                                    verbose=0, return_dict=True)
    assert evaluated["auroc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr"),
                                               abs=0.02)


@tf_test
def test_multiclass_training_is_reproducible_and_balanced_weights_apply():
    x, y = _three_class(42)
    keep = np.r_[np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:4]]  # class 2 is rare
    a = _est(epochs=1).fit(x[keep], y[keep])
    b = _est(epochs=1).fit(x[keep], y[keep])
    np.testing.assert_array_equal(a.predict_proba(x), b.predict_proba(x))
    weights = a._sample_weights(y[keep].astype(np.float32), None, 3)
    assert weights[-1] > weights[0]  # the rare class weighs more
    given = _est(class_weight={0: 1.0, 1: 1.0, 2: 3.0})._sample_weights(
        y[keep].astype(np.float32), None, 3)
    assert set(np.round(given, 6).tolist()) == {1.0, 3.0}
    with pytest.raises(ValueError, match="no weight for class"):
        _est(class_weight={0: 1.0, 1: 1.0})._sample_weights(y.astype(np.float32), None, 3)


@tf_test
def test_n_classes_can_be_given_and_bad_codes_are_refused():
    x, y = _three_class(24)
    y2 = np.where(y == 2, 0, y)  # class 2 absent from training
    est = _est(epochs=1, class_weight=None).fit(x, y2, n_classes=3)
    assert est.predict_proba(x).shape == (24, 3)
    with pytest.raises(DataError, match="class codes 0..2"):
        _est(epochs=1).fit(x, y, X_val=x, y_val=y + 5, n_classes=3)
    with pytest.raises(DataError, match="0/1 labels"):
        _est(epochs=1).fit(x, y - 1)  # negative codes: not learnt as classes


@tf_test
def test_multiclass_save_load_keeps_k(fitted3, tmp_path):
    from medml_cli.models.keras.estimator import ImageCnnClassifier

    est, x, _ = fitted3
    folder = est.save(tmp_path / "m")
    meta = json.loads((folder / "estimator.json").read_text())
    assert meta["n_classes"] == 3
    loaded = ImageCnnClassifier.load(folder)
    assert loaded.n_classes_ == 3 and list(loaded.classes_) == [0, 1, 2]
    np.testing.assert_array_equal(loaded.predict_proba(x), est.predict_proba(x))
    meta["n_classes"] = 2  # a description that no longer matches the network
    (folder / "estimator.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="one probability"):
        ImageCnnClassifier.load(folder)


@tf_test
def test_multiclass_resume_from_checkpoint(tmp_path):
    x, y = _three_class(24)
    ckpt = tmp_path / "ckpt"
    _est(epochs=1, checkpoint_dir=ckpt).fit(x, y, X_val=x, y_val=y)
    resumed = _est(epochs=2, checkpoint_dir=ckpt).fit(
        x, y, X_val=x, y_val=y, resume_from=ckpt, initial_epoch=1)
    straight = _est(epochs=2).fit(x, y, X_val=x, y_val=y)
    np.testing.assert_allclose(resumed.history_["loss"], straight.history_["loss"], rtol=1e-6)
    with pytest.raises(DataError, match="predicts 3 classes, the labels have 2"):
        _est(epochs=2).fit(x, y % 2, resume_from=ckpt, initial_epoch=1)


@tf_test
def test_gradcam_of_the_predicted_class_for_softmax_models(fitted3, tmp_path):
    from medml_cli.models.keras.gradcam import gradcam_heatmaps, save_gradcam_overlays
    from medml_cli.models.keras.input_pipeline import normalise_array

    est, x, y = fitted3
    xn = normalise_array(x[:6], est.intensity)
    default = gradcam_heatmaps(est.model_, xn)
    assert default.shape == (6, 16, 16) and default.min() >= 0 and default.max() <= 1
    predicted = est.predict(x[:6])
    np.testing.assert_allclose(gradcam_heatmaps(est.model_, xn, class_index=predicted), default,
                               atol=1e-6)
    other = gradcam_heatmaps(est.model_, xn, class_index=(predicted + 1) % 3)
    assert not np.allclose(other, default)
    with pytest.raises(ValueError, match="class_index must lie in 0..2"):
        gradcam_heatmaps(est.model_, xn, class_index=3)
    paths = save_gradcam_overlays(est.model_, xn[:2], est.predict_proba(x[:2]), y[:2], ["a", "b"],
                                  tmp_path / "cam", class_names=("r", "s", "t"))
    assert len(paths) == 2 and all(Path(p).is_file() for p in paths)


@tf_test
def test_gradcam_rejects_class_index_for_binary_models():
    from medml_cli.models.keras.gradcam import gradcam_heatmaps
    from medml_cli.models.keras.networks import build_network

    net = build_network("cnn2d", (16, 16, 1), filters=(4,), dense_units=8)
    with pytest.raises(ValueError, match="class_index is for k-class"):
        gradcam_heatmaps(net, np.zeros((1, 16, 16, 1), np.float32), class_index=0)


@tf_test
def test_3d_multiclass_network_trains():
    x, y = _three_class(12, (16, 16, 8))
    est = _est(architecture="cnn3d", epochs=1).fit(x, y)
    assert est.predict_proba(x).shape == (12, 3)


# ---------------------------------------------------------------------------------- data


def _medmnist(path: Path, labels_by_split: dict[str, list[int]], **extra) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, labels in labels_by_split.items():
        arrays[f"{split}_images"] = rng.integers(0, 256, (len(labels), 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = np.asarray(labels, dtype=np.uint8).reshape(-1, 1)
    np.savez(path, **arrays, **extra)
    return path


FOUR = {"train": [0, 1, 2, 3] * 3, "val": [0, 1, 2, 3], "test": [3, 2, 1, 0]}


def test_medmnist_loads_k_classes_with_number_names(tmp_path):
    path = _medmnist(tmp_path / "organ.npz", FOUR)
    parts, names = load_medmnist_npz_with_names(path)
    assert names == ("0", "1", "2", "3")
    np.testing.assert_array_equal(parts["test"][1], [3, 2, 1, 0])
    assert parts["train"][1].dtype == np.int64
    np.testing.assert_array_equal(load_medmnist_npz(path)["val"][1], [0, 1, 2, 3])
    # positive_classes still binarises on purpose
    binary, none = load_medmnist_npz_with_names(path, positive_classes=[3])
    assert none is None and binary["test"][1].tolist() == [1, 0, 0, 0]


def test_medmnist_names_from_the_file_and_gaps_in_numbering(tmp_path):
    named = _medmnist(tmp_path / "named.npz", FOUR,
                      class_names=np.array(["liver", "lung", "heart", "kidney"]))
    assert load_medmnist_npz_with_names(named)[1] == ("liver", "lung", "heart", "kidney")
    gaps = _medmnist(tmp_path / "gaps.npz", {"train": [0, 2, 5, 5], "val": [2], "test": [0]})
    parts, names = load_medmnist_npz_with_names(gaps)
    assert names == ("0", "2", "5") and parts["train"][1].tolist() == [0, 1, 2, 2]
    short = _medmnist(tmp_path / "short.npz", FOUR, class_names=np.array(["a", "b"]))
    with pytest.raises(DataError, match="class_names array"):
        load_medmnist_npz_with_names(short)
    odd = _medmnist(tmp_path / "odd.npz", {"train": [1, 2], "val": [1], "test": [2]})
    with pytest.raises(DataError, match="two classes coded 1 and 2"):
        load_medmnist_npz(odd)


def test_medmnist_source_gives_k_class_names(tmp_path):
    from tests.test_image_data import load

    make_shapes_npz(tmp_path / "shapes.npz", n_per_class=10, seed=1)
    ds = load({"type": "medmnist-npz", "path": "shapes.npz"}, tmp_path)
    assert ds.class_names == ("0", "1", "2", "3") and ds.n_classes == 4
    assert set(ds.labels.tolist()) == {0, 1, 2, 3}
    binary = load({"type": "medmnist-npz", "path": "shapes.npz", "positive_classes": [1]},
                  tmp_path)
    assert binary.class_names == ("negative", "positive") and set(binary.labels) == {0, 1}


def _png(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((10, 10), value, np.uint8)).save(path)


def test_image_folder_with_k_class_folders(tmp_path):
    from tests.test_image_data import load

    for i, cls in enumerate(("covid", "normal", "bacterial")):
        for j in range(2):
            _png(tmp_path / "imgs" / cls / f"{j}.png", 40 * i)
    images, labels, names, paths = load_image_folder(tmp_path / "imgs", (8, 8))
    assert names == ["bacterial", "covid", "normal"]
    assert labels.tolist() == [0, 0, 1, 1, 2, 2]
    ds = load({"type": "image-folder", "root": "imgs", "image_size": [8, 8]}, tmp_path)
    assert ds.class_names == ("bacterial", "covid", "normal")
    assert ds.labels.tolist() == [0, 0, 1, 1, 2, 2]
    binary = load({"type": "image-folder", "root": "imgs", "image_size": [8, 8],
                   "positive_class": "covid"}, tmp_path)
    assert binary.class_names == ("not covid", "covid")
    assert binary.labels.tolist() == [0, 0, 1, 1, 0, 0]


def test_numpy_arrays_with_k_classes(tmp_path):
    from tests.test_image_data import load

    np.save(tmp_path / "x.npy", np.zeros((9, 8, 8), np.float32))
    (tmp_path / "y.csv").write_text("label\n" + "".join(f"{(i % 3) * 2}\n" for i in range(9)))
    ds = load({"type": "numpy-arrays", "images": "x.npy", "labels": "y.csv"}, tmp_path)
    assert ds.class_names == ("0", "2", "4") and ds.labels.tolist() == [0, 1, 2] * 3
    (tmp_path / "t.csv").write_text("label\n" + "a\nc\nb\n" * 3)
    ds = load({"type": "numpy-arrays", "images": "x.npy", "labels": "t.csv"}, tmp_path)
    assert ds.class_names == ("a", "b", "c") and ds.labels.tolist() == [0, 2, 1] * 3
    (tmp_path / "b.csv").write_text("label\n" + "1\n2\n" * 4 + "1\n")
    with pytest.raises(DataError, match="0/1"):
        load({"type": "numpy-arrays", "images": "x.npy", "labels": "b.csv"}, tmp_path)


def _dataset(labels, names) -> ImageDataset:
    n = len(labels)
    return ImageDataset(images=np.zeros((n, 4, 4)), labels=np.asarray(labels),
                        ids=np.arange(n).astype(str), provenance=Provenance(source="t"),
                        intensity=("unit", 0.0, 1.0), spatial_dims=2, class_names=names)


def test_dataset_check_for_k_classes():
    assert _dataset([0, 1, 2, 1], ("a", "b", "c")).check("t").n_classes == 3
    with pytest.raises(DataError, match="at least two classes"):
        _dataset([2, 2, 2], ("a", "b", "c")).check("t")
    with pytest.raises(DataError, match="both classes"):
        _dataset([1, 1], ("a", "b")).check("t")
    with pytest.raises(DataError, match=r"class codes 0..2"):
        _dataset([0, 1, 3], ("a", "b", "c")).check("t")
    with pytest.raises(DataError, match="labels must be 0/1"):
        _dataset([0, 2], ("a", "b")).check("t")


def test_shapes_generator_is_seeded_and_balanced(tmp_path):
    a, ya = make_shapes(5, seed=3)
    b, yb = make_shapes(5, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (20, 28, 28) and a.dtype == np.uint8 and np.bincount(ya).tolist() == [5] * 4
    path = make_shapes_npz(tmp_path / "s.npz", n_per_class=10, seed=0)
    with np.load(path) as z:
        assert z["train_labels"].shape[1] == 1 and z["test_images"].shape[1:] == (28, 28)


@pytest.mark.slow
@tf_test
def test_cnn_learns_shapes_a_pixel_model_cannot():
    """The benchmark, small: a CNN separates the shape classes (macro AUROC)."""
    from sklearn.metrics import roc_auc_score

    x_tr, y_tr = make_shapes(120, seed=1)
    x_te, y_te = make_shapes(40, seed=2)
    est = _est(filters=(16, 32, 64), dense_units=64, dropout=0.3, epochs=8, batch_size=32,
               learning_rate=2e-3).fit(x_tr, y_tr)
    assert roc_auc_score(y_te, est.predict_proba(x_te), multi_class="ovr") > 0.9

