"""Streaming ``tf.data`` input pipeline for image / volume arrays.

The dataset never materialises the whole array: it maps over (epoch, batch) numbers and
reads one batch of rows at a time from ``images`` (a numpy array or a memory-mapped
``np.load(..., mmap_mode="r")`` array), so memory stays bounded by a few batches even when
the array on disk is larger than RAM. Everything random is a pure function of
``(seed, epoch, batch)``: the shuffle order of epoch ``e`` comes from
``np.random.default_rng(seed + e)`` and a batch's augmentation from
``np.random.default_rng([seed, e, b])``. That keeps the pipeline reproducible and lets the
batch loader run as a *stateless* ``tf.numpy_function``, so ``tf.data`` may still load
batches in parallel and prefetch when TensorFlow op determinism is on.

TensorFlow is imported inside :func:`make_dataset` only; the rest is plain numpy (plus
scipy for rotations).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from medml_cli.errors import DataError
from medml_cli.schemas import DEFAULT_HU_WINDOW

if TYPE_CHECKING:
    import tensorflow as tf

Intensity = tuple[str, float, float]

INTENSITY_MODES = ("hu", "uint8", "unit")
#: The default intensity: CT in HU, windowed to the default lung window.
DEFAULT_INTENSITY: Intensity = ("hu", *DEFAULT_HU_WINDOW)
AUGMENT_KEYS = ("flip", "rotate_degrees", "intensity_jitter")
#: Augmentation bounds: the CNN config's `augment` fields and :func:`check_augment` share them.
MAX_ROTATE_DEGREES = 45.0
MAX_INTENSITY_JITTER = 0.5


def check_intensity(intensity: Any) -> Intensity:
    """Validate ``(mode, lo, hi)``; returns it as a tuple of (str, float, float)."""
    try:
        mode, lo, hi = intensity
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        raise ValueError(
            f"intensity must be (mode, lo, hi), e.g. ('hu', -1000, 400), got {intensity!r}"
        ) from None
    if mode not in INTENSITY_MODES:
        raise ValueError(
            f"intensity mode must be one of {', '.join(INTENSITY_MODES)}; got {mode!r}"
        )
    if mode != "unit" and not hi > lo:
        raise ValueError(f"intensity window needs hi > lo, got lo={lo}, hi={hi}")
    return str(mode), lo, hi


def check_augment(augment: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate an augmentation dict; returns a plain dict with only the active keys."""
    if not augment:
        return {}
    unknown = sorted(set(augment) - set(AUGMENT_KEYS))
    if unknown:
        raise ValueError(
            f"unknown augmentation keys {unknown}; valid keys: {', '.join(AUGMENT_KEYS)}"
        )
    out: dict[str, Any] = {}
    if augment.get("flip"):
        out["flip"] = True
    rotate = float(augment.get("rotate_degrees") or 0.0)
    if not 0.0 <= rotate <= MAX_ROTATE_DEGREES:
        raise ValueError(f"rotate_degrees must lie in [0, {MAX_ROTATE_DEGREES:g}], got {rotate}")
    if rotate:
        out["rotate_degrees"] = rotate
    jitter = float(augment.get("intensity_jitter") or 0.0)
    if not 0.0 <= jitter <= MAX_INTENSITY_JITTER:
        raise ValueError(
            f"intensity_jitter must lie in [0, {MAX_INTENSITY_JITTER:g}], got {jitter}")
    if jitter:
        out["intensity_jitter"] = jitter
    return out


def infer_spatial_dims(shape: tuple[int, ...]) -> int:
    """Guess 2 or 3 spatial dimensions from an array shape (N, *spatial[, C]).

    (N, H, W) -> 2; (N, D, H, W, C) -> 3; (N, a, b, c) is (N, H, W, C) when the last axis
    is a plausible channel count (<= 4), else a single-channel volume (N, D, H, W). Pass
    ``spatial_dims`` explicitly where this guess could be wrong.
    """
    ndim = len(shape)
    if ndim == 3:
        return 2
    if ndim == 5:
        return 3
    if ndim == 4:
        return 2 if shape[-1] <= 4 else 3
    raise ValueError(f"expected images of shape (N, *spatial) or (N, *spatial, C), got {shape}")


