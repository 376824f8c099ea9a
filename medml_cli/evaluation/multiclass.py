"""Multi-class held-out metrics and their bootstrap intervals, computed for all resamples at once.

Inputs everywhere: ``y`` holds integer class codes ``0 .. k-1`` (shape ``(n,)``) and ``proba``
the predicted probabilities (shape ``(n, k)``, column ``j`` = class code ``j``, values in
[0, 1], rows summing to about 1). The predicted class is the row's argmax (the first column
on ties, as a scikit-learn classifier's ``predict`` does).

As in :mod:`medml_cli.evaluation.bootstrap`, every metric is a weighted statistic of the
original rows, so one ``(R, n)`` matrix of resample counts gives every resample's metrics by
matrix products, and integer counts give exactly scikit-learn's value on the duplicated rows:

* ``accuracy``; ``balanced_accuracy`` = mean recall over the classes present in ``y``
  (``balanced_accuracy_score``); ``macro_f1`` = mean F1 over the classes present in ``y`` or
  predicted (``f1_score(average="macro")``);
* ``macro_auroc`` / ``weighted_auroc``: one-vs-rest AUROC of each class present in ``y``,
  averaged plainly or weighted by class prevalence (``roc_auc_score(multi_class="ovr")``); a
  class absent from ``y`` is skipped, and both are NaN when fewer than two classes occur;
* ``brier``: mean over rows of the summed squared error over classes (one-hot truth);
* ``log_loss``: ``-log p(true class)`` with ``p`` clipped to ``[eps, 1 - eps]`` (the float64
  machine epsilon), which is what scikit-learn >= 1.5 ``log_loss(labels=range(k))`` does (it
  no longer renormalises rows; the binary module clips the same way).
"""

from __future__ import annotations

import numpy as np

from medml_cli.evaluation.bootstrap import (
    _CHUNK_ELEMENTS,
    _classification_from_weights,
    _counts_from_indices,
    _ratio,
    _stratified_indices,
    percentile_interval,
)
from medml_cli.tasks.base import MULTICLASS_METRICS


