"""Histogram gradient boosting for classification and regression."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline

from medml_cli.models.base import register_model
from medml_cli.models.preprocessing import tabular_pipeline
from medml_cli.schemas import FeatureSchema, StrictModel


class GradientBoostingConfig(StrictModel):
    """scikit-learn HistGradientBoostingClassifier / HistGradientBoostingRegressor."""

    type: Literal["gradient-boosting"]
    learning_rate: float = Field(0.05, gt=0, le=1, description="Shrinkage per iteration.")
    max_iter: int = Field(200, ge=1, description="Number of boosting iterations.")
    max_depth: int | None = Field(3, ge=1, description="Maximum tree depth; null = unlimited.")
    max_leaf_nodes: int | None = Field(31, ge=2, description="Maximum leaves per tree.")
    min_samples_leaf: int = Field(20, ge=1, description="Minimum samples in a leaf.")
    l2_regularization: float = Field(0.0, ge=0, description="L2 penalty on leaf values.")
    class_weight: Literal["balanced"] | None = Field(
        None, description="Class weighting (classification only)."
    )

    def problems_check(self, problem: str) -> list[str]:
        """Problems with this config for ``problem`` (class_weight on regression)."""
        if problem == "regression" and self.class_weight is not None:
            return ["class_weight: only applies to classification; remove it"]
        return []


@register_model(
    "gradient-boosting",
    config=GradientBoostingConfig,
    summary="histogram gradient boosting (scikit-learn)",
    problems=("binary-classification", "multiclass", "regression"),
    native_missing=True,
    trusted_types=(
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    ),
)
def build_gradient_boosting(
    cfg: GradientBoostingConfig, *, problem: str, schema: FeatureSchema, seed: int
) -> Pipeline:
    """Build the histogram gradient-boosting pipeline for ``problem``."""
    common = dict(
        learning_rate=cfg.learning_rate,
        max_iter=cfg.max_iter,
        max_depth=cfg.max_depth,
        max_leaf_nodes=cfg.max_leaf_nodes,
        min_samples_leaf=cfg.min_samples_leaf,
        l2_regularization=cfg.l2_regularization,
        early_stopping=False,
        random_state=seed,
    )
    if problem == "regression":
        estimator = HistGradientBoostingRegressor(**common)
    else:
        estimator = HistGradientBoostingClassifier(class_weight=cfg.class_weight, **common)
    return tabular_pipeline(schema, estimator, scale=False)
