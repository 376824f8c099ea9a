"""The ``regression`` problem type: a continuous outcome, predicted as a value."""

from __future__ import annotations

from typing import Any

import numpy as np

from medml_cli.evaluation.metrics import score_predictions
from medml_cli.problems.base import ProblemType, register_problem
from medml_cli.tasks.base import REGRESSION_METRICS


class Regression(ProblemType):
    """A continuous outcome: scores are the predicted values."""

    name = "regression"
    summary = "a continuous outcome: r2, rmse, mae"
    metric_names = REGRESSION_METRICS
    score_column = "prediction"
    primary_metric = "r2"
    importance_scoring = "r2"
    pooled_measures = (("r2", "identity"), ("rmse", "log"))

    def scores(self, model: Any, X: Any, n_classes: int = 2) -> np.ndarray:
        """The predicted values."""
        return np.asarray(model.predict(X), dtype=float)

    def baseline_estimator(self) -> Any:
        """Predicts the training mean for everyone."""
        from sklearn.dummy import DummyRegressor

        return DummyRegressor(strategy="mean")

    def metrics(self, y: np.ndarray, scores: np.ndarray,
                threshold: float | np.ndarray | None = None) -> dict[str, float]:
        """r2, rmse and mae."""
        return score_predictions(self.name, y, scores)

    def bootstrap_draws(self, y: np.ndarray, scores: np.ndarray, *, threshold: Any,
                        groups: np.ndarray | None, n_resamples: int,
                        seed: int) -> dict[str, np.ndarray]:
        """r2, rmse and mae on each resample (patients with ``groups``)."""
        from medml_cli.evaluation.bootstrap import bootstrap_distribution

        return bootstrap_distribution(self.name, y, scores, groups=groups,
                                      n_resamples=n_resamples, seed=seed)

    def output_columns(self, scores: np.ndarray, threshold: Any,
                       classes: list[str]) -> dict[str, np.ndarray]:
        """``prediction``."""
        return {"prediction": scores}



REGRESSION = register_problem(Regression())
