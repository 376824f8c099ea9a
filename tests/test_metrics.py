"""Each metric equals scikit-learn's on the same predictions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from medml_cli.evaluation.metrics import score_predictions


def sklearn_classification(y, score, threshold):
    pred = (score >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    return {
        "auroc": skm.roc_auc_score(y, score),
        "auprc": skm.average_precision_score(y, score),
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "sensitivity": skm.recall_score(y, pred),
        "specificity": tn / (tn + fp),
        "ppv": skm.precision_score(y, pred, zero_division=np.nan),
        "npv": tn / (tn + fn) if tn + fn else np.nan,
        "f1": skm.f1_score(y, pred, zero_division=0.0),
        "brier": skm.brier_score_loss(y, score),
        "log_loss": skm.log_loss(y, score, labels=[0, 1]),
    }


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.8])
def test_classification_metrics_equal_sklearn(seed, threshold):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    y = rng.integers(0, 2, n)
    score = np.clip(rng.normal(0.35 + 0.3 * y, 0.25), 0, 1)
    if seed % 2:
        score = np.round(score, 1)  # ties, as scores of tree models have
    ours = score_predictions("binary-classification", y, score, threshold)
    theirs = sklearn_classification(y, score, threshold)
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert ours[name] == pytest.approx(theirs[name], rel=1e-9, abs=1e-12, nan_ok=True), name


@pytest.mark.parametrize("seed", range(4))
def test_regression_metrics_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(150, 70, 200)
    pred = y + rng.normal(0, 50, 200)
    ours = score_predictions("regression", y, pred)
    assert ours["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert ours["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert ours["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))


def test_per_row_thresholds():
    y = np.array([0, 1, 0, 1])
    score = np.array([0.4, 0.6, 0.6, 0.4])
    per_row = score_predictions("binary-classification", y, score, np.array([0.5, 0.5, 0.7,
                                                                             0.3]))
    assert per_row["accuracy"] == 1.0
    assert score_predictions("binary-classification", y, score, 0.5)["accuracy"] == 0.5
