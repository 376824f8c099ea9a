"""k-nearest neighbours for classification and regression."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline

from medml_cli.models.base import register_model
from medml_cli.models.preprocessing import tabular_pipeline
from medml_cli.schemas import FeatureSchema, StrictModel


class KnnConfig(StrictModel):
    """scikit-learn KNeighborsClassifier / KNeighborsRegressor on standardised features."""

    type: Literal["k-nearest-neighbours"]
    n_neighbors: int = Field(15, ge=1, le=10_000, description="Neighbours that vote.")
    weights: Literal["uniform", "distance"] = Field(
        "uniform", description="uniform: every neighbour counts the same; distance: closer "
                               "neighbours count more.")


@register_model(
    "k-nearest-neighbours",
    config=KnnConfig,
    summary="k-nearest neighbours (scikit-learn)",
    problems=("binary-classification", "multiclass", "regression"),
    # the fitted search tree (KD tree or ball tree, whichever scikit-learn picks)
    # and its distance metric
    trusted_types=("sklearn.neighbors._kd_tree.KDTree", "sklearn.neighbors._ball_tree.BallTree",
                   "sklearn.metrics._dist_metrics.EuclideanDistance64"),
)
def build_knn(cfg: KnnConfig, *, problem: str, schema: FeatureSchema, seed: int) -> Pipeline:
    """The scaled k-nearest-neighbours pipeline for ``problem``."""
    cls = KNeighborsRegressor if problem == "regression" else KNeighborsClassifier
    return tabular_pipeline(schema, cls(n_neighbors=cfg.n_neighbors, weights=cfg.weights),
                            scale=True)
