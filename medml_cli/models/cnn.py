"""Keras convolutional networks for CT slices and volumes (TensorFlow is imported lazily).

``cnn2d`` is the classic stack (Conv 32/64/128 3x3 + ReLU, each followed by 2x2 max-pooling,
Flatten, Dense 512, Dense 1 sigmoid); ``cnn3d`` is the same in 3D; ``resnet2d``/``resnet3d``
are small residual networks. All return an sklearn-style ``ImageCnnClassifier``, which puts a
``Dense(k, softmax)`` head on the same network instead when the training labels have k > 2
classes (it learns k in ``fit``).

Every network in ``NETWORKS`` is a model of the same name. A new architecture is one new file
(in this folder, or an installed plug-in) that decorates its feature-stack builder with
:func:`register_network`, giving its dimensionality.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, create_model

from medml_cli.models.base import register_model
from medml_cli.models.keras.input_pipeline import (
    DEFAULT_INTENSITY,
    MAX_INTENSITY_JITTER,
    MAX_ROTATE_DEGREES,
)
from medml_cli.models.keras.networks import NetworkBuilder, add_network
from medml_cli.registry import MODELS, NETWORKS
from medml_cli.schemas import StrictModel


class AugmentConfig(StrictModel):
    """Training-time augmentation (never applied at evaluation or prediction)."""

    flip: bool = Field(False, description="Random flips along the spatial axes.")
    rotate_degrees: float = Field(0.0, ge=0, le=MAX_ROTATE_DEGREES,
                                  description="Random in-plane rotation.")
    intensity_jitter: float = Field(0.0, ge=0, le=MAX_INTENSITY_JITTER,
                                    description="Random intensity shift/scale on [0, 1].")


class CnnConfig(StrictModel):
    """A Keras CNN trained with Adam on binary cross-entropy (sparse categorical cross-entropy
    for k > 2 classes), early-stopped on validation AUROC (macro one-vs-rest for k > 2)."""

    type: str  # each network's config narrows this to its own name
    filters: list[int] = Field(default_factory=lambda: [32, 64, 128], min_length=1,
                               max_length=6, description="Filters per conv stage.")
    dense_units: int = Field(512, ge=1, le=8192, description="Units of the dense layer.")
    dropout: float = Field(0.5, ge=0, lt=1, description="Dropout before the output.")
    batch_norm: bool = Field(False, description="Batch normalisation after each conv.")
    epochs: int = Field(20, ge=1, le=1000, description="Maximum epochs.")
    batch_size: int = Field(32, ge=1, le=4096, description="Images per batch.")
    learning_rate: float = Field(1e-3, gt=0, le=1, description="Adam learning rate.")
    patience: int = Field(5, ge=1, description="Epochs without validation-AUROC gain before "
                                               "stopping.")
    class_weight: Literal["balanced"] | None = Field(
        "balanced", description="Weight classes inversely to their frequency.")
    augment: AugmentConfig = Field(default_factory=AugmentConfig)

    @property
    def spatial_dims(self) -> int:
        """2 or 3, as the network declared when it registered."""
        return int(NETWORKS.entry(self.type).extra["dims"])

    def problems_check(self, problem: str) -> list[str]:
        """Cross-field problems with this config (filters out of range)."""
        if any(f < 1 or f > 1024 for f in self.filters):
            return ["filters: each must be between 1 and 1024"]
        return []


def _build(cfg: CnnConfig, *, problem: str, schema: Any, seed: int) -> Any:
    from medml_cli.models.keras.estimator import ImageCnnClassifier

    intensity = tuple(schema) if schema is not None else DEFAULT_INTENSITY
    return ImageCnnClassifier(
        architecture=cfg.type, filters=tuple(cfg.filters), dense_units=cfg.dense_units,
        dropout=cfg.dropout, batch_norm=cfg.batch_norm, epochs=cfg.epochs,
        batch_size=cfg.batch_size, learning_rate=cfg.learning_rate, patience=cfg.patience,
        augment=cfg.augment.model_dump() if any(cfg.augment.model_dump().values()) else None,
        class_weight=cfg.class_weight, intensity=intensity, random_state=seed,
    )


def _register_model(name: str) -> None:
    entry = NETWORKS.entry(name)
    config = create_model(f"CnnConfig_{name.replace('-', '_')}", __base__=CnnConfig,
                          __doc__=CnnConfig.__doc__, type=(Literal[name], ...))
    register_model(name, config=config, summary=entry.summary,
                   problems=("binary-classification", "multiclass"), data_kind="image")(_build)


def register_network(name: str, *, dims: int, summary: str
                     ) -> Callable[[NetworkBuilder], NetworkBuilder]:
    """Decorator: register a network builder (see ``networks.NetworkBuilder``) in
    ``NETWORKS`` with its dimensionality (2 or 3) and as the model ``name``."""

    def decorator(builder: NetworkBuilder) -> NetworkBuilder:
        add_network(name, builder, dims=dims, summary=summary)
        _register_model(name)
        return builder

    return decorator


# the built-in networks registered themselves in networks.py
for _name in NETWORKS.names():
    if _name not in MODELS:
        _register_model(_name)
