"""Support vector classifier with calibrated probabilities."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

from medml_cli.models.base import CALIBRATION_TYPES, register_model
from medml_cli.models.preprocessing import tabular_pipeline
from medml_cli.schemas import FeatureSchema, StrictModel

Kernel = Literal["rbf", "linear", "poly", "sigmoid"]


class SvmConfig(StrictModel):
    """scikit-learn SVC; probabilities from CalibratedClassifierCV (SVC(probability=True) is
    deprecated), calibrated by internal cross-validation on the training data only."""

    type: Literal["svm"]
    C: float = Field(1.0, gt=0, description="Inverse regularisation strength.")
    kernel: Kernel = Field("rbf", description="Kernel: rbf, linear, poly or sigmoid.")
    gamma: Literal["scale", "auto"] | float = Field("scale", description="Kernel coefficient.")
    degree: int = Field(3, ge=1, le=10, description="Degree of the poly kernel.")
    class_weight: Literal["balanced"] | None = Field(None, description="Class weighting.")
    calibration: Literal["sigmoid", "isotonic"] = Field(
        "sigmoid", description="Probability calibration method (Platt sigmoid or isotonic)."
    )
    calibration_folds: int = Field(5, ge=2, le=20, description="Internal calibration folds.")

    def problems_check(self, problem: str) -> list[str]:
        """Problems with this config (a non-positive numeric gamma)."""
        if isinstance(self.gamma, float) and self.gamma <= 0:
            return [f"gamma: must be 'scale', 'auto' or a number > 0, got {self.gamma}"]
        return []


@register_model(
    "svm",
    config=SvmConfig,
    summary="support vector classifier with calibrated probabilities (scikit-learn)",
    problems=("binary-classification", "multiclass"),
    trusted_types=CALIBRATION_TYPES,
)
def build_svm(cfg: SvmConfig, *, problem: str, schema: FeatureSchema, seed: int) -> Pipeline:
    """Build the calibrated SVC pipeline."""
    svc = SVC(C=cfg.C, kernel=cfg.kernel, gamma=cfg.gamma, degree=cfg.degree,
              class_weight=cfg.class_weight, random_state=seed)
    # ensemble=False: one SVC on all training rows, sigmoid fitted on its cross-validated
    # decision values; what SVC(probability=True) did, without the deprecated flag.
    calibrated = CalibratedClassifierCV(svc, method=cfg.calibration, cv=cfg.calibration_folds,
                                        ensemble=False)
    return tabular_pipeline(schema, calibrated, scale=True)
