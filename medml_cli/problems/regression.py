"""The ``regression`` problem type: a continuous outcome, predicted as a value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medml_cli.evaluation.metrics import score_predictions
from medml_cli.problems.base import ProblemType, register_problem
from medml_cli.tasks.base import REGRESSION_METRICS


class Regression(ProblemType):
    """A continuous outcome: scores are the predicted values."""

    name = "regression"
    summary = "a continuous outcome: r2, rmse, mae"
    metric_names = REGRESSION_METRICS
    primary_metric = "r2"
    importance_scoring = "r2"

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

    def score_columns(self, scores: np.ndarray, classes: list[str],
                      prefix: str = "") -> dict[str, np.ndarray]:
        """One column, ``prediction``."""
        return {f"{prefix}prediction": np.asarray(scores, dtype=float).reshape(-1)}

    def read_scores(self, frame: pd.DataFrame, classes: list[str],
                    prefix: str = "") -> np.ndarray:
        """The ``prediction`` column."""
        return frame[f"{prefix}prediction"].to_numpy(dtype=float)

    def output_columns(self, scores: np.ndarray, threshold: Any,
                       classes: list[str]) -> dict[str, np.ndarray]:
        """``prediction``."""
        return {"prediction": scores}

    def assess(self, y: np.ndarray, scores: np.ndarray, *, threshold: Any, ev: Any,
               seed: int, classes: list[str], groups: np.ndarray | None = None,
               subgroup_frame: pd.DataFrame | None = None, out_dir: Path | None = None,
               synthetic: bool = False) -> dict[str, Any]:
        """Intervals, subgroups, predicted-vs-observed and residual plots."""
        from medml_cli.evaluation.clinical import assess

        result = assess(self.name, y, scores, threshold=0.5, ev=ev, seed=seed,
                        groups=groups, subgroup_frame=subgroup_frame, out_dir=out_dir,
                        synthetic=synthetic)
        result.pop("metrics")
        return result


REGRESSION = register_problem(Regression())
