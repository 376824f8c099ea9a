"""The ``multiclass`` problem type: k > 2 classes, a probability for each, the most probable
class predicted (no threshold)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medml_cli.problems.base import ProblemType, register_problem
from medml_cli.tasks.base import MULTICLASS_METRICS


def class_probabilities(model: Any, X: Any, n_classes: int) -> np.ndarray:
    """``predict_proba`` as an (n, k) matrix in class-code order, whatever classes the model
    saw (a class absent from its training rows gets probability 0, not a shifted column)."""
    proba = np.asarray(model.predict_proba(X), dtype=float)
    seen = np.asarray(getattr(model, "classes_", np.arange(proba.shape[1]))).astype(int)
    if proba.shape[1] == n_classes and np.array_equal(seen, np.arange(n_classes)):
        return proba
    out = np.zeros((proba.shape[0], n_classes))
    out[:, seen] = proba
    return out


class MulticlassClassification(ProblemType):
    """k classes: scores are an (n, k) matrix of class probabilities."""

    name = "multiclass"
    summary = "k > 2 classes: a probability per class, the most probable class predicted"
    metric_names = MULTICLASS_METRICS
    primary_metric = "macro_auroc"
    classifies = True
    target_kind = "classes"
    importance_scoring = "roc_auc_ovr"
    baseline_text = "the training class frequencies"
    pooled_measures = (("macro_auroc", "logit"),)
    plot_titles = {"roc.png": "One-vs-rest ROC curve per class",
                   "calibration.png": "One-vs-rest reliability per class",
                   "confusion_matrix.png": "Confusion matrix (most probable class)"}

    def scores(self, model: Any, X: Any, n_classes: int = 2) -> np.ndarray:
        """The (n, k) class probabilities."""
        return class_probabilities(model, X, n_classes)

    def baseline_estimator(self) -> Any:
        """Predicts the training class frequencies for everyone."""
        from sklearn.dummy import DummyClassifier

        return DummyClassifier(strategy="prior")

    def metrics(self, y: np.ndarray, scores: np.ndarray,
                threshold: float | np.ndarray | None = None) -> dict[str, float]:
        """macro/weighted one-vs-rest AUROC, accuracy, balanced accuracy, macro F1, brier,
        log loss."""
        from medml_cli.evaluation.multiclass import multiclass_metrics

        return multiclass_metrics(np.asarray(y).astype(int), np.asarray(scores, dtype=float))

    def bootstrap_draws(self, y: np.ndarray, scores: np.ndarray, *, threshold: Any,
                        groups: np.ndarray | None, n_resamples: int,
                        seed: int) -> dict[str, np.ndarray]:
        """Every metric on each class-stratified resample (patients with ``groups``)."""
        from medml_cli.evaluation.multiclass import multiclass_bootstrap_distribution

        return multiclass_bootstrap_distribution(np.asarray(y).astype(int), scores,
                                                 groups=groups, n_resamples=n_resamples,
                                                 seed=seed)

    def sample_counts(self, y: np.ndarray, groups: np.ndarray | None = None,
                      classes: list[str] | None = None) -> dict[str, Any]:
        """Rows, rows per class and patients."""
        counts = super().sample_counts(y, groups)
        codes = np.asarray(y).astype(int)
        labels = list(classes or [str(i) for i in range(int(codes.max()) + 1)])
        counts["classes"] = {label: int(np.sum(codes == i)) for i, label in enumerate(labels)}
        return counts

    def score_columns(self, scores: np.ndarray, classes: list[str],
                      prefix: str = "") -> dict[str, np.ndarray]:
        """``probability_<class>`` for each class."""
        scores = np.asarray(scores, dtype=float).reshape(len(scores), -1)
        return {f"{prefix}probability_{c}": scores[:, i] for i, c in enumerate(classes)}

    def read_scores(self, frame: pd.DataFrame, classes: list[str],
                    prefix: str = "") -> np.ndarray:
        """The ``probability_<class>`` columns as an (n, k) matrix."""
        return frame[[f"{prefix}probability_{c}" for c in classes]].to_numpy(dtype=float)

    def score_column_names(self, classes: list[str], prefix: str = "") -> list[str]:
        """``probability_<class>`` for each class."""
        return [f"{prefix}probability_{c}" for c in classes]

    def decision_columns(self, scores: np.ndarray, threshold: Any,
                         classes: list[str]) -> dict[str, np.ndarray]:
        """``predicted_class`` (the code) and ``predicted_label`` of the most probable class."""
        codes = np.argmax(scores, axis=1)
        return {"predicted_class": codes,
                "predicted_label": np.asarray(classes, dtype=object)[codes]}

    def output_columns(self, scores: np.ndarray, threshold: Any,
                       classes: list[str]) -> dict[str, np.ndarray]:
        """``probability_<class>`` for each class, ``predicted_class``, ``predicted_label``."""
        return {**self.score_columns(scores, classes), **self.decision_columns(
            scores, threshold, classes)}

    def report_sections(self, cfg: Any, metrics: dict[str, Any], run_path: Path) -> list[Any]:
        """Decision rule, per-class table and confusion matrix."""
        from medml_cli.evaluation.report import class_sections

        return class_sections(cfg, metrics, run_path)

    def assess(self, y: np.ndarray, scores: np.ndarray, *, threshold: Any, ev: Any,
               seed: int, classes: list[str], groups: np.ndarray | None = None,
               subgroup_frame: pd.DataFrame | None = None, out_dir: Path | None = None,
               synthetic: bool = False) -> dict[str, Any]:
        """Bootstrap intervals, per-class metrics, subgroup table, and one-vs-rest ROC,
        reliability and k x k confusion-matrix plots."""
        from medml_cli.evaluation import multiclass as mc
        from medml_cli.evaluation import multiclass_plots as mc_plots

        y = np.asarray(y).astype(int)
        scores = np.asarray(scores, dtype=float)
        intervals: dict[str, list[float]] = {}
        if ev.bootstrap and len(y) >= 2 and len(np.unique(y)) >= 2:
            found = mc.multiclass_bootstrap_intervals(
                y, scores, groups=groups, n_resamples=ev.bootstrap,
                confidence=ev.confidence, seed=seed)
            intervals = {k: [float(lo), float(hi)] for k, (lo, hi) in found.items()}
        result: dict[str, Any] = {
            "intervals": intervals,
            "confidence": ev.confidence if ev.bootstrap else None,
            "bootstrap_resamples": ev.bootstrap,
            "per_class": mc.per_class_metrics(y, scores, list(classes)),
            "confusion_matrix": {"classes": list(classes), "counts": mc.confusion_counts(
                y, scores, len(classes)).tolist()},
        }
        if ev.subgroups and subgroup_frame is not None:
            table = subgroup_table(y, scores, subgroup_frame, ev.subgroups, ev=ev, seed=seed,
                                   groups=groups)
            result["subgroups"] = table.to_dict(orient="records")
            if out_dir is not None:
                out_dir.mkdir(parents=True, exist_ok=True)
                table.to_csv(out_dir / "subgroups.csv", index=False)
        if out_dir is not None and ev.plots and len(np.unique(y)) >= 2:
            folder = out_dir / "plots"
            folder.mkdir(parents=True, exist_ok=True)
            made = [
                mc_plots.plot_multiclass_roc(y, scores, list(classes), folder / "roc.png",
                                       synthetic=synthetic),
                mc_plots.plot_multiclass_calibration(y, scores, list(classes),
                                               folder / "calibration.png", synthetic=synthetic),
                mc_plots.plot_multiclass_confusion(y, scores, list(classes),
                                             folder / "confusion_matrix.png",
                                             synthetic=synthetic),
            ]
            result["plots"] = [Path(p).name for p in made]
        return result


def subgroup_table(y: np.ndarray, scores: np.ndarray, frame: pd.DataFrame,
                   names: list[str], *, ev: Any, seed: int,
                   groups: np.ndarray | None = None) -> pd.DataFrame:
    """Per (subgroup variable, value): n, accuracy, macro AUROC with its bootstrap interval
    (patients resampled when ``groups`` is given) and a small-n warning."""
    from medml_cli.evaluation.multiclass import multiclass_bootstrap_intervals, multiclass_metrics
    from medml_cli.evaluation.subgroups import subgroup_order, subgroup_values

    rows = []
    for name in names:
        values = subgroup_values(frame, name)
        if values is None:
            continue
        values = pd.Series(values).reset_index(drop=True)
        present = set(values.dropna())  # rows without a value are left out, as before
        for value in (v for v in subgroup_order(values) if v in present):
            mask = (values == value).to_numpy()
            part = multiclass_metrics(y[mask], scores[mask])
            row: dict[str, Any] = {"variable": name, "subgroup": str(value),
                                   "n": int(mask.sum()), "accuracy": part["accuracy"],
                                   "macro_auroc": part["macro_auroc"],
                                   "macro_auroc_low": float("nan"),
                                   "macro_auroc_high": float("nan")}
            if len(np.unique(y[mask])) >= 2 and mask.sum() >= 2:
                ci = multiclass_bootstrap_intervals(
                    y[mask], scores[mask], groups=groups[mask] if groups is not None else None,
                    n_resamples=ev.bootstrap or 200, confidence=ev.confidence, seed=seed)
                row["macro_auroc_low"], row["macro_auroc_high"] = ci["macro_auroc"]
            row["warning"] = (f"fewer than {ev.min_subgroup_n} rows: estimates unstable"
                              if mask.sum() < ev.min_subgroup_n else "")
            rows.append(row)
    return pd.DataFrame(rows)


MULTICLASS = register_problem(MulticlassClassification())
