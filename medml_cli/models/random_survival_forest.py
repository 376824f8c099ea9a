"""Random survival forests for survival (time-to-event) outcomes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from sklearn.pipeline import Pipeline

from medml_cli.models.base import register_model
from medml_cli.models.preprocessing import tabular_pipeline
from medml_cli.models.random_forest import MAX_FEATURES_HELP, MaxFeatures, max_features_problems
from medml_cli.schemas import FeatureSchema, StrictModel


class RandomSurvivalForestConfig(StrictModel):
    """scikit-survival RandomSurvivalForest (defaults from its documentation's example)."""

    type: Literal["random-survival-forest"]
    n_estimators: int = Field(300, ge=1, le=100_000, description="Number of trees.")
    max_depth: int | None = Field(None, ge=1, description="Maximum tree depth; null = unlimited.")
    min_samples_split: int = Field(10, ge=2, description="Minimum samples to split a node.")
    min_samples_leaf: int = Field(15, ge=1, description="Minimum samples in a leaf.")
    max_features: MaxFeatures = Field("sqrt", description=MAX_FEATURES_HELP)
    n_jobs: int = Field(1, description="Parallel jobs; -1 uses every core.")

    @field_validator("max_features")
    @classmethod
    def _max_features_in_range(cls, value: MaxFeatures) -> MaxFeatures:
        # survival is this model's only problem, so the check need not wait for the task
        problems = max_features_problems(value)
        if problems:
            raise ValueError("; ".join(problems))
        return value


@register_model(
    "random-survival-forest",
    config=RandomSurvivalForestConfig,
    summary="random survival forest (scikit-survival)",
    problems=("survival",),
    trusted_types=(
        "sklearn.tree._tree.Tree",
        "sksurv.ensemble.forest.RandomSurvivalForest",
        "sksurv.tree.tree.SurvivalTree",
    ),
)
def build_random_survival_forest(
    cfg: RandomSurvivalForestConfig, *, problem: str, schema: FeatureSchema, seed: int
) -> Pipeline:
    """Build the (unscaled) random-survival-forest pipeline."""
    # imported here: sksurv patches sklearn's Pipeline on import (see models.cox)
    from sksurv.ensemble import RandomSurvivalForest

    estimator = RandomSurvivalForest(
        n_estimators=cfg.n_estimators,
        max_depth=cfg.max_depth,
        min_samples_split=cfg.min_samples_split,
        min_samples_leaf=cfg.min_samples_leaf,
        max_features=cfg.max_features,
        n_jobs=cfg.n_jobs,
        random_state=seed,
    )
    return tabular_pipeline(schema, estimator, scale=False)
