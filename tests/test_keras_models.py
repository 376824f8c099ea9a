"""Keras side of the image task: networks, streaming input, estimator, Grad-CAM.

Everything is tiny (16x16 images, 16^3 volumes, filters (4, 8), 2 epochs) so the file runs
in well under a minute on two CPU cores.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

from medml_cli.errors import ModelLoadError
from medml_cli.models.keras.estimator import ImageCnnClassifier, verify_model_io
from medml_cli.models.keras.gradcam import gradcam_heatmaps, save_gradcam_overlays
from medml_cli.models.keras.input_pipeline import class_weights, make_dataset, normalise_array
from medml_cli.models.keras.networks import ARCHITECTURES, build_network, last_conv_layer_name

pytestmark = [
    pytest.mark.tensorflow,
    # Keras's own model.save trips numpy 2's __array__ copy-keyword deprecation
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]

TINY = dict(filters=(4, 8), dense_units=16, epochs=2, batch_size=8)


def _images(n: int = 40, shape: tuple[int, ...] = (16, 16), seed: int = 0):
    """HU-like int16 images; positives carry a bright blob so there is something to learn."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-1000, 0, (n, *shape)).astype(np.int16)
    y = np.arange(n) % 2
    centre = tuple(slice(s // 4, s // 4 + s // 3) for s in shape)
    x[(y == 1, *centre)] = 200
    return x, y


@pytest.fixture(scope="module")
def fitted() -> tuple[ImageCnnClassifier, np.ndarray, np.ndarray]:
    x, y = _images()
    est = ImageCnnClassifier(**TINY).fit(x, y, X_val=x, y_val=y)
    return est, x, y


def test_every_architecture_builds_with_a_probability_output():
    for name, dims in ARCHITECTURES.items():
        shape = (16,) * dims + (1,)
        model = build_network(name, shape, filters=(4, 8), dense_units=16, seed=3)
        assert model.output_shape == (None, 1)
        assert last_conv_layer_name(model) == "last_conv"
        out = np.asarray(model(np.zeros((2, *shape), np.float32)))
        assert out.shape == (2, 1) and np.all((out >= 0) & (out <= 1))
    with pytest.raises(ValueError, match="cnn2d, cnn3d, resnet2d, resnet3d"):
        build_network("vgg", (16, 16, 1))


def test_fit_predict_shapes_and_range(fitted):
    est, x, _ = fitted
    proba = est.predict_proba(x)
    assert proba.shape == (40, 2)
    assert np.all((proba >= 0) & (proba <= 1)) and np.allclose(proba.sum(axis=1), 1)
    assert set(est.predict(x)) <= {0, 1}
    assert est.input_shape_ == (16, 16, 1) and list(est.classes_) == [0, 1]
    assert set(est.history_) == {"loss", "auroc", "val_loss", "val_auroc"}
    assert len(est.history_["val_auroc"]) == 2 and est.best_epoch_ in (0, 1)
    assert 0.0 <= verify_model_io(est) <= 1.0
    assert clone(est).get_params() == est.get_params()


def test_fit_3d_volumes():
    x, y = _images(16, (16, 16, 16))
    est = ImageCnnClassifier(architecture="cnn3d", **{**TINY, "epochs": 1}).fit(x, y)
    assert est.predict_proba(x).shape == (16, 2)


def test_same_seed_gives_identical_predictions(fitted):
    est, x, y = fitted
    again = ImageCnnClassifier(**TINY).fit(x, y, X_val=x, y_val=y)
    np.testing.assert_array_equal(again.predict_proba(x), est.predict_proba(x))


def test_save_load_round_trip(fitted, tmp_path):
    est, x, _ = fitted
    est.save(tmp_path / "model")
    assert (tmp_path / "model" / "model.keras").is_file()
    loaded = ImageCnnClassifier.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.predict_proba(x), est.predict_proba(x))
    assert loaded.get_params()["filters"] == (4, 8)
    assert loaded.history_ == json.loads(json.dumps(est.history_))


def test_lambda_layer_is_refused_by_safe_mode(fitted, tmp_path):
    import keras

    est, _, _ = fitted
    folder = est.save(tmp_path / "model")
    inputs = keras.Input((16, 16, 1))
    hidden = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(hidden))
    keras.Model(inputs, outputs).save(folder / "model.keras")  # estimator.json stays valid
    with pytest.raises(ModelLoadError, match="safe mode"):
        ImageCnnClassifier.load(folder)


