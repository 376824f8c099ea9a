"""Gradient-boosted Cox models for survival (time-to-event) outcomes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from sklearn.pipeline import Pipeline

from medml_cli.models.base import register_model
from medml_cli.models.preprocessing import tabular_pipeline
from medml_cli.schemas import FeatureSchema, StrictModel


class GradientBoostingSurvivalConfig(StrictModel):
    """scikit-survival GradientBoostingSurvivalAnalysis with the Cox partial-likelihood loss."""

    # The loss is fixed to coxph: the other losses (squared, ipcwls) model log time, whose
    # prediction is not a risk score and has no survival function.
    type: Literal["gradient-boosting-survival"]
    n_estimators: int = Field(100, ge=1, le=100_000, description="Boosting stages.")
    learning_rate: float = Field(0.1, gt=0, le=1, description="Shrinkage per stage.")
    max_depth: int | None = Field(3, ge=1, description="Maximum tree depth; null = unlimited.")
    subsample: float = Field(1.0, gt=0, le=1, description="Share of rows each stage sees.")
    min_samples_leaf: int = Field(1, ge=1, description="Minimum samples in a leaf.")


@register_model(
    "gradient-boosting-survival",
    config=GradientBoostingSurvivalConfig,
    summary="gradient-boosted Cox model (scikit-survival)",
    problems=("survival",),
    trusted_types=(
        "sklearn.tree._tree.Tree",
        "sksurv.ensemble.boosting.GradientBoostingSurvivalAnalysis",
        "sksurv.ensemble.survival_loss.CoxPH",
        "sksurv.functions.StepFunction",
        "sksurv.linear_model.coxph.BreslowEstimator",
    ),
)
def build_gradient_boosting_survival(
    cfg: GradientBoostingSurvivalConfig, *, problem: str, schema: FeatureSchema, seed: int
) -> Pipeline:
    """Build the (unscaled) gradient-boosted survival pipeline."""
    # imported here: sksurv patches sklearn's Pipeline on import (see models.cox)
    from sksurv.ensemble import GradientBoostingSurvivalAnalysis

    estimator = GradientBoostingSurvivalAnalysis(
        loss="coxph",
        n_estimators=cfg.n_estimators,
        learning_rate=cfg.learning_rate,
        max_depth=cfg.max_depth,
        subsample=cfg.subsample,
        min_samples_leaf=cfg.min_samples_leaf,
        random_state=seed,
    )
    return tabular_pipeline(schema, estimator, scale=False)