def sample_shape(shape: tuple[int, ...], spatial_dims: int | None = None) -> tuple[int, ...]:
    """Shape of one network input (spatial axes + channel axis) for an array of ``shape``."""
    dims = spatial_dims or infer_spatial_dims(tuple(shape))
    rest = tuple(int(s) for s in shape[1:])
    if len(rest) == dims:
        return (*rest, 1)
    if len(rest) == dims + 1:
        return rest
    raise ValueError(
        f"images of shape {tuple(shape)} do not fit {dims} spatial dimensions "
        "(expected (N, *spatial) or (N, *spatial, C))"
    )


def _normalise(batch: np.ndarray, intensity: Intensity, shape: tuple[int, ...]) -> np.ndarray:
    mode, lo, hi = intensity
    x = np.asarray(batch, dtype=np.float32).reshape((batch.shape[0], *shape))
    if mode == "unit":
        return np.ascontiguousarray(x)
    # "hu" and "uint8" are both a window [lo, hi] mapped to [0, 1]; ("uint8", 0, 255)
    # is x / 255. np.clip makes a new array, so the caller's data are never modified.
    x = np.clip(x, lo, hi)
    x -= np.float32(lo)
    x *= np.float32(1.0 / (hi - lo))
    return x


def normalise_array(
    images: np.ndarray, intensity: Intensity, *, spatial_dims: int | None = None
) -> np.ndarray:
    """Whole array -> float32 network input (N, *spatial, C), for small in-memory data."""
    intensity = check_intensity(intensity)
    shape = sample_shape(images.shape, spatial_dims)
    return _normalise(np.asarray(images), intensity, shape)


def class_weights(labels: np.ndarray, n_classes: int = 2) -> dict[int, float]:
    """Balanced class weights ``n / (k * n_c)`` for labels in {0, ..., k-1}, k = ``n_classes``.

    For two classes (the default) that is ``n / (2 * n_c)`` for labels in {0, 1}.
    """
    y = np.asarray(labels).reshape(-1)
    k = int(n_classes)
    values = set(np.unique(y).tolist())
    if k == 2 and not values <= {0, 1}:
        raise DataError(
            f"labels must be 0 or 1 for binary classification, found {sorted(values)[:10]}",
            "map the two classes to 0 (negative) and 1 (positive)",
        )
    if not values <= set(range(k)):
        raise DataError(
            f"labels must be class codes 0..{k - 1}, found {sorted(values)[:10]}",
            f"code the {k} classes as 0, 1, ..., {k - 1}",
        )
    n = len(y)
    counts = {c: int(np.sum(y == c)) for c in range(k)}
    missing = [c for c, m in counts.items() if m == 0]
    if missing:
        raise DataError(
            f"class {missing[0]} has no examples, so balanced class weights are undefined",
            "train on data that contain every class, or set class_weight to null",
        )
    return {c: n / (float(k) * m) for c, m in counts.items()}


def augment_batch(
    x: np.ndarray, augment: Mapping[str, Any], rng: np.random.Generator, spatial_dims: int
) -> np.ndarray:
    """Apply flips, in-plane rotations and intensity jitter to a normalised batch.

    ``x`` is (N, *spatial, C) on the [0, 1] scale. Rotations turn the (H, W) plane, which
    for volumes (D, H, W) is the axial plane. Draws come from ``rng`` in a fixed order, so
    the result is a pure function of the generator's seed.
    """
    if not augment:
        return x
    x = np.array(x, dtype=np.float32, copy=True)
    n = x.shape[0]
    if augment.get("flip"):
        for axis in range(1, spatial_dims + 1):
            mask = rng.random(n) < 0.5
            if mask.any():
                x[mask] = np.flip(x[mask], axis=axis)
    degrees = float(augment.get("rotate_degrees") or 0.0)
    if degrees:
        from scipy import ndimage

        angles = rng.uniform(-degrees, degrees, n)
        # in a sample (H, W, C) or (D, H, W, C) the in-plane axes are the two before C
        axes = (0, 1) if spatial_dims == 2 else (1, 2)
        for i in range(n):
            x[i] = ndimage.rotate(
                x[i], angles[i], axes=axes, reshape=False, order=1, mode="nearest"
            )
    jitter = float(augment.get("intensity_jitter") or 0.0)
    if jitter:
        scale = rng.uniform(1.0 - jitter, 1.0 + jitter, n).astype(np.float32)
        x *= scale.reshape((n,) + (1,) * (x.ndim - 1))
        x += rng.uniform(-jitter, jitter, x.shape).astype(np.float32)
        np.clip(x, 0.0, 1.0, out=x)
    return x