def _check_multiclass(y, proba, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(int codes, float probabilities) after checking shapes, codes and values."""
    p = np.asarray(proba, dtype=float)
    codes = np.asarray(y)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"proba must be 2-D (n, k) with k >= 2 classes; got shape {p.shape}")
    if k is not None and p.shape[1] != k:
        raise ValueError(f"proba has {p.shape[1]} columns but there are {k} classes")
    if codes.ndim != 1 or len(codes) != p.shape[0]:
        raise ValueError(f"y must be 1-D with one code per row of proba ({p.shape[0]}); got "
                         f"shape {codes.shape}")
    if len(codes) == 0:
        raise ValueError("no predictions to assess")
    if codes.dtype.kind not in "iub":
        as_float = codes.astype(float) if codes.dtype.kind == "f" else None
        if as_float is None or not np.all(np.isfinite(as_float)) \
                or not np.all(as_float == np.round(as_float)):
            raise ValueError(f"y must hold integer class codes; got dtype {codes.dtype}")
    codes = codes.astype(np.int64)
    k = p.shape[1]
    bad = (codes < 0) | (codes >= k)
    if np.any(bad):
        raise ValueError(f"y holds class codes outside 0..{k - 1}: "
                         f"{sorted(set(codes[bad].tolist()))[:5]}")
    if not np.all(np.isfinite(p)):
        raise ValueError("proba holds NaN or infinite values")
    if p.min() < 0 or p.max() > 1:
        raise ValueError(f"proba must lie in [0, 1]; got range [{p.min():.3g}, {p.max():.3g}]")
    return codes, p


def _check_classes(classes, k: int) -> list[str]:
    labels = [str(c) for c in classes]
    if len(labels) != k:
        raise ValueError(f"{len(labels)} class labels for {k} probability columns")
    return labels


def _class_tables(y: np.ndarray, proba: np.ndarray,
                  weights: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class weighted counts and one-vs-rest AUROC, each (R, k), for (R, n) ``weights``."""
    k = proba.shape[1]
    onehot = (y[:, None] == np.arange(k)).astype(float)
    pred_hot = (np.argmax(proba, axis=1)[:, None] == np.arange(k)).astype(float)
    # The binary module's tie-aware weighted Mann-Whitney AUROC, one class against the rest.
    auroc = np.column_stack([
        _classification_from_weights(onehot[:, c], proba[:, c], weights, 0.5)["auroc"]
        for c in range(k)])
    return {"n_true": weights @ onehot, "n_pred": weights @ pred_hot,
            "tp": weights @ (onehot * pred_hot), "auroc": auroc}


def _mean_where(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Row means of ``values`` over the True entries of ``mask`` (NaN for an empty row)."""
    return _ratio(np.sum(np.where(mask, values, 0.0), axis=1), mask.sum(axis=1).astype(float))


def _multiclass_from_weights(y: np.ndarray, proba: np.ndarray,
                             weights: np.ndarray) -> dict[str, np.ndarray]:
    """Every MULTICLASS_METRICS value for each row of a (R, n) matrix of row weights."""
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    t = _class_tables(y, proba, weights)
    n_true, n_pred, tp, auroc = t["n_true"], t["n_pred"], t["tp"], t["auroc"]
    total = weights.sum(axis=1)
    present = n_true > 0
    enough = present.sum(axis=1) >= 2
    f1_den = n_true + n_pred  # 2 tp + fp + fn
    onehot = y[:, None] == np.arange(proba.shape[1])
    eps = np.finfo(float).eps
    row_loss = -np.log(np.clip(proba[np.arange(len(y)), y], eps, 1 - eps))
    return {
        "macro_auroc": np.where(enough, _mean_where(auroc, present), np.nan),
        "weighted_auroc": np.where(
            enough, _ratio(np.sum(np.where(present, auroc * n_true, 0.0), axis=1), total),
            np.nan),
        "accuracy": _ratio(tp.sum(axis=1), total),
        "balanced_accuracy": _mean_where(_ratio(tp, n_true), present),
        "macro_f1": _mean_where(_ratio(2 * tp, f1_den), f1_den > 0),
        "brier": _ratio(weights @ np.sum((proba - onehot) ** 2, axis=1), total),
        "log_loss": _ratio(weights @ row_loss, total),
    }


def multiclass_metrics(y, proba) -> dict[str, float]:
    """Every MULTICLASS_METRICS value for one set of predictions (see the module docstring)."""
    codes, p = _check_multiclass(y, proba)
    values = _multiclass_from_weights(codes, p, np.ones((1, len(codes))))
    return {name: float(values[name][0]) for name in MULTICLASS_METRICS}


def per_class_metrics(y, proba, classes) -> dict[str, dict[str, float]]:
    """Per class label: one-vs-rest ``auroc``, argmax ``sensitivity`` and ``ppv``, and ``n``.

    ``auroc`` and ``sensitivity`` are NaN for a class absent from ``y`` (``auroc`` also when
    it is the only class), ``ppv`` for a class never predicted."""
    codes, p = _check_multiclass(y, proba)
    labels = _check_classes(classes, p.shape[1])
    t = {name: v[0] for name, v in _class_tables(codes, p, np.ones((1, len(codes)))).items()}
    sens = _ratio(t["tp"], t["n_true"])
    ppv = _ratio(t["tp"], t["n_pred"])
    return {label: {"auroc": float(t["auroc"][c]), "sensitivity": float(sens[c]),
                    "ppv": float(ppv[c]), "n": int(t["n_true"][c])}
            for c, label in enumerate(labels)}


def confusion_counts(y, proba, k: int) -> np.ndarray:
    """(k, k) integer counts: rows the true class code, columns the argmax prediction."""
    codes, p = _check_multiclass(y, proba, k)
    pred = np.argmax(p, axis=1)
    return np.bincount(codes * k + pred, minlength=k * k).reshape(k, k)


def _strata(y: np.ndarray, k: int, unit_of_row: np.ndarray | None, stratify: bool
            ) -> np.ndarray:
    """Stratum of each resampling unit: its class (rows), or the set of classes among its
    rows (patients), so every class in ``y`` occurs in every resample; zeros if not
    stratified."""
    if unit_of_row is None:
        return y if stratify else np.zeros(len(y), dtype=np.int64)
    n_units = int(unit_of_row.max()) + 1
    if not stratify:
        return np.zeros(n_units, dtype=np.int64)
    has = np.zeros((n_units, k), dtype=bool)
    has[unit_of_row, y] = True
    return np.unique(has, axis=0, return_inverse=True)[1].ravel()


def _multiclass_weight_chunks(y: np.ndarray, k: int, groups, n_resamples: int, seed: int,
                              stratify: bool):
    """Yield (r, n) count matrices, ``n_resamples`` rows in all, drawn from one generator."""
    rng = np.random.default_rng(seed)
    unit_of_row = None
    if groups is not None:
        unit_of_row = np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
    strata = _strata(y, k, unit_of_row, stratify)
    n_units = len(strata)
    step = max(1, _CHUNK_ELEMENTS // max(1, len(y) * k))
    for start in range(0, n_resamples, step):
        r = min(step, n_resamples - start)
        counts = _counts_from_indices(_stratified_indices(rng, strata, r), n_units)
        # With groups a row is drawn as often as its patient was.
        yield counts if unit_of_row is None else counts[:, unit_of_row]


def _check_bootstrap(n: int, groups, n_resamples: int, confidence: float) -> None:
    if groups is not None and len(np.asarray(groups)) != n:
        raise ValueError(f"groups has {len(np.asarray(groups))} entries but y has {n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1; got {n_resamples}")


def multiclass_resample_weights(y, k: int, *, groups=None, n_resamples: int = 1000,
                                seed: int = 0, stratify: bool = True) -> np.ndarray:
    """The (n_resamples, n) count matrix :func:`multiclass_bootstrap_intervals` draws.

    Without ``groups`` rows are drawn, keeping each class's row count when ``stratify``; with
    ``groups`` whole patients are drawn (each brings all its rows), keeping the number of
    patients with each set of classes when ``stratify``."""
    codes, _ = _check_multiclass(y, np.zeros((len(np.asarray(y)), k)), k)
    _check_bootstrap(len(codes), groups, n_resamples, 0.5)
    return np.concatenate(list(_multiclass_weight_chunks(codes, k, groups, n_resamples, seed,
                                                         stratify)))


def multiclass_bootstrap_intervals(y, proba, *, groups=None, n_resamples: int = 1000,
                                   confidence: float = 0.95, seed: int = 0,
                                   stratify: bool = True) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap CI ``(low, high)`` for every MULTICLASS_METRICS name.

    ``groups`` (patient ids, one per row) resamples whole patients; resampling is stratified
    as :func:`multiclass_resample_weights` describes. Resamples where a metric is undefined
    are dropped from its percentiles; a metric never defined gets ``(nan, nan)``."""
    _check_bootstrap(len(np.asarray(y)), groups, n_resamples, confidence)
    draws = multiclass_bootstrap_distribution(y, proba, groups=groups,
                                              n_resamples=n_resamples, seed=seed,
                                              stratify=stratify)
    return {name: percentile_interval(draws[name], confidence) for name in MULTICLASS_METRICS}


def multiclass_bootstrap_distribution(y, proba, *, groups=None, n_resamples: int = 1000,
                                      seed: int = 0, stratify: bool = True
                                      ) -> dict[str, np.ndarray]:
    """Every MULTICLASS_METRICS value on each resample (NaN where undefined), drawn as
    :func:`multiclass_resample_weights` describes."""
    codes, p = _check_multiclass(y, proba)
    _check_bootstrap(len(codes), groups, n_resamples, 0.5)
    parts = [_multiclass_from_weights(codes, p, w)
             for w in _multiclass_weight_chunks(codes, p.shape[1], groups, n_resamples, seed,
                                                stratify)]
    return {name: np.concatenate([part[name] for part in parts]) for name in MULTICLASS_METRICS}
