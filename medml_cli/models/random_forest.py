"""Random forests for classification and regression."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.pipeline import Pipeline

from medml_cli.models.base import register_model
from medml_cli.models.preprocessing import tabular_pipeline
from medml_cli.schemas import FeatureSchema, StrictModel

# int before float: scikit-learn reads 1 as one feature and 1.0 as all of them
MaxFeatures = Literal["sqrt", "log2"] | int | float | None
MAX_FEATURES_HELP = ("Features tried per split: sqrt, log2, a count (integer >= 1), a fraction "
                     "in (0, 1] (written with a point: 0.5, 1.0), or null.")


def max_features_problems(value: object) -> list[str]:
    """What is wrong with a ``max_features`` value (shared by the tree-ensemble configs)."""
    if isinstance(value, float) and not 0 < value <= 1:
        return [f"max_features: a fraction must lie in (0, 1], got {value}"]
    if isinstance(value, int) and value < 1:
        return [f"max_features: a count of features must be at least 1, got {value}"]
    return []


class RandomForestConfig(StrictModel):
    """scikit-learn RandomForestClassifier / RandomForestRegressor."""

    type: Literal["random-forest"]
    n_estimators: int = Field(300, ge=1, le=100_000, description="Number of trees.")
    max_depth: int | None = Field(None, ge=1, description="Maximum tree depth; null = unlimited.")
    min_samples_leaf: int = Field(1, ge=1, description="Minimum samples in a leaf.")
    max_features: MaxFeatures = Field("sqrt", description=MAX_FEATURES_HELP)
    class_weight: Literal["balanced", "balanced_subsample"] | None = Field(
        None, description="Class weighting (classification only)."
    )
    n_jobs: int = Field(1, description="Parallel jobs; -1 uses every core.")

    def problems_check(self, problem: str) -> list[str]:
        """Problems with this config for ``problem`` (regression class_weight, max_features)."""
        out = []
        if problem == "regression" and self.class_weight is not None:
            out.append("class_weight: only applies to classification; remove it")
        out.extend(max_features_problems(self.max_features))
        return out


@register_model(
    "random-forest",
    config=RandomForestConfig,
    summary="random forest (scikit-learn)",
    problems=("binary-classification", "multiclass", "regression"),
    native_missing=True,
    trusted_types=("sklearn.tree._tree.Tree",),
)
def build_random_forest(
    cfg: RandomForestConfig, *, problem: str, schema: FeatureSchema, seed: int
) -> Pipeline:
    """Build the random-forest pipeline for ``problem``."""
    common = dict(
        n_estimators=cfg.n_estimators,
        max_depth=cfg.max_depth,
        min_samples_leaf=cfg.min_samples_leaf,
        max_features=cfg.max_features,
        n_jobs=cfg.n_jobs,
        random_state=seed,
    )
    if problem == "regression":
        estimator = RandomForestRegressor(**common)
    else:
        estimator = RandomForestClassifier(class_weight=cfg.class_weight, **common)
    return tabular_pipeline(schema, estimator, scale=False)
