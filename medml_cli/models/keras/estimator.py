"""``ImageCnnClassifier``: a scikit-learn style classifier around a Keras CNN.

Two classes give the binary network (``Dense(1, sigmoid)``, binary cross-entropy); k > 2
classes (labels coded 0..k-1, k learnt from the training labels) give ``Dense(k, softmax)``
trained on sparse categorical cross-entropy, with a one-vs-rest macro AUROC as ``auroc``.

Training streams batches through :mod:`medml_cli.models.keras.input_pipeline`, so ``X`` may be a
memory-mapped array larger than RAM. Same ``random_state`` on the same machine and software
gives the same weights (seeded initialisers, seeded shuffle and augmentation, TensorFlow op
determinism). With ``checkpoint_dir`` set, every epoch leaves ``best.keras``, ``last.keras``
and ``train_state.json`` behind (each written atomically), so an interrupted run can be
resumed with ``fit(..., resume_from=checkpoint_dir / "last.keras", initial_epoch=k)`` where
``k`` is ``train_state.json["epoch"]`` (epochs done); epochs count from 0, as in Keras.

Saved models are loaded with Keras safe mode on: a ``.keras`` file that carries Python code
(e.g. a ``Lambda`` layer) is refused with :class:`~medml_cli.errors.ModelLoadError`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from medml_cli.errors import DataError, ModelLoadError
from medml_cli.jsonio import read_json, write_json
from medml_cli.models.keras.input_pipeline import (
    DEFAULT_INTENSITY,
    check_augment,
    check_intensity,
    class_weights,
    make_dataset,
    sample_shape,
)
from medml_cli.models.keras.networks import build_network, spatial_dims

if TYPE_CHECKING:
    import keras

MODEL_FILE = "model.keras"
ESTIMATOR_FILE = "estimator.json"
BEST_CHECKPOINT = "best.keras"
LAST_CHECKPOINT = "last.keras"
TRAIN_STATE = "train_state.json"
HISTORY_KEYS = ("loss", "auroc", "val_loss", "val_auroc")
_FORMAT = "medml.ImageCnnClassifier"
_FORMAT_VERSION = 1


def _import_keras() -> tuple[Any, Any]:
    from medml_cli.models.keras.tf_runtime import import_tensorflow

    tf, keras = import_tensorflow()
    _one_vs_rest_auc_class(keras, tf)  # registered before any model is loaded
    return keras, tf


_OVR_AUC: Any = None


def _one_vs_rest_auc_class(keras: Any, tf: Any) -> Any:
    """``keras.metrics.AUC`` over one-hot labels made from sparse class codes.

    With ``multi_label=True, num_labels=k`` it is the mean of the k one-vs-rest AUROCs (macro),
    so a k-class model reports ``auroc`` / ``val_auroc`` as a binary one does. Registered as
    ``medml>OneVsRestAUC`` so checkpoints load (and resume) in safe mode; defined on first
    use because Keras is not imported at module level.
    """
    global _OVR_AUC
    if _OVR_AUC is None:

        @keras.saving.register_keras_serializable(package="medml", name="OneVsRestAUC")
        class OneVsRestAUC(keras.metrics.AUC):
            def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
                codes = tf.cast(tf.reshape(y_true, [-1]), tf.int32)
                onehot = tf.one_hot(codes, int(self.num_labels), dtype=y_pred.dtype)
                return super().update_state(onehot, y_pred, sample_weight=sample_weight)

        _OVR_AUC = OneVsRestAUC
    return _OVR_AUC


def _save_keras_atomic(model: keras.Model, path: Path) -> None:
    """Write ``path`` via a temp file + ``os.replace``, so a crash never leaves half a file."""
    # Keras insists on the .keras suffix, so the temp name keeps it
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_keras_model(path: str | Path, *, compile: bool = False) -> keras.Model:
    """Load a ``.keras`` file with safe mode on; any failure becomes ModelLoadError."""
    keras, _ = _import_keras()
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(
            f"cannot load the Keras model {path.name}: {path} does not exist. "
            "Fix: point at a model folder written by medml, or re-train with medml."
        )
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=compile)
    except Exception as exc:  # Keras raises ValueError, OSError, zipfile errors, ...
        # Keras's first sentence says what went wrong; its later ones suggest turning
        # safe mode off, which is not advice medml passes on
        detail = " ".join(str(exc).split()).split(". ")[0].rstrip(".")
        if len(detail) > 200:
            detail = detail[:200] + "..."
        raise ModelLoadError(
            f"cannot load the Keras model {path.name} ({path}): the file is corrupt, "
            "truncated, or contains code (e.g. a Lambda layer) that safe mode refuses to "
            f"run [{type(exc).__name__}: {detail}]. Fix: re-train the model with medml "
            "instead of loading a .keras file from elsewhere; medml never turns safe mode off."
        ) from exc


def read_train_state(checkpoint_dir: str | Path) -> dict[str, Any] | None:
    """``train_state.json`` from a checkpoint folder, or None when there is none."""
    path = Path(checkpoint_dir) / TRAIN_STATE
    return read_json(path) if path.is_file() else None


def _binary_labels(y: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(y).reshape(-1)
    if len(arr) != n:
        raise DataError(f"{name} has {len(arr)} labels for {n} images")
    values = set(np.unique(arr).tolist())
    if not values <= {0, 1}:
        raise DataError(
            f"{name} must hold 0/1 labels, found {sorted(values)[:10]}",
            "map the two classes to 0 (negative) and 1 (positive)",
        )
    return arr.astype(np.float32)


def _class_codes(y: Any, n: int, name: str, n_classes: int) -> np.ndarray:
    """Labels coded 0..n_classes-1, as float32 (the pipeline's label dtype)."""
    arr = np.asarray(y).reshape(-1)
    if len(arr) != n:
        raise DataError(f"{name} has {len(arr)} labels for {n} images")
    values = np.unique(arr)
    if not np.all(np.isfinite(values.astype(np.float64))) or not np.array_equal(
        values, np.round(values)
    ) or not set(values.astype(np.int64).tolist()) <= set(range(n_classes)):
        raise DataError(
            f"{name} must hold class codes 0..{n_classes - 1}, found "
            f"{sorted(values.tolist())[:10]}",
            f"code the {n_classes} classes as 0, 1, ..., {n_classes - 1}",
        )
    return arr.astype(np.float32)


def _learn_n_classes(y: Any, n_classes: int | None) -> int:
    """k from the training labels (largest code + 1, at least 2), or the one given."""
    if n_classes is not None:
        k = int(n_classes)
        if k < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}")
        return k
    arr = np.asarray(y).reshape(-1)
    if arr.size == 0:
        return 2
    try:
        top = float(np.max(arr))
    except (TypeError, ValueError):
        return 2  # not numbers: the label check says so
    if not math.isfinite(top) or top != round(top) or top < 2:
        return 2
    return int(top) + 1


