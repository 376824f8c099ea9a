"""Support vector regression."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

from medml_cli.models.base import register_model
from medml_cli.models.preprocessing import tabular_pipeline
from medml_cli.models.svm import Kernel
from medml_cli.schemas import FeatureSchema, StrictModel


class SvrConfig(StrictModel):
    """scikit-learn SVR; the target is standardised inside the fit so epsilon and C are
    on a unit scale whatever the outcome's units."""

    type: Literal["svr"]
    C: float = Field(1.0, gt=0, description="Inverse regularisation strength.")
    epsilon: float = Field(0.1, ge=0, description="Width of the no-penalty tube (target SDs).")
    kernel: Kernel = Field("rbf", description="Kernel: rbf, linear, poly or sigmoid.")
    gamma: Literal["scale", "auto"] | float = Field("scale", description="Kernel coefficient.")
    degree: int = Field(3, ge=1, le=10, description="Degree of the poly kernel.")


@register_model("svr", config=SvrConfig, summary="support vector regression (scikit-learn)",
                problems=("regression",))
def build_svr(cfg: SvrConfig, *, problem: str, schema: FeatureSchema, seed: int) -> Pipeline:
    """Build the SVR pipeline with a standardised target."""
    svr = SVR(C=cfg.C, epsilon=cfg.epsilon, kernel=cfg.kernel, gamma=cfg.gamma,
              degree=cfg.degree)
    return tabular_pipeline(
        schema, TransformedTargetRegressor(regressor=svr, transformer=StandardScaler()),
        scale=True,
    )
