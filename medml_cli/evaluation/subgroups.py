"""Metrics with bootstrap intervals per subgroup (sex, age band, site...), flagged when too small.

Point estimates use the same vectorised code as the intervals (identical to
``score_predictions`` on non-degenerate data), so a tiny subgroup never raises: undefined
metrics are NaN and the ``warning`` column says why the numbers should not be trusted.
"""

from __future__ import annotations

import math
import numbers
import re

import numpy as np
import pandas as pd

from medml_cli.evaluation.bootstrap import (
    _metrics_for_weights,
    as_threshold,
    bootstrap_distribution,
    metric_names,
    percentile_interval,
)

MISSING_LABEL = "missing"
_MISSING = object()  # sentinel, so a real subgroup called "missing" is not confused


def age_bands(age: pd.Series, edges=(0, 45, 55, 65, 200)) -> pd.Series:
    """Ordered categorical age bands, e.g. "<45", "45-54", "55-64", ">=65" (left-closed).

    Ages outside ``[edges[0], edges[-1])`` or missing become NaN.
    """
    edges = [float(e) for e in edges]
    if len(edges) < 3 or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        raise ValueError(f"edges must be at least 3 increasing numbers; got {edges}")
    whole = all(e.is_integer() for e in edges)

    def fmt(x: float) -> str:
        return f"{x:g}"

    labels = [f"<{fmt(edges[1])}"]
    for lo, hi in zip(edges[1:-2], edges[2:-1], strict=True):
        # Whole-year edges read naturally as inclusive ranges ("45-54").
        labels.append(f"{fmt(lo)}-{fmt(hi - 1)}" if whole else f"{fmt(lo)}-<{fmt(hi)}")
    labels.append(f">={fmt(edges[-2])}")
    age = pd.Series(age)
    bands = pd.cut(pd.to_numeric(age, errors="coerce"), bins=edges, right=False, labels=labels)
    return pd.Series(bands, index=age.index, name="age_band")


# The first number in a label, with the comparison sign (if any) just before it.
_FIRST_NUMBER = re.compile(r"(<=|>=|≤|≥|<|>)?\s*(-?\d+(?:\.\d+)?)")
_SIGN_RANK = {"<": -2, "<=": -1, "≤": -1, None: 0, ">": 1, ">=": 2, "≥": 2}


def natural_key(value: object) -> tuple:
    """Sort key putting subgroup levels in their natural order.

    Numbers (not booleans) sort numerically, before any text. Text sorts by the text before
    its first number, then that number, then the comparison sign in front of it ("<40" before
    "40-49", "60-69" before ">60"), then the whole label: so ``<40, 40-49, 50-59, >=60`` and
    ``stage 2, stage 10`` come out in reading order. Labels without a number sort by text.
    """
    if isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
        number = float(value)
        return (0, "", number if not math.isnan(number) else math.inf, 0, "")
    text = str(value)
    match = _FIRST_NUMBER.search(text)
    if match is None:
        return (1, text.casefold(), math.inf, 0, text)
    prefix = text[:match.start()].casefold()
    return (1, prefix, float(match.group(2)), _SIGN_RANK[match.group(1)], text)


def subgroup_values(frame: pd.DataFrame, name: str) -> pd.Series | None:
    """The values of subgroup variable ``name`` for each row of ``frame`` (``age_band`` is
    derived from ``age`` as an ordered categorical); None when the frame lacks it."""
    if name == "age_band" and "age_band" not in frame.columns and "age" in frame.columns:
        return age_bands(frame["age"])  # ordered categorical: bands in age order
    if name in frame.columns:
        return frame[name]
    return None


def subgroup_order(sub: pd.Series) -> list:
    """Category order for categoricals (e.g. :func:`age_bands`), natural order otherwise
    (:func:`natural_key`); missing last."""
    if isinstance(sub.dtype, pd.CategoricalDtype):
        present = set(sub.dropna().unique())
        values = [c for c in sub.cat.categories if c in present]
    else:
        values = sorted(sub.dropna().unique(), key=natural_key)
    if sub.isna().any():
        values.append(_MISSING)
    return values


def small_group_warning(n: int, events: int | None, min_n: int, min_events: int,
                        what: str = "events") -> str:
    """Why a group's figures should not be trusted ("" if nothing): fewer than ``min_n``
    rows, or fewer than ``min_events`` of its rarest outcome (``what``: events, non-events,
    rows of a class)."""
    notes = []
    if n < min_n:
        notes.append(f"too small to say anything: n={n} < {min_n}")
    if events is not None and events < min_events:
        notes.append(f"only {events} {what} (< {min_events})")
    return "; ".join(notes)


def subgroup_metrics(problem: str, y_true, score, subgroups: pd.Series, *,
                     threshold: float | np.ndarray,
                     n_resamples: int = 1000, seed: int = 0, min_n: int = 30,
                     min_events: int = 10, groups=None,
                     confidence: float = 0.95) -> pd.DataFrame:
    """One row per subgroup value: n, events, [patients], each metric with _low/_high, warning.

    Rows whose subgroup is missing form a ``"missing"`` subgroup. With ``groups`` (patient
    ids) intervals come from a patient-level bootstrap within the subgroup. ``threshold`` is
    one cut-off or one per row (e.g. each row's fold threshold, so a subgroup's rows are
    classified exactly as in the pooled metrics and predictions.csv). Subgroups are listed in
    category order for categoricals, in natural order (:func:`natural_key`) otherwise.
    """
    y = np.asarray(y_true)
    s = np.asarray(score, dtype=float)
    sub = pd.Series(subgroups).reset_index(drop=True)
    if len(sub) != len(y) or len(s) != len(y):
        raise ValueError(f"y_true ({len(y)}), score ({len(s)}) and subgroups ({len(sub)}) "
                         "must have the same length")
    g = None if groups is None else np.asarray(groups)
    if g is not None and len(g) != len(y):
        raise ValueError(f"groups has {len(g)} entries but y_true has {len(y)}")
    classify = problem != "regression"
    names = metric_names(problem)
    cut = as_threshold(threshold, len(y)) if classify else threshold

    rows = []
    for value in subgroup_order(sub):
        mask = (sub.isna() if value is _MISSING else sub == value).to_numpy()
        y_sub, s_sub = y[mask], s[mask]
        t_sub = cut[mask] if isinstance(cut, np.ndarray) else cut
        g_sub = None if g is None else g[mask]
        n = int(mask.sum())
        events = int(np.sum(y_sub.astype(int) == 1)) if classify else None
        row: dict = {"subgroup": MISSING_LABEL if value is _MISSING else value, "n": n}
        if classify:
            row["events"] = events
        if g_sub is not None:
            row["patients"] = int(len(np.unique(g_sub)))
        point = _metrics_for_weights(problem, y_sub, s_sub, np.ones((1, n)), t_sub)
        draws = bootstrap_distribution(problem, y_sub, s_sub, threshold=t_sub,
                                       groups=g_sub, n_resamples=n_resamples, seed=seed)
        for name in names:
            low, high = percentile_interval(draws[name], confidence)
            row[name] = float(point[name][0])
            row[f"{name}_low"] = low
            row[f"{name}_high"] = high
        row["warning"] = small_group_warning(n, events, min_n, min_events)
        rows.append(row)
    return pd.DataFrame(rows)
