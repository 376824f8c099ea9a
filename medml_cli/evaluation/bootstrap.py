"""Percentile bootstrap intervals for every held-out metric, computed for all resamples at once.

Each resample is drawn as a row of an ``(n_resamples, n)`` index matrix and then turned into
a matrix of *counts* (how often each row was drawn). Every metric is a weighted statistic of
the original rows, so the scores are sorted ONCE and each metric is a handful of matrix
products, cumulative sums and row reductions over the count matrix, with no Python loop over
resamples. Integer counts give exactly the metric scikit-learn computes on the duplicated rows.

Metric definitions follow :func:`medml_cli.evaluation.metrics.score_predictions` exactly
(scores clipped to [0, 1], ``score >= threshold`` is positive, where ``threshold`` is one
number or one per row, e.g. each row's own fold threshold; NaN where a ratio is 0/0,
F1 = 0 when undefined), with two deliberate differences for degenerate resamples:
``r2`` is NaN when a resample's truth is constant (scikit-learn would report 0 or 1), and
``auroc``/``auprc``/``balanced_accuracy`` are NaN when a resample lacks a class. NaN
resamples are dropped from that metric's percentiles.
"""

from __future__ import annotations

import numpy as np

from medml_cli.tasks.base import CLASSIFICATION_METRICS, REGRESSION_METRICS

# Bound on the elements of one count matrix chunk (float64: 8 bytes each, ~32 MB), so large
# test sets do not allocate n_resamples x n at once.
_CHUNK_ELEMENTS = 4_000_000


def metric_names(problem: str) -> tuple[str, ...]:
    """The metric names :func:`score_predictions` returns for ``problem``."""
    return REGRESSION_METRICS if problem == "regression" else CLASSIFICATION_METRICS