class ImageCnnClassifier(ClassifierMixin, BaseEstimator):
    """CNN classifier for 2D images (N, H, W[, C]) or volumes (N, D, H, W[, C]).

    Labels are class codes: 0/1 for a binary model (sigmoid head), 0..k-1 for k > 2 classes
    (softmax head); k is learnt in ``fit`` from the training labels (largest code + 1) unless
    ``fit(..., n_classes=k)`` gives it.

    ``architecture`` is one of ``cnn2d``, ``cnn3d``, ``resnet2d``, ``resnet3d``;
    ``intensity`` maps raw values to [0, 1] (see ``input_pipeline``); ``augment`` is a dict
    with optional ``flip``, ``rotate_degrees``, ``intensity_jitter``; ``class_weight`` is
    ``"balanced"``, None, or ``{0: w0, 1: w1, ...}`` (one weight per class).
    ``epoch_callback(epoch, logs)`` is called after each epoch with the 0-based epoch index
    (as Keras counts) and that epoch's metrics; ``model_`` then holds the network being
    trained, so the callback may score it, and an exception it raises ends the fit.

    After ``fit``: ``model_`` (best weights restored), ``history_`` (lists ``loss``,
    ``auroc`` and, with validation data, ``val_loss``, ``val_auroc``), ``best_epoch_``
    (0-based index of the epoch whose weights were kept), ``classes_`` (``np.arange(k)``),
    ``n_classes_`` (k), ``input_shape_``. For k > 2 ``auroc`` is the macro one-vs-rest AUROC.
    """

    def __init__(
        self,
        architecture: str = "cnn2d",
        filters: tuple[int, ...] = (32, 64, 128),
        dense_units: int = 512,
        dropout: float = 0.5,
        batch_norm: bool = False,
        epochs: int = 20,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        patience: int | None = 5,
        augment: dict | None = None,
        class_weight: str | Mapping[int, float] | None = "balanced",
        intensity: tuple[str, float, float] = DEFAULT_INTENSITY,
        random_state: int = 0,
        checkpoint_dir: str | Path | None = None,
        epoch_callback: Callable[[int, dict], None] | None = None,
        verbose: int = 0,
    ) -> None:
        self.architecture = architecture
        self.filters = filters
        self.dense_units = dense_units
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.augment = augment
        self.class_weight = class_weight
        self.intensity = intensity
        self.random_state = random_state
        self.checkpoint_dir = checkpoint_dir
        self.epoch_callback = epoch_callback
        self.verbose = verbose

    # ------------------------------------------------------------------ training

    def _sample_weights(
        self, y: np.ndarray, sample_weight: Any, n_classes: int = 2
    ) -> np.ndarray | None:
        cw = self.class_weight
        if n_classes > 2 and (cw == "balanced" or isinstance(cw, Mapping)):
            if cw == "balanced":
                per_class = class_weights(y, n_classes)
            else:
                given = {int(k): float(v) for k, v in cw.items()}
                missing = [c for c in range(n_classes) if c not in given]
                if missing:
                    raise ValueError(
                        f"class_weight gives no weight for class(es) {missing}; give one "
                        f"for each of the {n_classes} classes, or use 'balanced'"
                    )
                per_class = given
            table = np.asarray([per_class[c] for c in range(n_classes)], dtype=np.float64)
            weights = table[y.astype(np.int64)].astype(np.float32)
        elif cw is None:
            weights = None
        elif cw == "balanced":
            balanced = class_weights(y)
            weights = np.where(y == 1, balanced[1], balanced[0]).astype(np.float32)
        elif isinstance(cw, Mapping):
            weights = np.where(y == 1, float(cw[1]), float(cw[0])).astype(np.float32)
        else:
            raise ValueError(f"class_weight must be 'balanced', None or a dict, got {cw!r}")
        if sample_weight is not None:
            sw = np.asarray(sample_weight, dtype=np.float32).reshape(-1)
            if len(sw) != len(y):
                raise DataError(f"sample_weight has {len(sw)} entries for {len(y)} images")
            weights = sw if weights is None else weights * sw
        return weights

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None,
        resume_from: str | Path | None = None,
        initial_epoch: int = 0,
        n_classes: int | None = None,
    ) -> ImageCnnClassifier:
        """Train; returns self.

        ``y`` holds class codes: 0/1, or 0..k-1 for k > 2 classes. k is the largest code in
        ``y`` + 1 (at least 2) unless ``n_classes`` gives it, e.g. when a rare class is
        missing from the training split.

        With ``resume_from`` (a ``last.keras`` file or its folder) continue a checkpointed
        run; ``initial_epoch`` is the number of epochs already done, i.e. ``train_state.json``
        ``["epoch"]``. History, early-stopping state and best weights are picked up from
        the ``train_state.json`` / ``best.keras`` beside the checkpoint.
        """
        keras, tf = _import_keras()
        dims = spatial_dims(self.architecture)
        intensity = check_intensity(self.intensity)
        augment = check_augment(self.augment)
        input_shape = sample_shape(X.shape, dims)
        k = _learn_n_classes(y, n_classes)
        binary = k == 2
        if binary:
            y_arr = _binary_labels(y, int(X.shape[0]), "y")
        else:
            y_arr = _class_codes(y, int(X.shape[0]), "y", k)
        weights = self._sample_weights(y_arr, sample_weight, k)
        has_val = X_val is not None
        if has_val:
            if y_val is None:
                raise ValueError("X_val needs y_val")
            if sample_shape(X_val.shape, dims) != input_shape:
                raise DataError(
                    f"validation images have shape {tuple(X_val.shape[1:])}, training images "
                    f"{tuple(X.shape[1:])}; both must share one image shape"
                )
            if binary:
                y_val_arr = _binary_labels(y_val, int(X_val.shape[0]), "y_val")
            else:
                y_val_arr = _class_codes(y_val, int(X_val.shape[0]), "y_val", k)
        initial_epoch = int(initial_epoch)
        if not 0 <= initial_epoch <= self.epochs:
            raise ValueError(
                f"initial_epoch must lie in [0, epochs={self.epochs}], got {initial_epoch}"
            )
        if initial_epoch > 0 and resume_from is None:
            raise ValueError("initial_epoch > 0 needs resume_from (a last.keras checkpoint)")

        keras.utils.set_random_seed(int(self.random_state))
        # same seed => same weights on one machine; costs a little speed
        tf.config.experimental.enable_op_determinism()

        resume_dir: Path | None = None
        if resume_from is not None:
            resume_path = Path(resume_from)
            if resume_path.is_dir():
                resume_path = resume_path / LAST_CHECKPOINT
            resume_dir = resume_path.parent
            # compile=True restores the optimiser state (Adam moments) saved with the model
            model = load_keras_model(resume_path, compile=True)
            if tuple(model.input_shape[1:]) != input_shape:
                raise DataError(
                    f"checkpoint {resume_path} expects inputs of shape "
                    f"{tuple(model.input_shape[1:])}, the data give {input_shape}"
                )
            if _output_classes(model) != k:
                raise DataError(
                    f"checkpoint {resume_path} predicts {_output_classes(model)} classes, "
                    f"the labels have {k}"
                )
        else:
            model = build_network(
                self.architecture,
                input_shape,
                filters=tuple(int(f) for f in self.filters),
                dense_units=int(self.dense_units),
                dropout=float(self.dropout),
                batch_norm=bool(self.batch_norm),
                seed=int(self.random_state),
                n_classes=k,
            )
            if binary:
                loss = "binary_crossentropy"
                auroc = keras.metrics.AUC(name="auroc")
            else:
                loss = "sparse_categorical_crossentropy"
                auroc = _one_vs_rest_auc_class(keras, tf)(
                    name="auroc", multi_label=True, num_labels=k
                )
            model.compile(
                optimizer=keras.optimizers.Adam(learning_rate=float(self.learning_rate)),
                loss=loss,
                metrics=[auroc],
            )

        n_batches = math.ceil(int(X.shape[0]) / int(self.batch_size))
        common = dict(
            batch_size=int(self.batch_size),
            seed=int(self.random_state),
            intensity=intensity,
            spatial_dims=dims,
        )
        train_ds = make_dataset(
            X,
            y_arr,
            shuffle=True,
            augment=augment,
            sample_weights=weights,
            epochs=self.epochs - initial_epoch,
            first_epoch=initial_epoch,
            **common,
        )
        val_ds = make_dataset(X_val, y_val_arr, shuffle=False, **common) if has_val else None
        monitor = _make_monitor(
            keras,
            monitor="val_auroc" if has_val else "loss",
            patience=self.patience,
            checkpoint_dir=Path(self.checkpoint_dir) if self.checkpoint_dir else None,
            epoch_callback=self.epoch_callback,
        )
        if resume_dir is not None:
            monitor.restore(model, resume_dir, initial_epoch)
        # set before training, so an epoch_callback can score the network as it trains
        # (predict_proba on validation images, e.g. for a tuning study's pruner)
        self.model_ = model
        self.classes_ = np.arange(k)
        self.n_classes_ = k
        self.input_shape_ = input_shape
        if initial_epoch < self.epochs and not monitor.stopped:
            model.fit(
                train_ds,
                validation_data=val_ds,
                epochs=int(self.epochs),
                initial_epoch=initial_epoch,
                steps_per_epoch=n_batches,
                callbacks=[monitor],
                verbose=self.verbose,
                shuffle=False,  # the dataset shuffles itself, seeded per epoch
            )
        else:
            # the interrupted run had already finished training (all epochs, or early
            # stopping) before it died: keep its best weights, train no further
            monitor.set_model(model)
            monitor.on_train_end()
        self.history_ = monitor.history
        self.best_epoch_ = (
            monitor.best_epoch
            if monitor.best_epoch is not None
            else max(0, len(monitor.history.get("loss", [])) - 1)
        )
        return self

    # ---------------------------------------------------------------- prediction

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(N, 2) probabilities [P(class 0), P(class 1)] for a binary model, (N, k) for k
        classes (rows sum to 1); streamed batch by batch."""
        check_is_fitted(self, "model_")
        dims = len(self.input_shape_) - 1
        shape = sample_shape(X.shape, dims)
        if shape != tuple(self.input_shape_):
            raise DataError(
                f"images have shape {tuple(X.shape[1:])}; this model expects "
                f"{tuple(self.input_shape_)} (spatial axes + channel)"
            )
        ds = make_dataset(
            X,
            None,
            batch_size=int(self.batch_size),
            shuffle=False,
            seed=int(self.random_state),
            intensity=check_intensity(self.intensity),
            spatial_dims=dims,
        )
        out = np.asarray(self.model_.predict(ds, verbose=0), dtype=np.float64)
        if _n_classes(self) > 2:
            out = out.reshape(len(out), -1)
            return out / out.sum(axis=1, keepdims=True)
        p = out.reshape(-1)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class labels: for a binary model 0/1 (1 when P(class 1) >= 0.5), for k classes
        the most probable class (argmax)."""
        proba = self.predict_proba(X)
        if proba.shape[1] > 2:
            return self.classes_[np.argmax(proba, axis=1)]
        return self.classes_[(proba[:, 1] >= 0.5).astype(int)]

    # --------------------------------------------------------------- persistence

    def _json_params(self) -> dict[str, Any]:
        params = self.get_params(deep=False)
        params.pop("epoch_callback")  # a callable is not data; it is re-attached by callers
        params["filters"] = [int(f) for f in params["filters"]]
        params["intensity"] = list(params["intensity"])
        if params["checkpoint_dir"] is not None:
            params["checkpoint_dir"] = str(params["checkpoint_dir"])
        if isinstance(params["class_weight"], Mapping):
            params["class_weight"] = {str(k): float(v) for k, v in params["class_weight"].items()}
        return params

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/model.keras`` and ``folder/estimator.json``; returns ``folder``."""
        check_is_fitted(self, "model_")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        _save_keras_atomic(self.model_, folder / MODEL_FILE)
        write_json(
            folder / ESTIMATOR_FILE,
            {
                "format": _FORMAT,
                "format_version": _FORMAT_VERSION,
                "params": self._json_params(),
                "input_shape": list(self.input_shape_),
                "n_classes": _n_classes(self),
                "best_epoch": self.best_epoch_,
                "history": self.history_,
            },
        )
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ImageCnnClassifier:
        """Read a folder written by :meth:`save`; ModelLoadError when it is unusable."""
        folder = Path(folder)
        meta_path = folder / ESTIMATOR_FILE
        try:
            meta = read_json(meta_path)
            if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
                raise ValueError(f"not a {_FORMAT} description")
            params = dict(meta["params"])
            input_shape = tuple(int(s) for s in meta["input_shape"])
            k = int(meta.get("n_classes", 2))  # files from before multi-class are binary
            if k < 2:
                raise ValueError(f"n_classes {k} is below 2")
            params["filters"] = tuple(params["filters"])
            params["intensity"] = tuple(params["intensity"])
            if isinstance(params.get("class_weight"), dict):
                params["class_weight"] = {int(k): v for k, v in params["class_weight"].items()}
            est = cls(**params)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(
                f"cannot read {meta_path.name} in {folder}: it is missing or not a medml "
                f"image-model description ({type(exc).__name__}: {exc}). Fix: point at a "
                "model folder written by medml, or re-train with medml."
            ) from exc
        model = load_keras_model(folder / MODEL_FILE, compile=False)
        got = tuple(model.input_shape[1:])
        out = tuple(model.output_shape)
        if got != input_shape or out[1:] != ((1,) if k == 2 else (k,)):
            promise = "one probability" if k == 2 else f"{k} class probabilities"
            raise ModelLoadError(
                f"{MODEL_FILE} in {folder} takes inputs {got} and gives outputs {out}, but "
                f"{ESTIMATOR_FILE} promises inputs {input_shape} and {promise}. "
                "Fix: re-train the model with medml."
            )
        est.model_ = model
        est.input_shape_ = input_shape
        est.best_epoch_ = meta.get("best_epoch")
        est.history_ = meta.get("history") or {}
        est.classes_ = np.arange(k)
        est.n_classes_ = k
        return est


def _n_classes(estimator: ImageCnnClassifier) -> int:
    """k of a fitted estimator (2 for one fitted before multi-class support)."""
    return int(getattr(estimator, "n_classes_", 2))


def _output_classes(model: Any) -> int:
    """Classes a network predicts: 2 for a (N, 1) sigmoid output, else its output width."""
    width = int(model.output_shape[-1])
    return 2 if width == 1 else width


def verify_model_io(estimator: ImageCnnClassifier) -> float:
    """Run the network on one all-zero input; ModelLoadError unless it gives a probability
    (binary: returns P(class 1)) or, for k classes, k probabilities summing to 1 (returns
    the largest)."""
    check_is_fitted(estimator, "model_")
    zeros = np.zeros((1, *estimator.input_shape_), dtype=np.float32)
    try:
        out = np.asarray(estimator.model_(zeros, training=False))
    except Exception as exc:
        raise ModelLoadError(
            f"the model failed on an input of shape {zeros.shape}: {exc}. "
            "Fix: re-train the model with medml."
        ) from exc
    k = _n_classes(estimator)
    if k > 2:
        ok = (out.shape == (1, k) and bool(np.all(np.isfinite(out)))
              and bool(np.all((out >= 0.0) & (out <= 1.0)))
              and abs(float(out.sum()) - 1.0) < 1e-3)
        if not ok:
            raise ModelLoadError(
                f"the model should map an input of shape {zeros.shape} to {k} class "
                f"probabilities summing to 1, got an output of shape {out.shape} "
                f"({out.ravel()[:3]}). Fix: re-train the model with medml."
            )
        return float(out.max())
    if out.shape != (1, 1) or not np.all(np.isfinite(out)) or not 0.0 <= out.item() <= 1.0:
        raise ModelLoadError(
            f"the model should map an input of shape {zeros.shape} to one probability in "
            f"[0, 1], got an output of shape {out.shape} ({out.ravel()[:3]}). "
            "Fix: re-train the model with medml."
        )
    return float(out.item())


def _make_monitor(
    keras: Any,
    *,
    monitor: str,
    patience: int | None,
    checkpoint_dir: Path | None,
    epoch_callback: Callable[[int, dict], None] | None,
) -> Any:
    """Early stopping + best/last checkpoints + history + per-epoch hook, in one callback.

    One callback rather than Keras's EarlyStopping and ModelCheckpoint because a resumed
    run must restore the early-stopping state (best score, wait) and the checkpoint
    writes must be atomic; the class is defined here since Keras may not be imported at
    module level.
    """
    mode_max = monitor.endswith("auroc")

    class TrainingMonitor(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.history: dict[str, list[float]] = {}
            self.best: float | None = None
            self.best_epoch: int | None = None  # 0-based
            self.best_weights: list[np.ndarray] | None = None
            self.wait = 0

        @property
        def stopped(self) -> bool:
            return patience is not None and self.wait >= patience

        def restore(self, model: keras.Model, folder: Path, epochs_done: int) -> None:
            """Pick up history, early-stopping and dropout-RNG state from an interrupted run."""
            state = read_train_state(folder)
            if not state:
                return
            if state.get("epoch") == epochs_done:
                _set_rng_states(model, state.get("rng_states") or {})
            self.history = {
                k: list(v)[:epochs_done] for k, v in (state.get("history") or {}).items()
            }
            best_epoch = state.get("best_epoch")
            best_file = folder / BEST_CHECKPOINT
            if state.get("monitor") == monitor and best_epoch is not None:
                if not 0 <= int(best_epoch) < epochs_done:
                    return
                self.best = state.get("best")
                self.best_epoch = int(best_epoch)
                self.wait = epochs_done - 1 - self.best_epoch
                if best_file.is_file():
                    self.best_weights = load_keras_model(best_file).get_weights()

        def _improved(self, current: float) -> bool:
            if not math.isfinite(current):
                return False
            if self.best is None:
                return True
            return current > self.best if mode_max else current < self.best

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = {k: float(v) for k, v in (logs or {}).items()}
            for key in HISTORY_KEYS:
                if key in logs:
                    self.history.setdefault(key, []).append(logs[key])
            current = logs.get(monitor, float("nan"))
            if self._improved(current):
                self.best, self.best_epoch, self.wait = current, epoch, 0
                self.best_weights = self.model.get_weights()
                if checkpoint_dir is not None:
                    checkpoint_dir.mkdir(parents=True, exist_ok=True)
                    _save_keras_atomic(self.model, checkpoint_dir / BEST_CHECKPOINT)
            else:
                self.wait += 1
                # as in Keras's EarlyStopping: patience counts epochs without improvement
                if self.stopped:
                    self.model.stop_training = True
            if checkpoint_dir is not None:
                checkpoint_dir.mkdir(parents=True, exist_ok=True)
                _save_keras_atomic(self.model, checkpoint_dir / LAST_CHECKPOINT)
                # written last, so it never points at a checkpoint that is not on disk yet
                write_json(
                    checkpoint_dir / TRAIN_STATE,
                    {
                        "epoch": epoch + 1,  # epochs done = initial_epoch to resume with
                        "monitor": monitor,
                        "best": self.best,
                        "best_val_auroc": self.best if monitor == "val_auroc" else None,
                        "best_epoch": self.best_epoch,  # 0-based
                        "history": self.history,
                        "rng_states": _rng_states(self.model),
                    },
                )
            if epoch_callback is not None:
                epoch_callback(epoch, dict(logs))

        def on_train_end(self, logs: dict | None = None) -> None:
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return TrainingMonitor()


def _rng_states(model: keras.Model) -> dict[str, list[int]]:
    """Dropout seed-generator states by layer name.

    A ``.keras`` file does not keep them, so without this a resumed run would replay the
    dropout masks of epoch 1 and drift from the run it continues.
    """
    out = {}
    for layer in model.layers:
        generator = getattr(layer, "seed_generator", None)
        state = getattr(generator, "state", None)
        if state is not None:
            out[layer.name] = [int(v) for v in np.asarray(state.numpy()).ravel()]
    return out


def _set_rng_states(model: keras.Model, states: Mapping[str, list[int]]) -> None:
    for layer in model.layers:
        generator = getattr(layer, "seed_generator", None)
        state = getattr(generator, "state", None)
        saved = states.get(layer.name)
        if state is not None and saved is not None and len(saved) == int(np.prod(state.shape)):
            state.assign(np.asarray(saved, dtype=state.dtype).reshape(state.shape))
