"""Small Keras convolutional networks for image / volume classification.

Every network ends in a layer named ``output``: ``Dense(1, sigmoid)`` for two classes (the
binary head, P(class 1)), ``Dense(k, softmax)`` for k > 2 classes. Each names its last
convolutional feature map ``last_conv`` so Grad-CAM can find it. Layer names are fixed
(``conv1``, ``bn1``, ``pool1``, ..., ``flatten``, ``dense``, ``dropout``, ``output``) so saved
models are comparable across runs. Keras is imported inside the functions only, so
importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from medml_cli.registry import NETWORKS

if TYPE_CHECKING:
    import keras

LAST_CONV = "last_conv"
OUTPUT = "output"

#: ``build(keras, inputs, *, dims, filters, dense_units, dropout, batch_norm, seeds)`` returns
#: the feature tensor the output layer is put on; the last conv map is named ``last_conv``.
NetworkBuilder = Callable[..., Any]


def add_network(name: str, builder: NetworkBuilder, *, dims: int, summary: str) -> None:
    """Register a network in ``NETWORKS`` only. To make it a model too (listed, usable in a
    config) use :func:`medml_cli.models.cnn.register_network`."""
    if dims not in (2, 3):
        raise ValueError(f"network {name!r}: dims must be 2 or 3, got {dims}")
    NETWORKS.add(name, builder, summary=summary, tags={f"{dims}d"}, extra={"dims": dims})


class _Dims(Mapping[str, int]):
    """Live view of ``NETWORKS``: architecture name -> spatial dimensions of its input."""

    def __getitem__(self, name: str) -> int:
        if name not in NETWORKS:
            raise KeyError(name)
        return int(NETWORKS.entry(name).extra["dims"])

    def __iter__(self) -> Iterator[str]:
        return iter(NETWORKS.names())

    def __len__(self) -> int:
        return len(NETWORKS.names())


ARCHITECTURES: Mapping[str, int] = _Dims()
"""Architecture name -> number of spatial dimensions of its input (read from ``NETWORKS``)."""


def spatial_dims(architecture: str) -> int:
    """2 for the 2D networks, 3 for the 3D ones; ValueError for an unknown name."""
    try:
        return ARCHITECTURES[architecture]
    except KeyError:
        valid = ", ".join(ARCHITECTURES)
        raise ValueError(f"unknown architecture {architecture!r}; valid: {valid}") from None


class _Seeds:
    """Hands out one distinct, reproducible seed per layer.

    ``SeedSequence`` spreads the seeds so that seed s, layer 2 never collides with seed
    s + 1, layer 1 (which plain ``seed + i`` would do).
    """

    def __init__(self, seed: int) -> None:
        self._seeds = np.random.SeedSequence(int(seed)).generate_state(256, dtype=np.uint32)
        self._next = 0

    def __call__(self) -> int:
        value = int(self._seeds[self._next] % (2**31 - 1))
        self._next += 1
        return value


def build_network(
    architecture: str,
    input_shape: tuple[int, ...],
    *,
    filters: tuple[int, ...] = (32, 64, 128),
    dense_units: int = 512,
    dropout: float = 0.5,
    batch_norm: bool = False,
    seed: int = 0,
    n_classes: int = 2,
) -> keras.Model:
    """Build (not compile) a classifier: for ``n_classes`` 2 a sigmoid output of shape (N, 1)
    (P(class 1)), for ``n_classes`` k > 2 a softmax output of shape (N, k).

    ``input_shape`` is (H, W, C) for the 2D networks and (D, H, W, C) for the 3D ones.
    ``resnet*`` always uses batch normalisation; ``batch_norm`` applies to ``cnn*`` only.
    The seeds are the same for any ``n_classes``, so only the output layer differs.
    """
    from medml_cli.models.keras.tf_runtime import import_tensorflow

    _, keras = import_tensorflow()
    dims = spatial_dims(architecture)
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != dims + 1:
        raise ValueError(
            f"{architecture} expects an input shape of {dims} spatial dimensions plus a "
            f"channel axis, got {input_shape}"
        )
    if not filters or any(int(f) < 1 for f in filters):
        raise ValueError(f"filters must be a non-empty tuple of positive ints, got {filters}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
    n_classes = int(n_classes)
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}")
    seeds = _Seeds(seed)
    inputs = keras.Input(shape=input_shape, name="image")
    features = NETWORKS.get(architecture)(
        keras, inputs, dims=dims, filters=tuple(filters), dense_units=dense_units,
        dropout=dropout, batch_norm=batch_norm, seeds=seeds,
    )
    binary = n_classes == 2
    outputs = keras.layers.Dense(
        1 if binary else n_classes,
        activation="sigmoid" if binary else "softmax",
        name=OUTPUT,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seeds()),
    )(features)
    return keras.Model(inputs, outputs, name=f"medml_{architecture}")


def _conv(keras: Any, dims: int) -> Any:
    return keras.layers.Conv2D if dims == 2 else keras.layers.Conv3D


def plain_stack(
    keras: Any,
    x: Any,
    *,
    dims: int,
    filters: tuple[int, ...],
    dense_units: int,
    dropout: float,
    batch_norm: bool,
    seeds: _Seeds,
) -> Any:
    """Conv + ReLU (+ BN) + 2x max-pool per stage, Flatten, Dense, Dropout."""
    conv = _conv(keras, dims)
    pool = keras.layers.MaxPooling2D if dims == 2 else keras.layers.MaxPooling3D
    for i, f in enumerate(filters, start=1):
        last = i == len(filters)
        x = conv(
            int(f),
            3,
            padding="same",
            activation="relu",
            kernel_initializer=keras.initializers.HeNormal(seed=seeds()),
            name=LAST_CONV if last else f"conv{i}",
        )(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        # padding="same" so odd or tiny inputs (e.g. 5x5 after two pools) never reach zero size
        x = pool(2, padding="same", name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(
        int(dense_units),
        activation="relu",
        kernel_initializer=keras.initializers.HeNormal(seed=seeds()),
        name="dense",
    )(x)
    return keras.layers.Dropout(dropout, seed=seeds(), name="dropout")(x)


def residual_stack(
    keras: Any, x: Any, *, dims: int, filters: tuple[int, ...], dropout: float,
    seeds: _Seeds, **_: Any,
) -> Any:
    """Stem, one strided residual block per stage (always batch-normalised), global pooling.
    ``dense_units`` and ``batch_norm`` do not apply."""
    conv = _conv(keras, dims)
    layers = keras.layers

    def conv_bn(t: Any, f: int, kernel: int, strides: int, name: str) -> Any:
        t = conv(
            f,
            kernel,
            strides=strides,
            padding="same",
            use_bias=False,  # BN right after makes a bias redundant
            kernel_initializer=keras.initializers.HeNormal(seed=seeds()),
            name=f"{name}_conv",
        )(t)
        return layers.BatchNormalization(name=f"{name}_bn")(t)

    x = conv_bn(x, int(filters[0]), 3, 1, "stem")
    x = layers.Activation("relu", name="stem_relu")(x)
    for i, f in enumerate(filters, start=1):
        f = int(f)
        last = i == len(filters)
        # main path downsamples with a strided conv; the 1x1 strided projection matches
        # the shortcut's shape and channel count
        main = conv_bn(x, f, 3, 2, f"block{i}_a")
        main = layers.Activation("relu", name=f"block{i}_a_relu")(main)
        main = conv_bn(main, f, 3, 1, f"block{i}_b")
        shortcut = conv_bn(x, f, 1, 2, f"block{i}_proj")
        x = layers.Add(name=f"block{i}_add")([main, shortcut])
        x = layers.Activation("relu", name=LAST_CONV if last else f"block{i}_relu")(x)
    pool = layers.GlobalAveragePooling2D if dims == 2 else layers.GlobalAveragePooling3D
    x = pool(name="global_pool")(x)
    return layers.Dropout(dropout, seed=seeds(), name="dropout")(x)


add_network("cnn2d", plain_stack, dims=2,
            summary="classic 2D CNN: Conv-Pool x3 + Dense 512 (Keras)")
add_network("cnn3d", plain_stack, dims=3,
            summary="3D CNN for volumetric patches: Conv3D-Pool x3 + Dense (Keras)")
add_network("resnet2d", residual_stack, dims=2, summary="small 2D residual network (Keras)")
add_network("resnet3d", residual_stack, dims=3, summary="small 3D residual network (Keras)")


def last_conv_layer_name(model: keras.Model) -> str:
    """Name of the last convolutional feature map (for Grad-CAM).

    ``last_conv`` for networks from :func:`build_network`; for other models, the last
    layer whose output has spatial axes (rank 4 or 5).
    """
    names = [layer.name for layer in model.layers]
    if LAST_CONV in names:
        return LAST_CONV
    for layer in reversed(model.layers):
        shape = getattr(layer, "output", None)
        shape = getattr(shape, "shape", None)
        if type(layer).__name__ == "InputLayer":
            continue
        if shape is not None and len(shape) in (4, 5):
            return layer.name
    raise ValueError(f"model {model.name!r} has no convolutional feature map for Grad-CAM")