def test_truncated_model_file_is_refused(fitted, tmp_path):
    est, _, _ = fitted
    folder = est.save(tmp_path / "model")
    path = folder / "model.keras"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match="model.keras.*corrupt, truncated"):
        ImageCnnClassifier.load(folder)


def test_streaming_from_memmap(tmp_path):
    x, y = _images(45)
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    ds = make_dataset(mm, y, batch_size=8, shuffle=True, seed=0, sample_weights=np.ones(45))
    batches = list(ds.as_numpy_iterator())
    assert len(batches) == math.ceil(45 / 8)
    assert sum(len(b[1]) for b in batches) == 45
    xs = np.concatenate([b[0] for b in batches])
    assert xs.shape == (45, 16, 16, 1) and xs.dtype == np.float32
    assert xs.min() >= 0.0 and xs.max() <= 1.0
    # every image comes through exactly once (order shuffled)
    assert np.isclose(xs.sum(), normalise_array(x, ("hu", -1000.0, 400.0)).sum(), rtol=1e-5)
    assert class_weights(y[:4]) == {0: 1.0, 1: 1.0}


def test_augmentation_is_reproducible_for_a_seed():
    x, y = _images(16)
    aug = {"flip": True, "rotate_degrees": 15.0, "intensity_jitter": 0.05}

    def first_epochs(seed: int) -> list[np.ndarray]:
        ds = make_dataset(x, y, batch_size=8, shuffle=True, seed=seed, augment=aug, epochs=2)
        return [b[0] for b in ds.as_numpy_iterator()]

    a, b, c = first_epochs(1), first_epochs(1), first_epochs(2)
    assert len(a) == 4
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert not all(np.array_equal(p, q) for p, q in zip(a, c, strict=True))
    assert not np.array_equal(a[0], a[2])  # epochs differ from one another
    assert all(0.0 <= batch.min() and batch.max() <= 1.0 for batch in a)


def test_resume_from_last_checkpoint(tmp_path):
    x, y = _images(24)
    ckpt = tmp_path / "ckpt"
    ImageCnnClassifier(**{**TINY, "epochs": 1}, checkpoint_dir=ckpt).fit(x, y, X_val=x, y_val=y)
    assert {p.name for p in ckpt.iterdir()} == {"best.keras", "last.keras", "train_state.json"}
    state = json.loads((ckpt / "train_state.json").read_text())
    assert state["epoch"] == 1 and len(state["history"]["val_auroc"]) == 1
    seen = []
    resumed = ImageCnnClassifier(
        **TINY, checkpoint_dir=ckpt, epoch_callback=lambda e, logs: seen.append(e)
    ).fit(x, y, X_val=x, y_val=y, resume_from=ckpt / "last.keras", initial_epoch=1)
    assert seen == [1]  # 0-based, as Keras counts
    assert len(resumed.history_["loss"]) == 2
    assert json.loads((ckpt / "train_state.json").read_text())["epoch"] == 2
    # resuming continues the very run that was interrupted
    straight = ImageCnnClassifier(**TINY).fit(x, y, X_val=x, y_val=y)
    np.testing.assert_allclose(resumed.history_["loss"], straight.history_["loss"], rtol=1e-6)
    # a run that died after its last epoch resumes to "nothing left to train"
    done = ImageCnnClassifier(**TINY).fit(x, y, X_val=x, y_val=y, resume_from=ckpt, initial_epoch=2)
    assert done.best_epoch_ == resumed.best_epoch_ and len(done.history_["loss"]) == 2
    np.testing.assert_array_equal(done.predict_proba(x), resumed.predict_proba(x))


def test_gradcam_heatmaps_and_overlays(fitted, tmp_path):
    est, x, y = fitted
    xn = normalise_array(x[:3], est.intensity)
    maps = gradcam_heatmaps(est.model_, xn)
    assert maps.shape == (3, 16, 16) and maps.min() >= 0 and maps.max() <= 1
    volume_net = build_network("resnet3d", (16, 16, 16, 1), filters=(4, 8), seed=0)
    vol = np.random.default_rng(0).random((2, 16, 16, 16, 1)).astype(np.float32)
    assert gradcam_heatmaps(volume_net, vol).shape == (2, 16, 16, 16)
    paths = save_gradcam_overlays(
        volume_net, vol, [0.2, 0.9], [0, 1], ["a", "b"], tmp_path / "cam", n=8, synthetic=True
    )
    assert len(paths) == 2
    assert all(Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)
