"""Which features the data being scored lack, and what the saved pipeline puts in their place.

A hospital that never measured a test (Switzerland has no cholesterol in the UCI data) can
still be scored: the saved pipeline imputes the training median. But every such patient is
then scored on a made-up value, so evaluation and predict say so, feature by feature.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

#: A feature missing in more than this share of the scored rows is reported.
MOSTLY_MISSING = 0.5


@dataclass(frozen=True)
class MissingFeature:
    """A feature missing in scored rows and what the saved pipeline imputed for it."""

    feature: str
    missing: int
    rows: int
    #: what the pipeline imputes: one value, or several when sub-models differ (recalibration)
    replaced_by: list[Any]
    how: str  # "training median" or "most frequent training value"

    @property
    def share(self) -> float:
        """Fraction of rows missing the feature."""
        return self.missing / self.rows if self.rows else 0.0

    def message(self) -> str:
        """A sentence saying how many rows lacked the feature and what replaced it."""
        whole = "entirely" if self.missing == self.rows else f"{self.share:.0%}"
        if not self.replaced_by:  # data.missing: native, nothing imputed
            return (f"feature '{self.feature}' is missing in {self.missing} of {self.rows} "
                    f"rows ({whole}); the model scored those patients through its own "
                    "missing-value handling, without the feature")
        values = sorted({_fmt(v) for v in self.replaced_by})
        value = values[0] if len(values) == 1 else f"{values[0]}–{values[-1]} (per sub-model)"
        return (f"feature '{self.feature}' is missing in {self.missing} of {self.rows} rows "
                f"({whole}); the model replaced it by the {self.how} {value}, so those "
                "patients were scored without it")

    def as_json(self) -> dict[str, Any]:
        """The record as a JSON-ready dict, with its share and message."""
        return {**asdict(self), "share": round(self.share, 4), "message": self.message()}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return repr(value) if isinstance(value, str) else str(value)


def _preprocessors(model: Any) -> list[Any]:
    """Every fitted ColumnTransformer inside ``model`` (a Pipeline, a calibration wrapper
    holding one pipeline per internal fold, or a site-updated RecalibratedClassifier)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if isinstance(model, ColumnTransformer):
        return [model]
    if isinstance(model, Pipeline):
        return [p for _, step in model.steps for p in _preprocessors(step)]
    found = []
    if getattr(model, "base", None) is not None:  # RecalibratedClassifier: the base pipeline
        found += _preprocessors(model.base)
    for calibrated in getattr(model, "calibrated_classifiers_", []) or []:
        found += _preprocessors(getattr(calibrated, "estimator", None))
    return found


def imputed_values(model: Any) -> dict[str, tuple[str, list[Any]]]:
    """feature -> (how, values the fitted imputers put in for it)."""
    out: dict[str, tuple[str, list[Any]]] = {}
    for transformer in _preprocessors(model):
        for _, pipe, columns in getattr(transformer, "transformers_", []):
            steps = getattr(pipe, "named_steps", {})
            imputer = steps.get("impute")
            statistics = getattr(imputer, "statistics_", None)
            if statistics is None:
                continue
            how = ("training median" if imputer.strategy == "median"
                   else "most frequent training value")
            for column, value in zip(columns, statistics, strict=False):
                value = value.item() if hasattr(value, "item") else value
                out.setdefault(str(column), (how, []))[1].append(value)
    return out


def missing_features(X: pd.DataFrame, model: Any,
                     threshold: float = MOSTLY_MISSING,
                     imputed: dict[str, Any] | None = None) -> list[MissingFeature]:
    """Features missing in more than ``threshold`` of the rows of ``X`` (all rows: any).

    ``imputed``: :func:`imputed_values` of the model, when ``model`` cannot be read for
    it (an exported ONNX graph carries them in its signature)."""
    if X.empty:
        return []
    share = X.isna().mean()
    flagged = [str(c) for c in X.columns if share[c] > threshold]
    if not flagged:
        return []
    imputed = imputed_values(model) if imputed is None else imputed
    rows = len(X)
    return [MissingFeature(feature=c, missing=int(X[c].isna().sum()), rows=rows,
                           replaced_by=imputed.get(c, ("training value", []))[1],
                           how=imputed.get(c, ("training value", []))[0])
            for c in flagged]
