"""Linear models: logistic regression (classification) and ridge (regression)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline

from medml_cli.models.base import register_model
from medml_cli.models.preprocessing import tabular_pipeline
from medml_cli.schemas import FeatureSchema, StrictModel


class LogisticRegressionConfig(StrictModel):
    """scikit-learn LogisticRegression on standardised features."""

    type: Literal["logistic-regression"]
    C: float = Field(1.0, gt=0, description="Inverse regularisation strength.")
    l1_ratio: float = Field(0.0, ge=0, le=1, description="0 = ridge (L2), 1 = lasso (L1).")
    class_weight: Literal["balanced"] | None = Field(None, description="Class weighting.")
    max_iter: int = Field(1000, ge=1, description="Solver iterations.")


@register_model(
    "logistic-regression",
    config=LogisticRegressionConfig,
    summary="logistic regression (scikit-learn)",
    problems=("binary-classification", "multiclass"),
)
def build_logistic_regression(
    cfg: LogisticRegressionConfig, *, problem: str, schema: FeatureSchema, seed: int
) -> Pipeline:
    """Build the logistic-regression pipeline (L2, or elastic net when l1_ratio > 0)."""
    solver = "lbfgs" if cfg.l1_ratio == 0 else "saga"
    estimator = LogisticRegression(C=cfg.C, l1_ratio=cfg.l1_ratio, solver=solver,
                                   class_weight=cfg.class_weight, max_iter=cfg.max_iter,
                                   random_state=seed)
    return tabular_pipeline(schema, estimator, scale=True)


class RidgeConfig(StrictModel):
    """scikit-learn Ridge on standardised features."""

    type: Literal["ridge"]
    alpha: float = Field(1.0, ge=0, description="L2 penalty strength.")


@register_model("ridge", config=RidgeConfig, summary="ridge regression (scikit-learn)",
                problems=("regression",))
def build_ridge(cfg: RidgeConfig, *, problem: str, schema: FeatureSchema, seed: int) -> Pipeline:
    """Build the scaled ridge-regression pipeline."""
    return tabular_pipeline(schema, Ridge(alpha=cfg.alpha), scale=True)
