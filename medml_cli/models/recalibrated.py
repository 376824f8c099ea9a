"""A fitted classifier with a logistic recalibration on top (or a regressor with a linear
one): what ``medml evaluate --update intercept|recalibrate`` saves as the updated model of a
new site.

``RecalibratedClassifier(base, intercept, slope)`` predicts
``P(y=1) = expit(intercept + slope * logit(base's probability))``. The base model is not
refitted and the two numbers are estimated elsewhere (``medml_cli.workflows.update``, by
unpenalised maximum likelihood): this class only applies them, so it holds nothing but
plain numbers and the base pipeline, and skops saves and loads it without pickle (every
registered binary classifier trusts its type: ``UPDATE_TYPES`` in :mod:`medml_cli.models.base`,
read by :func:`medml_cli.runs.artifacts.trusted_types`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

#: Probabilities are clipped to [PROB_CLIP, 1 - PROB_CLIP] before the logit. The same clip as
#: ``medml_cli.evaluation.calibration`` (which this layer may not import), so an update fitted
#: there on ``logit(p)`` is applied here to exactly the same numbers.
PROB_CLIP = 1e-6


def clipped_logit(prob: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) of probabilities clipped to [1e-6, 1 - 1e-6]."""
    p = np.clip(np.asarray(prob, dtype=float), PROB_CLIP, 1 - PROB_CLIP)
    return np.log(p) - np.log1p(-p)


class RecalibratedClassifier(ClassifierMixin, BaseEstimator):
    """A fitted binary classifier whose logit is shifted (and scaled) for a new site.

    ``intercept`` alone (``slope`` 1) is recalibration-in-the-large; both are logistic
    recalibration. ``fit`` is not offered on purpose: the base model stays as it was trained,
    and the update is estimated (cross-validated) by the workflow that builds this object.
    """

    def __init__(self, base: Any = None, intercept: float = 0.0, slope: float = 1.0) -> None:
        self.base = base
        self.intercept = intercept
        self.slope = slope

    @property
    def classes_(self) -> np.ndarray:
        """The base model's class labels (negative, positive)."""
        return self.base.classes_

    def __sklearn_is_fitted__(self) -> bool:
        return self.base is not None and hasattr(self.base, "classes_")

    def decision_function(self, X: Any) -> np.ndarray:
        """The updated logit of the positive class."""
        base = np.asarray(self.base.predict_proba(X), dtype=float)[:, 1]
        return float(self.intercept) + float(self.slope) * clipped_logit(base)

    def predict_proba(self, X: Any) -> np.ndarray:
        """[P(negative), P(positive)] per row, after the update."""
        eta = self.decision_function(X)
        positive = 1.0 / (1.0 + np.exp(-eta))
        return np.column_stack([1.0 - positive, positive])

    def predict(self, X: Any) -> np.ndarray:
        """The more probable class (medml itself classifies at the run's threshold)."""
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


class RecalibratedRegressor(RegressorMixin, BaseEstimator):
    """A fitted regressor whose predictions are shifted (and scaled) for a new site:
    ``intercept + slope * base.predict(X)``. ``slope`` 1 is a mean shift (calibration-in-the-
    large); both are linear recalibration. Like :class:`RecalibratedClassifier`, it only
    applies numbers estimated (and cross-validated) by the updating workflow."""

    def __init__(self, base: Any = None, intercept: float = 0.0, slope: float = 1.0) -> None:
        self.base = base
        self.intercept = intercept
        self.slope = slope

    def __sklearn_is_fitted__(self) -> bool:
        return self.base is not None

    def predict(self, X: Any) -> np.ndarray:
        """The updated prediction per row."""
        base = np.asarray(self.base.predict(X), dtype=float)
        return float(self.intercept) + float(self.slope) * base
