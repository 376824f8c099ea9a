"""Held-out metrics with the names DESIGN.md fixes, computed with scikit-learn."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm


def _safe_div(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def classification_metrics(y_true: np.ndarray, score: np.ndarray, threshold: float) -> dict:
    """Binary metrics: threshold-free ones on the score, the others at ``threshold``."""
    y_true = np.asarray(y_true).astype(int)
    score = np.clip(np.asarray(score, dtype=float), 0.0, 1.0)
    pred = (score >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y_true, pred, labels=[0, 1]).ravel()
    both = len(np.unique(y_true)) == 2
    return {
        "auroc": float(skm.roc_auc_score(y_true, score)) if both else float("nan"),
        "auprc": float(skm.average_precision_score(y_true, score)) if both else float("nan"),
        "accuracy": float(skm.accuracy_score(y_true, pred)),
        "balanced_accuracy": float(np.mean([_safe_div(tp, tp + fn), _safe_div(tn, tn + fp)]))
        if both else float("nan"),
        "sensitivity": _safe_div(tp, tp + fn),
        "specificity": _safe_div(tn, tn + fp),
        "ppv": _safe_div(tp, tp + fp),
        "npv": _safe_div(tn, tn + fn),
        "f1": float(skm.f1_score(y_true, pred, zero_division=0.0)),
        "brier": float(skm.brier_score_loss(y_true, score)),
        "log_loss": float(skm.log_loss(y_true, score, labels=[0, 1])),
    }


def regression_metrics(y_true: np.ndarray, prediction: np.ndarray) -> dict:
    y_true = np.asarray(y_true, dtype=float)
    prediction = np.asarray(prediction, dtype=float)
    return {
        "r2": float(skm.r2_score(y_true, prediction)),
        "rmse": float(np.sqrt(skm.mean_squared_error(y_true, prediction))),
        "mae": float(skm.mean_absolute_error(y_true, prediction)),
    }


def score_predictions(problem: str, y_true: np.ndarray, score: np.ndarray,
                      threshold: float = 0.5) -> dict:
    if problem == "regression":
        return regression_metrics(y_true, score)
    return classification_metrics(y_true, score, threshold)


def sample_counts(problem: str, y_true: np.ndarray, groups: np.ndarray | None = None) -> dict:
    """What every figure rests on: rows, events (positives), patients."""
    counts = {"samples": int(len(y_true))}
    if problem != "regression":
        counts["events"] = int(np.sum(np.asarray(y_true) == 1))
        counts["non_events"] = int(np.sum(np.asarray(y_true) == 0))
    if groups is not None:
        counts["patients"] = int(len(np.unique(groups)))
    return counts


def score_column(problem: str) -> str:
    """Name of the held-out score column in predictions.csv (DESIGN: score / prediction)."""
    return "prediction" if problem == "regression" else "score"


def baseline_column(problem: str) -> str:
    return f"baseline_{score_column(problem)}"
