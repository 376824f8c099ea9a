"""The ``binary-classification`` problem type: a probability of the positive class, classified
at the run's operating threshold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medml_cli.evaluation.metrics import sample_counts, score_predictions
from medml_cli.problems.base import ProblemType, register_problem
from medml_cli.tasks.base import CLASSIFICATION_METRICS


class BinaryClassification(ProblemType):
    """Two classes: scores are the positive class's probability."""

    name = "binary-classification"
    summary = "two classes: probability of the positive class, an operating threshold"
    metric_names = CLASSIFICATION_METRICS
    score_column = "score"
    primary_metric = "auroc"
    classifies = True
    target_kind = "classes"
    uses_threshold = True
    importance_scoring = "roc_auc"
    baseline_text = "the training prevalence"
    pooled_measures = (("auroc", "logit"), ("calibration_intercept", "identity"),
                       ("calibration_slope", "identity"))

    def scores(self, model: Any, X: Any, n_classes: int = 2) -> np.ndarray:
        """The positive class's probability."""
        return np.asarray(model.predict_proba(X)[:, 1], dtype=float)

    def baseline_estimator(self) -> Any:
        """Predicts the training prevalence for everyone."""
        from sklearn.dummy import DummyClassifier

        return DummyClassifier(strategy="prior")

    def metrics(self, y: np.ndarray, scores: np.ndarray,
                threshold: float | np.ndarray | None = 0.5) -> dict[str, float]:
        """auroc, auprc, brier, log_loss and the metrics at the threshold."""
        return score_predictions(self.name, y, scores, 0.5 if threshold is None else threshold)

    def bootstrap_draws(self, y: np.ndarray, scores: np.ndarray, *, threshold: Any,
                        groups: np.ndarray | None, n_resamples: int,
                        seed: int) -> dict[str, np.ndarray]:
        """Every metric on each resample (stratified by class; patients with ``groups``)."""
        from medml_cli.evaluation.bootstrap import bootstrap_distribution

        return bootstrap_distribution(self.name, y, scores, threshold=threshold,
                                      groups=groups, n_resamples=n_resamples, seed=seed)

    def group_estimates(self, y: np.ndarray, scores: np.ndarray, *, threshold: Any, ev: Any,
                        seed: int, groups: np.ndarray | None = None
                        ) -> dict[str, dict[str, float]]:
        """AUROC (bootstrap) and calibration-in-the-large and slope (Wald intervals from the
        recalibration fits' standard errors)."""
        from scipy.stats import norm

        from medml_cli.evaluation.calibration import calibration_with_errors

        out = super().group_estimates(y, scores, threshold=threshold, ev=ev, seed=seed,
                                      groups=groups)
        z = float(norm.ppf(0.5 + ev.confidence / 2))
        for name, (estimate, se) in calibration_with_errors(y, scores).items():
            out[name] = {"estimate": estimate, "low": estimate - z * se,
                         "high": estimate + z * se, "se": se}
        return out

    def sample_counts(self, y: np.ndarray, groups: np.ndarray | None = None,
                      classes: list[str] | None = None) -> dict[str, Any]:
        """Rows, events (positives), non-events and patients."""
        return sample_counts(self.name, y, groups)

    def decision_columns(self, scores: np.ndarray, threshold: Any,
                         classes: list[str]) -> dict[str, np.ndarray]:
        """``predicted_class``: 1 where the score reaches the threshold."""
        return {"predicted_class": (scores >= threshold).astype(int)}

    def output_columns(self, scores: np.ndarray, threshold: Any,
                       classes: list[str]) -> dict[str, np.ndarray]:
        """``probability``, ``predicted_class`` and ``predicted_label``."""
        labels = list(classes) if classes else ["0", "1"]
        positive = scores >= float(threshold)
        return {"probability": scores, "predicted_class": positive.astype(int),
                "predicted_label": np.where(positive, labels[1], labels[0])}

    def report_sections(self, cfg: Any, metrics: dict[str, Any], run_path: Path) -> list[Any]:
        """Operating threshold, calibration and decision curve."""
        from medml_cli.evaluation.report import threshold_sections

        return threshold_sections(cfg, metrics, run_path)



BINARY = register_problem(BinaryClassification())