def _column(values: Any, n: int, name: str) -> np.ndarray | None:
    if values is None:
        return None
    arr = np.asarray(values, dtype=np.float32).reshape(-1)
    if len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} entries but images has {n}")
    return arr


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray | None,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    intensity: Intensity = DEFAULT_INTENSITY,
    augment: dict | None = None,
    sample_weights: np.ndarray | None = None,
    spatial_dims: int | None = None,
    epochs: int | None = None,
    first_epoch: int = 0,
) -> tf.data.Dataset:
    """A streaming dataset of float32 batches ``(x, y)``, ``(x, y, w)``, or ``x`` alone
    when ``labels`` is None.

    One epoch by default. Keras re-iterates a finite dataset every epoch, which would
    replay the same order, so for training pass ``epochs`` (and ``first_epoch`` when
    resuming): the dataset then holds epochs ``first_epoch .. first_epoch + epochs - 1``
    back to back, each shuffled with ``seed + epoch``, and ``model.fit`` must be given
    ``steps_per_epoch=math.ceil(len(images) / batch_size)``.
    """
    from medml_cli.models.keras.tf_runtime import import_tensorflow

    tf, _ = import_tensorflow()
    intensity = check_intensity(intensity)
    augment = check_augment(augment)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = int(images.shape[0])
    if n == 0:
        raise ValueError("images is empty")
    dims = spatial_dims or infer_spatial_dims(tuple(images.shape))
    shape = sample_shape(images.shape, dims)
    y = _column(labels, n, "labels")
    w = _column(sample_weights, n, "sample_weights")
    if w is not None and y is None:
        raise ValueError("sample_weights need labels")
    n_batches = math.ceil(n / batch_size)
    n_epochs = 1 if epochs is None else int(epochs)
    seed = int(seed)

    @functools.lru_cache(maxsize=2)  # thread-safe; the loader runs on tf.data threads
    def permutation(epoch: int) -> np.ndarray:
        return np.random.default_rng(seed + epoch).permutation(n)

    def load(epoch_t: Any, batch_t: Any) -> tuple[np.ndarray, ...]:
        epoch, b = int(epoch_t), int(batch_t)
        start, stop = b * batch_size, min((b + 1) * batch_size, n)
        if shuffle:
            # sorted indices read a memmap front to back; order inside a batch does
            # not matter to a gradient sum or to batch-norm statistics
            idx = np.sort(permutation(epoch)[start:stop])
            raw = images[idx]
        else:
            idx = slice(start, stop)
            raw = images[start:stop]  # contiguous slice: one sequential read
        x = _normalise(raw, intensity, shape)
        if augment:
            x = augment_batch(x, augment, np.random.default_rng([seed, epoch, b]), dims)
        out: tuple[np.ndarray, ...] = (x,)
        if y is not None:
            out += (y[idx],)
        if w is not None:
            out += (w[idx],)
        return out

    n_out = 1 + (y is not None) + (w is not None)

    def load_tf(k: Any) -> Any:
        epoch = first_epoch + k // n_batches
        tensors = tf.numpy_function(
            load,
            [epoch, k % n_batches],
            [tf.float32] * n_out,
            # the loader is a pure function of its inputs; stateful=False lets tf.data
            # keep parallel loading and prefetch under op determinism
            stateful=False,
            name="medml_load_batch",
        )
        tensors[0].set_shape((None, *shape))
        for t in tensors[1:]:
            t.set_shape((None,))
        return tensors[0] if n_out == 1 else tuple(tensors)

    ds = tf.data.Dataset.range(n_epochs * n_batches)
    ds = ds.map(load_tf, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    # a few batches ahead: overlaps reading with training, keeps memory bounded
    ds = ds.prefetch(2)
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options)
