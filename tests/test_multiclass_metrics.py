"""Multi-class metrics equal scikit-learn's; their bootstrap and figures (issue 11)."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from medml_cli.evaluation.multiclass import (
    _multiclass_from_weights,
    confusion_counts,
    multiclass_bootstrap_intervals,
    multiclass_metrics,
    multiclass_resample_weights,
    per_class_metrics,
)
from medml_cli.tasks.base import MULTICLASS_METRICS


def make_case(seed: int, n: int | None = None, k: int | None = None, signal: float = 0.3,
              ties: bool = False):
    rng = np.random.default_rng(seed)
    n = n or int(rng.integers(30, 400))
    k = k or int(rng.integers(3, 7))
    y = rng.integers(0, k, n)
    proba = rng.dirichlet(np.ones(k), n)
    proba[np.arange(n), y] += signal
    if ties:
        proba = np.round(proba, 1) + 1e-3  # tied scores, as tree models give
    return y, proba / proba.sum(axis=1, keepdims=True)


def sklearn_multiclass(y, proba, present=None):
    k = proba.shape[1]
    pred = proba.argmax(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about classes missing from y
        if present is None:
            macro = skm.roc_auc_score(y, proba, multi_class="ovr", average="macro")
            weighted = skm.roc_auc_score(y, proba, multi_class="ovr", average="weighted")
        else:  # sklearn's OvR needs every class in y: average the binary AUROCs of those present
            aucs = np.array([skm.roc_auc_score(y == c, proba[:, c]) for c in present])
            prevalence = np.array([np.sum(y == c) for c in present])
            macro, weighted = aucs.mean(), np.sum(aucs * prevalence) / prevalence.sum()
        return {
            "macro_auroc": macro,
            "weighted_auroc": weighted,
            "accuracy": skm.accuracy_score(y, pred),
            "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
            "macro_f1": skm.f1_score(y, pred, average="macro"),
            "brier": float(np.mean(np.sum((proba - np.eye(k)[y]) ** 2, axis=1))),
            "log_loss": skm.log_loss(y, proba, labels=list(range(k))),
        }


@pytest.mark.parametrize("seed", range(8))
def test_metrics_equal_sklearn(seed):
    y, proba = make_case(seed, ties=seed % 2 == 1)
    ours = multiclass_metrics(y, proba)
    assert tuple(ours) == MULTICLASS_METRICS
    theirs = sklearn_multiclass(y, proba)
    for name in MULTICLASS_METRICS:
        assert ours[name] == pytest.approx(theirs[name], abs=1e-9), name


def test_metrics_with_a_class_missing_from_y():
    y, proba = make_case(3, n=200, k=5)
    y = np.where(y == 2, 0, y)  # class 2 never occurs, but is still predicted sometimes
    assert np.any(proba.argmax(axis=1) == 2)
    ours = multiclass_metrics(y, proba)
    theirs = sklearn_multiclass(y, proba, present=[0, 1, 3, 4])
    for name in MULTICLASS_METRICS:
        assert ours[name] == pytest.approx(theirs[name], abs=1e-9), name
    assert np.isnan(per_class_metrics(y, proba, list("abcde"))["c"]["auroc"])


def test_single_class_gives_nan_aurocs_but_other_metrics():
    y, proba = make_case(4, n=50, k=3)
    m = multiclass_metrics(np.zeros(50, dtype=int), proba)
    assert np.isnan(m["macro_auroc"]) and np.isnan(m["weighted_auroc"])
    assert np.isfinite(m["accuracy"]) and np.isfinite(m["log_loss"])


def test_two_classes_match_the_binary_metrics():
    y, proba = make_case(5, n=150, k=2)
    m = multiclass_metrics(y, proba)
    assert m["macro_auroc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]), abs=1e-12)
    assert m["weighted_auroc"] == pytest.approx(m["macro_auroc"], abs=1e-12)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba[:, 1]), abs=1e-9)
    # the two-class Brier sums both columns' errors: twice the binary Brier score
    assert m["brier"] == pytest.approx(2 * skm.brier_score_loss(y, proba[:, 1]), abs=1e-12)


def test_extreme_probabilities_clip_like_sklearn():
    y = np.array([0, 1, 2, 0])
    proba = np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0], [0.5, 0.5, 0]])
    assert multiclass_metrics(y, proba)["log_loss"] == pytest.approx(
        skm.log_loss(y, proba, labels=[0, 1, 2]), abs=1e-9)


def test_per_class_metrics():
    y, proba = make_case(6, n=250, k=4)
    labels = ["normal", "benign", "malignant", "other"]
    out = per_class_metrics(y, proba, labels)
    assert list(out) == labels
    pred = proba.argmax(axis=1)
    for c, label in enumerate(labels):
        assert out[label]["auroc"] == pytest.approx(skm.roc_auc_score(y == c, proba[:, c]))
        assert out[label]["sensitivity"] == pytest.approx(skm.recall_score(y == c, pred == c))
        assert out[label]["ppv"] == pytest.approx(skm.precision_score(y == c, pred == c))
        assert out[label]["n"] == int(np.sum(y == c))


def test_ppv_is_nan_for_a_class_never_predicted():
    y = np.array([0, 1, 2, 2])
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.6, 0.1, 0.3], [0.1, 0.6, 0.3]])
    out = per_class_metrics(y, proba, ["a", "b", "c"])
    assert np.isnan(out["c"]["ppv"]) and out["c"]["sensitivity"] == 0.0


def test_confusion_counts_equal_sklearn():
    y, proba = make_case(7, n=300, k=5)
    counts = confusion_counts(y, proba, 5)
    expected = skm.confusion_matrix(y, proba.argmax(axis=1), labels=range(5))
    np.testing.assert_array_equal(counts, expected)
    assert counts.sum() == 300


@pytest.mark.parametrize("y, proba, message", [
    ([0, 1, 2], np.full((3, 2), 0.5), "outside 0..1"),
    ([0, 1, -1], np.full((3, 3), 1 / 3), "outside 0..2"),
    ([0, 1], np.full((3, 3), 1 / 3), "one code per row"),
    ([0, 1, 1], np.full(3, 0.5), "2-D"),
    ([0, 1, 1], np.ones((3, 1)), "k >= 2"),
    ([0.5, 1, 1], np.full((3, 2), 0.5), "integer class codes"),
    (["a", "b", "a"], np.full((3, 2), 0.5), "integer class codes"),
    ([0, 1, 1], np.array([[0.5, np.nan]] * 3), "NaN"),
    ([0, 1, 1], np.array([[1.5, -0.5]] * 3), r"\[0, 1\]"),
    ([], np.zeros((0, 2)), "no predictions"),
])
def test_bad_inputs_raise_clear_errors(y, proba, message):
    with pytest.raises(ValueError, match=message):
        multiclass_metrics(y, proba)


def test_shape_errors_elsewhere():
    y, proba = make_case(8, n=20, k=3)
    with pytest.raises(ValueError, match="3 columns but there are 4"):
        confusion_counts(y, proba, 4)
    with pytest.raises(ValueError, match="2 class labels for 3"):
        per_class_metrics(y, proba, ["a", "b"])
    with pytest.raises(ValueError, match="groups has 5 entries"):
        multiclass_bootstrap_intervals(y, proba, groups=np.arange(5))
    with pytest.raises(ValueError, match="confidence"):
        multiclass_bootstrap_intervals(y, proba, confidence=1.0)


# --- bootstrap -------------------------------------------------------------------------------

def test_intervals_contain_the_point_estimate():
    y, proba = make_case(9, n=300, k=5)
    point = multiclass_metrics(y, proba)
    ci = multiclass_bootstrap_intervals(y, proba, n_resamples=500, seed=1)
    assert tuple(ci) == MULTICLASS_METRICS
    for name in MULTICLASS_METRICS:
        low, high = ci[name]
        assert low < point[name] < high, name


def test_a_resample_equals_the_metrics_on_its_duplicated_rows():
    y, proba = make_case(10, n=120, k=4, ties=True)
    groups = np.arange(120) // 3
    for kwargs in ({}, {"groups": groups}, {"stratify": False}):
        weights = multiclass_resample_weights(y, 4, n_resamples=3, seed=2, **kwargs)
        for w in weights:
            rows = np.repeat(np.arange(120), w.astype(int))  # the resample, written out
            expected = multiclass_metrics(y[rows], proba[rows])
            # the bootstrap's vectorised path on the count row itself
            got = _multiclass_from_weights(y, proba, w[None, :])
            for name in MULTICLASS_METRICS:
                assert got[name][0] == pytest.approx(expected[name], abs=1e-12), name
            # and that equals scikit-learn on the duplicated rows
            theirs = sklearn_multiclass(y[rows], proba[rows],
                                        present=sorted(set(y[rows].tolist())))
            for name in MULTICLASS_METRICS:
                assert got[name][0] == pytest.approx(theirs[name], abs=1e-9), name


def test_stratified_resamples_keep_each_class_count():
    y, proba = make_case(11, n=100, k=4)
    weights = multiclass_resample_weights(y, 4, n_resamples=50, seed=0)
    assert weights.shape == (50, 100)
    for c in range(4):
        np.testing.assert_array_equal(weights @ (y == c), np.full(50, np.sum(y == c)))


def test_grouped_resamples_draw_whole_patients():
    y, proba = make_case(12, n=90, k=3)
    groups = np.repeat(np.arange(30), 3)
    y = np.repeat(y[:30], 3)  # each patient's rows share a class
    weights = multiclass_resample_weights(y, 3, groups=groups, n_resamples=20, seed=0)
    per_patient = weights.reshape(20, 30, 3)
    assert np.all(per_patient == per_patient[:, :, :1])  # all a patient's rows together
    assert np.all(weights.sum(axis=1) == 90)


def test_grouped_intervals_are_wider_when_rows_are_duplicated_per_patient():
    y, proba = make_case(13, n=150, k=4)
    rows = np.repeat(np.arange(150), 4)  # every patient contributes four identical rows
    y4, p4, patients = y[rows], proba[rows], rows
    naive = multiclass_bootstrap_intervals(y4, p4, n_resamples=400, seed=3)
    grouped = multiclass_bootstrap_intervals(y4, p4, groups=patients, n_resamples=400, seed=3)
    for name in MULTICLASS_METRICS:
        assert grouped[name][1] - grouped[name][0] >= naive[name][1] - naive[name][0], name


def test_bootstrap_is_reproducible_for_a_seed():
    y, proba = make_case(14, n=200, k=5)
    groups = np.arange(200) // 2
    a = multiclass_bootstrap_intervals(y, proba, groups=groups, n_resamples=200, seed=7)
    b = multiclass_bootstrap_intervals(y, proba, groups=groups, n_resamples=200, seed=7)
    c = multiclass_bootstrap_intervals(y, proba, groups=groups, n_resamples=200, seed=8)
    assert a == b
    assert a != c


def test_bootstrap_is_fast():
    y, proba = make_case(15, n=300, k=5)
    multiclass_bootstrap_intervals(y, proba, n_resamples=20)  # warm-up (imports)
    start = time.perf_counter()
    multiclass_bootstrap_intervals(y, proba, n_resamples=1000)
    assert time.perf_counter() - start < 2.0


# --- figures ---------------------------------------------------------------------------------

@pytest.fixture
def captured(monkeypatch):
    """The title and legend texts of each figure a multiclass plot function finishes."""
    from medml_cli.evaluation import multiclass_plots

    seen = []
    real = multiclass_plots._finish

    def spy(fig, path, title, synthetic):
        legends = [t.get_text() for ax in fig.axes if ax.get_legend()
                   for t in ax.get_legend().get_texts()]
        out = real(fig, path, title, synthetic)
        seen.append({"title": fig._suptitle.get_text(), "legend": legends})
        return out

    monkeypatch.setattr(multiclass_plots, "_finish", spy)
    return seen


LABELS = ["normal", "benign", "malignant", "other"]


@pytest.mark.parametrize("name", ["plot_multiclass_roc", "plot_multiclass_calibration",
                                  "plot_multiclass_confusion"])
@pytest.mark.parametrize("synthetic", [False, True])
def test_each_figure_writes_a_png(tmp_path, captured, name, synthetic):
    from medml_cli.evaluation import multiclass_plots

    y, proba = make_case(16, n=200, k=4)
    out = getattr(multiclass_plots, name)(y, proba, LABELS, tmp_path / "sub" / f"{name}.png",
                                          synthetic=synthetic)
    assert out == tmp_path / "sub" / f"{name}.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 1000
    assert ("SYNTHETIC DATA" in captured[0]["title"]) is synthetic


def test_roc_legend_aurocs_match_per_class_metrics(tmp_path, captured):
    from medml_cli.evaluation.multiclass_plots import plot_multiclass_roc

    y, proba = make_case(17, n=200, k=4)
    y = np.where(y == 3, 0, y)  # "other" absent from y
    plot_multiclass_roc(y, proba, LABELS, tmp_path / "roc.png")
    legend = dict(text.split(": ", 1) for text in captured[0]["legend"] if ": " in text)
    per_class = per_class_metrics(y, proba, LABELS)
    for label in LABELS[:3]:
        assert legend[label].startswith(f"AUROC {per_class[label]['auroc']:.3f} ")
    assert "not in y" in legend["other"]
    assert "chance" in captured[0]["legend"]
    assert f"macro AUROC {multiclass_metrics(y, proba)['macro_auroc']:.3f}" in \
        captured[0]["title"]


def test_figures_reject_mismatched_labels(tmp_path):
    from medml_cli.evaluation.multiclass_plots import plot_multiclass_confusion

    y, proba = make_case(18, n=30, k=3)
    with pytest.raises(ValueError, match="4 class labels for 3"):
        plot_multiclass_confusion(y, proba, LABELS, tmp_path / "c.png")
