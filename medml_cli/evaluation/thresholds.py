"""Choosing the operating threshold of a binary classifier (``score >= threshold`` is positive).

Thresholds chosen on data should come from validation/out-of-fold predictions, not the test
set they are then reported on; this module only does the arithmetic.

The candidate cut-offs are the distinct scores (plus "call nobody positive"). Youden's J is
compared exactly: from the integer counts, J = TP/P - FP/N orders the cut-offs as the integer
TP*N - FP*P does, so cut-offs with equal J are recognised as tied (floating-point
differences of TPR - FPR are not) and the documented tie rule, the highest threshold, applies.
"""

from __future__ import annotations

import numpy as np

METHODS = ("fixed", "youden", "sensitivity", "specificity")


def _check_value(method: str, value: float | None) -> float:
    if value is None:
        raise ValueError(f"threshold method '{method}' needs a value in (0, 1)")
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"threshold method '{method}' needs a value in (0, 1); got {value}")
    return value


def _finite_threshold(threshold: float, score: np.ndarray) -> float:
    """Replace roc_curve's leading ``inf`` ("call nobody positive") by a finite cut-off."""
    if np.isfinite(threshold):
        return float(threshold)
    above_all = float(np.nextafter(score.max(), np.inf))
    # Probabilities stay in [0, 1]; at 1.0 a score of exactly 1.0 would still be positive.
    if score.min() >= 0.0 and score.max() <= 1.0:
        return min(1.0, above_all)
    return above_all


def _counts_at_cuts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate cut-offs in descending order (``inf`` first) with the exact integer numbers
    of positives (TP) and negatives (FP) that ``score >= cut`` calls positive at each."""
    order = np.argsort(-s, kind="stable")
    s_desc, y_desc = s[order], y[order]
    last_of_tie = np.r_[s_desc[1:] != s_desc[:-1], True]  # a cut admits its whole tie group
    tp = np.cumsum(y_desc == 1, dtype=np.int64)[last_of_tie]
    fp = np.cumsum(y_desc == 0, dtype=np.int64)[last_of_tie]
    return (np.r_[np.inf, s_desc[last_of_tie]], np.r_[np.int64(0), tp],
            np.r_[np.int64(0), fp])


def choose_threshold(y_true, score, *, method: str, value: float | None = None) -> float:
    """The cut-off for ``method``.

    * ``fixed``: ``value`` itself;
    * ``youden``: maximises J = sensitivity + specificity - 1 over the distinct scores,
      comparing J exactly (as the integer TP*N - FP*P); among cut-offs with exactly equal J
      the highest threshold is chosen;
    * ``sensitivity``: the highest threshold whose sensitivity is >= ``value``;
    * ``specificity``: the lowest threshold whose specificity is >= ``value``.

    Raises ValueError for an unknown method, a target outside (0, 1), or data that are not
    binary with both classes present.
    """
    if method not in METHODS:
        raise ValueError(f"unknown threshold method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "fixed":
        return _check_value(method, value)
    target = _check_value(method, value) if method != "youden" else None

    y = np.asarray(y_true).ravel()
    s = np.asarray(score, dtype=float).ravel()
    if len(y) != len(s):
        raise ValueError(f"y_true has {len(y)} entries but score has {len(s)}")
    if not np.all(np.isfinite(s)):
        raise ValueError("score holds NaN or infinite values")
    classes = np.unique(y)
    if len(classes) != 2 or not np.all(np.isin(classes, (0, 1))):
        raise ValueError(f"choosing a threshold needs both classes 0 and 1 in y_true; "
                         f"got classes {classes.tolist()}")

    # Every distinct score is a candidate; cuts descend, so tp and fp ascend along the arrays.
    cuts, tp, fp = _counts_at_cuts(y.astype(int), s)
    n_pos, n_neg = tp[-1], fp[-1]
    tpr, fpr = tp / n_pos, fp / n_neg  # the same divisions roc_curve makes
    if method == "youden":
        # exact J in integers; argmax returns the first maximum = the highest tied threshold
        best = int(np.argmax(tp * n_neg - fp * n_pos))
    elif method == "sensitivity":
        best = int(np.flatnonzero(tpr >= target - 1e-12)[0])
    else:  # specificity: the ok thresholds form a prefix (cuts[0] = inf has specificity 1)
        best = int(np.flatnonzero(1.0 - fpr >= target - 1e-12)[-1])
    return _finite_threshold(cuts[best], s)