def as_threshold(threshold: float | np.ndarray, n: int) -> float | np.ndarray:
    """``threshold`` as one float, or as a float array of one cut-off per row (length ``n``).

    Raises ValueError for a per-row array of the wrong length or a NaN cut-off (which would
    silently call every such row negative).
    """
    t = np.asarray(threshold, dtype=float)
    if t.ndim == 0:
        if np.isnan(t):
            raise ValueError("threshold is NaN")
        return float(t)
    if t.ndim != 1 or len(t) != n:
        raise ValueError(f"a per-row threshold needs one value per row ({n}); got shape "
                         f"{t.shape}")
    if np.any(np.isnan(t)):
        raise ValueError("the per-row threshold holds NaN")
    return t


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with NaN where den == 0 (the metrics module's ``_safe_div``)."""
    out = np.full(np.shape(num), np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _counts_from_indices(index_matrix: np.ndarray, n: int) -> np.ndarray:
    """(R, m) row indices into [0, n) -> (R, n) float counts, via one flat bincount."""
    index_matrix = np.asarray(index_matrix, dtype=np.int64)
    r = index_matrix.shape[0]
    flat = (index_matrix + (np.arange(r, dtype=np.int64) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=r * n).reshape(r, n).astype(float)


def _classification_from_weights(y: np.ndarray, score: np.ndarray, weights: np.ndarray,
                                 threshold: float | np.ndarray) -> dict[str, np.ndarray]:
    """All classification metrics for each row of ``weights`` (R, n); ``threshold`` is one
    cut-off or one per row (a resample reuses each drawn row's own cut-off)."""
    y = np.asarray(y).astype(int)
    score = np.clip(np.asarray(score, dtype=float), 0.0, 1.0)
    pos = (y == 1).astype(float)
    neg = 1.0 - pos
    pred = (score >= as_threshold(threshold, len(y))).astype(float)

    total = weights.sum(axis=1)
    n_pos = weights @ pos
    n_neg = total - n_pos
    tp = weights @ (pos * pred)
    fp = weights @ (neg * pred)
    fn = n_pos - tp
    tn = n_neg - fp
    both = (n_pos > 0) & (n_neg > 0)

    sens = _ratio(tp, tp + fn)
    spec = _ratio(tn, tn + fp)
    f1_den = 2 * tp + fp + fn
    out = {
        "accuracy": _ratio(tp + tn, total),
        "balanced_accuracy": np.where(both, (sens + spec) / 2, np.nan),
        "sensitivity": sens,
        "specificity": spec,
        "ppv": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
        # scikit-learn's f1_score(zero_division=0.0)
        "f1": np.where(f1_den > 0, _ratio(2 * tp, f1_den), 0.0),
        "brier": _ratio(weights @ (pos - score) ** 2, total),
    }
    # scikit-learn >= 1.5 clips at the dtype's machine epsilon (not the old 1e-15), separately
    # for p and 1 - p; matching it keeps the identity resample equal to score_predictions.
    eps = np.finfo(float).eps
    row_loss = np.where(pos == 1, -np.log(np.clip(score, eps, 1 - eps)),
                        -np.log(np.clip(1 - score, eps, 1 - eps)))
    out["log_loss"] = _ratio(weights @ row_loss, total)

    # Rank-based metrics: sort the ORIGINAL scores once; a resample only changes the weights.
    order = np.argsort(score, kind="stable")
    s = score[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # first row of each tie group
    w = weights[:, order]
    pos_g = np.add.reduceat(w * pos[order], starts, axis=1)  # (R, G) positives per tie group
    neg_g = np.add.reduceat(w * neg[order], starts, axis=1)

    # AUROC = Mann-Whitney U / (P N): each positive beats the negatives strictly below it
    # and gets half credit for negatives tied with it (= midranks = scikit-learn's trapezoids).
    neg_below = np.cumsum(neg_g, axis=1) - neg_g
    u = np.sum(pos_g * (neg_below + 0.5 * neg_g), axis=1)
    out["auroc"] = np.where(both, _ratio(u, n_pos * n_neg), np.nan)

    # Average precision as scikit-learn defines it: sum over distinct thresholds (descending)
    # of recall increment x precision, where a threshold admits its whole tie group at once.
    tp_at = np.cumsum(pos_g[:, ::-1], axis=1)[:, ::-1]  # positives with score >= group value
    called = tp_at + np.cumsum(neg_g[:, ::-1], axis=1)[:, ::-1]
    precision = np.divide(tp_at, called, out=np.zeros_like(tp_at), where=called > 0)
    ap = np.sum(pos_g * precision, axis=1)
    out["auprc"] = np.where(both, _ratio(ap, n_pos), np.nan)
    return out


def _regression_from_weights(y: np.ndarray, pred: np.ndarray,
                             weights: np.ndarray) -> dict[str, np.ndarray]:
    """r2, rmse, mae for each row of ``weights`` (R, n)."""
    y = np.asarray(y, dtype=float)
    pred = np.asarray(pred, dtype=float)
    total = weights.sum(axis=1)
    ss_res = weights @ (y - pred) ** 2
    y_mean = _ratio(weights @ y, total)
    # Centre per resample before squaring (not E[y^2] - E[y]^2, which cancels badly).
    ss_tot = np.sum(weights * (y[None, :] - y_mean[:, None]) ** 2, axis=1)
    return {
        "r2": 1.0 - _ratio(ss_res, ss_tot),
        "rmse": np.sqrt(_ratio(ss_res, total)),
        "mae": _ratio(weights @ np.abs(y - pred), total),
    }


def _metrics_for_weights(problem: str, y: np.ndarray, score: np.ndarray, weights: np.ndarray,
                         threshold: float | np.ndarray = 0.5) -> dict[str, np.ndarray]:
    """Every metric for each row of a (R, n) matrix of non-negative row weights (counts)."""
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    if problem == "regression":
        return _regression_from_weights(y, score, weights)
    return _classification_from_weights(y, score, weights, threshold)


def _metrics_for_indices(problem: str, y: np.ndarray, score: np.ndarray,
                         index_matrix: np.ndarray, threshold: float | np.ndarray = 0.5
                         ) -> dict[str, np.ndarray]:
    """Every metric for each resample; row r of ``index_matrix`` lists the rows it drew."""
    n = len(np.asarray(y))
    return _metrics_for_weights(problem, y, score,
                                _counts_from_indices(np.atleast_2d(index_matrix), n), threshold)


def _stratified_indices(rng: np.random.Generator, strata: np.ndarray,
                        n_resamples: int) -> np.ndarray:
    """(R, m) indices into ``range(m)`` resampled with replacement within each stratum,
    keeping each stratum's size (a stratum of one label gets its label count every time)."""
    blocks = []
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        blocks.append(members[rng.integers(0, len(members), size=(n_resamples, len(members)))])
    return np.concatenate(blocks, axis=1)


def _weight_chunks(problem: str, y: np.ndarray, groups, n_resamples: int, seed: int,
                   stratify: bool):
    """Yield (r, n) count matrices, ``n_resamples`` rows in all, drawn from one generator.

    Chunking only bounds memory; the draws depend on ``seed`` and the data alone.
    """
    rng = np.random.default_rng(seed)
    classify = problem != "regression" and stratify
    events = y.astype(int) == 1 if classify else np.zeros(len(y), dtype=bool)
    if groups is None:
        n_units, strata, unit_of_row = len(y), events, None
    else:
        _, unit_of_row = np.unique(np.asarray(groups), return_inverse=True)
        unit_of_row = unit_of_row.ravel()
        n_units = int(unit_of_row.max()) + 1
        strata = np.zeros(n_units, dtype=bool)  # patient has any positive row
        strata[unit_of_row[events]] = True
    step = max(1, _CHUNK_ELEMENTS // max(1, len(y)))
    for start in range(0, n_resamples, step):
        r = min(step, n_resamples - start)
        counts = _counts_from_indices(_stratified_indices(rng, strata, r), n_units)
        # With groups a row is drawn as often as its patient was.
        yield counts if unit_of_row is None else counts[:, unit_of_row]


def resample_weights(problem: str, y_true, *, groups=None, n_resamples: int = 1000,
                     seed: int = 0, stratify: bool = True) -> np.ndarray:
    """The (n_resamples, n) count matrix of a (stratified, optionally patient-level) bootstrap.

    Without ``groups`` rows are drawn; with ``groups`` patients are drawn and each brings all
    its rows. Classification with ``stratify`` keeps the number of positive and negative rows
    (or of patients with / without any positive row) fixed.
    """
    y = np.asarray(y_true)
    return np.concatenate(list(_weight_chunks(problem, y, groups, n_resamples, seed, stratify)))


def _check_inputs(y: np.ndarray, score: np.ndarray, groups, n_resamples: int,
                  confidence: float) -> None:
    if y.ndim != 1 or score.ndim != 1 or len(y) != len(score):
        raise ValueError(f"y_true and score must be 1-D of the same length; got shapes "
                         f"{y.shape} and {score.shape}")
    if len(y) == 0:
        raise ValueError("cannot bootstrap an empty set of predictions")
    if groups is not None and len(np.asarray(groups)) != len(y):
        raise ValueError(f"groups has {len(np.asarray(groups))} entries but y_true has {len(y)}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1; got {n_resamples}")


def bootstrap_distribution(problem: str, y_true, score, *,
                           threshold: float | np.ndarray = 0.5, groups=None,
                           n_resamples: int = 1000, seed: int = 0,
                           stratify: bool = True) -> dict[str, np.ndarray]:
    """Each metric's value on every resample (length ``n_resamples``; NaN where undefined).

    ``threshold`` is one cut-off or one per row of ``y_true`` (each row keeps its own in
    every resample)."""
    y = np.asarray(y_true)
    s = np.asarray(score, dtype=float)
    _check_inputs(y, s, groups, n_resamples, 0.5)
    if problem != "regression":
        threshold = as_threshold(threshold, len(y))
    # Chunks over resamples only bound memory; each chunk is fully vectorised.
    parts = [_metrics_for_weights(problem, y, s, w, threshold)
             for w in _weight_chunks(problem, y, groups, n_resamples, seed, stratify)]
    return {name: np.concatenate([p[name] for p in parts]) for name in metric_names(problem)}


def percentile_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the finite values; (nan, nan) if there are none."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(finite, [100 * alpha, 100 * (1 - alpha)])
    return (float(low), float(high))


def bootstrap_intervals(problem: str, y_true, score, *, threshold: float | np.ndarray = 0.5,
                        groups=None,
                        n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0,
                        stratify: bool = True) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap CI ``(low, high)`` for every metric ``score_predictions`` returns.

    ``groups`` (patient ids, one per row) switches to a cluster bootstrap over patients;
    ``threshold`` may be one cut-off per row (per-fold thresholds).
    Resamples where a metric is undefined are dropped from its percentiles; a metric never
    defined gets ``(nan, nan)``.
    """
    y = np.asarray(y_true)
    s = np.asarray(score, dtype=float)
    _check_inputs(y, s, groups, n_resamples, confidence)
    draws = bootstrap_distribution(problem, y, s, threshold=threshold, groups=groups,
                                   n_resamples=n_resamples, seed=seed, stratify=stratify)
    return {name: percentile_interval(values, confidence) for name, values in draws.items()}
