"""Grad-CAM heatmaps for the CNNs of :mod:`medml_cli.models.keras.networks`.

For a binary (sigmoid) network the heatmap shows where the last convolutional feature map
pushes the *positive-class* logit up; for a k-class (softmax) network, where it pushes up
the logit of the predicted class (or of a class asked for with ``class_index``). Gradients
are taken of the logit rather than of the sigmoid / softmax output: a confident prediction
(p ~ 1) has a vanishing output gradient, which would give an empty map.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medml_cli.models.keras.networks import OUTPUT, last_conv_layer_name

if TYPE_CHECKING:
    import keras


def _resize(volume: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Linear resize of a 2D/3D map to ``shape`` (exact output shape)."""
    from scipy import ndimage

    if volume.shape == shape:
        return volume
    factors = [t / s for t, s in zip(shape, volume.shape, strict=True)]
    # grid_mode: each coarse cell covers a block of input pixels, as a pooled map does
    out = ndimage.zoom(volume, factors, order=1, mode="nearest", grid_mode=True)
    # zoom rounds the output size; pad or crop the odd pixel so the shape is exact
    pads = [(0, max(0, t - o)) for t, o in zip(shape, out.shape, strict=True)]
    out = np.pad(out, pads, mode="edge")
    return out[tuple(slice(0, t) for t in shape)]


def gradcam_heatmaps(
    model: keras.Model,
    images_normalised: np.ndarray,
    layer_name: str | None = None,
    *,
    batch_size: int = 16,
    class_index: int | Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """Grad-CAM maps (N, *spatial) in [0, 1] for normalised inputs (N, *spatial, C).

    Binary (one sigmoid output): the map of the positive class; ``class_index`` must be None.
    k classes (softmax): the map of each image's predicted class (argmax), or of
    ``class_index`` (one class for all images, or one per image).
    """
    from medml_cli.models.keras.tf_runtime import import_tensorflow

    tf, keras = import_tensorflow()
    x_all = np.asarray(images_normalised, dtype=np.float32)
    in_shape = tuple(model.input_shape[1:])
    if x_all.shape[1:] != in_shape and x_all.shape[1:] == in_shape[:-1]:
        x_all = x_all[..., None]  # caller left off the channel axis
    if x_all.shape[1:] != in_shape:
        raise ValueError(f"images have shape {x_all.shape[1:]}, the model expects {in_shape}")
    spatial = in_shape[:-1]
    width = int(model.output_shape[-1])
    if class_index is not None:
        if width == 1:
            raise ValueError("class_index is for k-class (softmax) models; a binary model's "
                             "map is always that of the positive class")
        wanted = np.broadcast_to(np.asarray(class_index, dtype=np.int64), (len(x_all),))
        if wanted.size and (wanted.min() < 0 or wanted.max() >= width):
            raise ValueError(f"class_index must lie in 0..{width - 1}, got {class_index!r}")
    else:
        wanted = None
    name = layer_name or last_conv_layer_name(model)
    conv_out = model.get_layer(name).output
    head = _output_head(model)
    if head is not None:
        dense, head_input = head
        grad_model = keras.Model(model.inputs, [conv_out, head_input])
    else:
        grad_model = keras.Model(model.inputs, [conv_out, model.output])

    maps = []
    for start in range(0, len(x_all), batch_size):
        x = tf.convert_to_tensor(x_all[start : start + batch_size])
        with tf.GradientTape() as tape:
            features, last = grad_model(x, training=False)
            if head is not None:
                # the logit(s), before the sigmoid / softmax
                score = tf.matmul(last, dense.kernel) + dense.bias
            else:
                score = last
            if width > 1:
                # k classes: each image's chosen class (default: the predicted one)
                chosen = (tf.argmax(score, axis=-1) if wanted is None
                          else tf.constant(wanted[start : start + batch_size]))
                score = tf.gather(score, chosen, axis=1, batch_dims=1)
            score = tf.reduce_sum(score)  # samples are independent: one backward pass
        grads = tape.gradient(score, features)
        axes = tuple(range(1, len(features.shape) - 1))
        weights = tf.reduce_mean(grads, axis=axes, keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1)).numpy()
        for one in cam:
            peak = float(one.max())
            one = one / peak if peak > 0 else np.zeros_like(one)
            maps.append(np.clip(_resize(one.astype(np.float32), spatial), 0.0, 1.0))
    return np.stack(maps).astype(np.float32) if maps else np.zeros((0, *spatial), np.float32)


def _output_head(model: Any) -> tuple[Any, Any] | None:
    """(final Dense layer, its input tensor) when the model ends in Dense(1, sigmoid) or
    Dense(k, softmax)."""
    try:
        dense = model.get_layer(OUTPUT)
    except ValueError:
        dense = model.layers[-1]
    activation = getattr(getattr(dense, "activation", None), "__name__", "")
    if type(dense).__name__ != "Dense" or activation not in ("sigmoid", "softmax"):
        return None
    try:
        return dense, dense.input
    except (AttributeError, ValueError):  # layer used more than once
        return None


def save_gradcam_overlays(
    model: keras.Model,
    images_normalised: np.ndarray,
    probabilities: Sequence[float],
    labels: Sequence[Any],
    ids: Sequence[Any],
    out_dir: Path,
    n: int = 8,
    synthetic: bool = False,
    class_names: Sequence[str] | None = None,
) -> list[Path]:
    """Save up to ``n`` PNG overlays (image + Grad-CAM) to ``out_dir``; returns their paths.

    ``probabilities`` is P(class 1) per image for a binary model; for a k-class model it may
    be the (N, k) ``predict_proba`` rows, and the title then names the predicted class
    (from ``class_names`` when given) and its probability; the map is that class's.
    For volumes the central axial slice of the image and of the heatmap is shown.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    count = min(int(n), len(images_normalised))
    if count <= 0:
        return []
    x = np.asarray(images_normalised[:count], dtype=np.float32)
    proba = np.asarray(probabilities, dtype=np.float64)
    per_class = proba.ndim == 2 and proba.shape[1] > 1
    heatmaps = gradcam_heatmaps(model, x, None)
    if x.ndim == heatmaps.ndim:
        x = x[..., None]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        image = x[i, ..., 0]
        heat = heatmaps[i]
        if image.ndim == 3:  # (D, H, W): central axial slice
            image, heat = image[image.shape[0] // 2], heat[heat.shape[0] // 2]
        if per_class:
            top = int(np.argmax(proba[i]))
            shown = class_names[top] if class_names is not None else str(top)
            title = f"{ids[i]}  label={labels[i]}  pred={shown} p={proba[i, top]:.3f}"
        else:
            title = f"{ids[i]}  label={labels[i]}  p={float(proba.reshape(-1)[i]):.3f}"
        if synthetic:
            title = f"SYNTHETIC DATA  {title}"
        fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
        try:
            ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0)
            ax.imshow(heat, cmap="jet", alpha=0.4, vmin=0.0, vmax=1.0)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
            safe_id = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(ids[i]))
            path = out_dir / f"gradcam_{i:03d}_{safe_id}.png"
            fig.savefig(path, bbox_inches="tight")
        finally:
            plt.close(fig)
        paths.append(path)
    return paths
