"""Cox proportional-hazards regression for survival (time-to-event) outcomes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from sklearn.pipeline import Pipeline

from medml_cli.models.base import register_model
from medml_cli.models.preprocessing import tabular_pipeline
from medml_cli.schemas import FeatureSchema, StrictModel

#: Types a fitted Cox pipeline holds that skops does not trust by default (found with
#: ``skops.io.get_untrusted_types`` on saved ridge and elastic-net fits).
COX_TRUSTED_TYPES = (
    "sksurv.functions.StepFunction",
    "sksurv.linear_model.coxph.BreslowEstimator",
    "sksurv.linear_model.coxph.CoxPHSurvivalAnalysis",
    "sksurv.linear_model.coxnet.CoxnetSurvivalAnalysis",
)


class CoxConfig(StrictModel):
    """scikit-survival CoxPHSurvivalAnalysis (ridge) or CoxnetSurvivalAnalysis (elastic net)
    on standardised features."""

    type: Literal["cox"]
    # Not 0 (sksurv's default): the one-hot block of each categorical feature sums to one, a
    # direction the partial likelihood cannot see, so an unpenalised Newton step is singular
    # (ill-conditioned warnings, coefficients in the hundreds on GBSG2). 1e-4 makes the fit
    # well posed and leaves Harrell's C unchanged to 4 decimals on Veterans, WHAS500, GBSG2.
    alpha: float = Field(
        1e-4, ge=0,
        description="Penalty strength. Ridge (l1_ratio 0) adds alpha/2 * |beta|^2 to the "
                    "negative partial log-likelihood; the elastic net scales its penalty per "
                    "sample (glmnet convention), so the same alpha is n times stronger there.",
    )
    l1_ratio: float = Field(
        0.0, ge=0, le=1,
        description="0 = ridge (CoxPHSurvivalAnalysis); in (0, 1] = elastic net "
                    "(CoxnetSurvivalAnalysis), 1 = lasso.",
    )
    ties: Literal["breslow", "efron"] = Field(
        "breslow", description="Handling of tied event times (efron: ridge only)."
    )
    n_iter: int = Field(100, ge=1, description="Newton-Raphson iterations (ridge only).")

    @model_validator(mode="after")
    def _efron_is_ridge_only(self) -> CoxConfig:
        # CoxnetSurvivalAnalysis implements Breslow's ties only; silently using it would
        # ignore what the config asks for
        if self.l1_ratio > 0 and self.ties != "breslow":
            raise ValueError("ties: efron is only available for the ridge Cox model "
                             "(l1_ratio 0); the elastic net uses breslow")
        if self.l1_ratio > 0 and self.alpha == 0:
            raise ValueError("alpha: the elastic net (l1_ratio > 0) needs alpha > 0")
        return self


@register_model(
    "cox",
    config=CoxConfig,
    summary="Cox proportional hazards, ridge or elastic net (scikit-survival)",
    problems=("survival",),
    trusted_types=COX_TRUSTED_TYPES,
)
def build_cox(cfg: CoxConfig, *, problem: str, schema: FeatureSchema, seed: int) -> Pipeline:
    """Build the scaled Cox pipeline (ridge, or elastic net when l1_ratio > 0)."""
    # imported here: sksurv patches sklearn's Pipeline on import, which listing or
    # validating models should not do
    from sksurv.linear_model import CoxnetSurvivalAnalysis, CoxPHSurvivalAnalysis

    if cfg.l1_ratio == 0:
        estimator = CoxPHSurvivalAnalysis(alpha=cfg.alpha, ties=cfg.ties, n_iter=cfg.n_iter)
    else:
        estimator = CoxnetSurvivalAnalysis(l1_ratio=cfg.l1_ratio, alphas=[cfg.alpha],
                                           fit_baseline_model=True)
    return tabular_pipeline(schema, estimator, scale=True)
