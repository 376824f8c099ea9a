"""Writing a table as CSV: exactly the bytes of ``frame.to_csv(index=False)``, faster.

predictions.csv holds a row per patient with full-precision scores; at 10,000 rows pandas
spends most of its time turning floats into text through numpy (``astype(str)``) and
passing every cell through its writer. Python's own ``repr`` gives the same shortest
round-trip text for a float64 in half the time, and columns such as a fold's threshold or
the baseline's score repeat a handful of values, so each distinct value is formatted once.

The fast path takes only what it can write exactly as pandas does: two or more columns of
float64, int64 or plain text without separators, quotes or line breaks (with text names
of the same kind; an empty cell is written as nothing, as pandas does). Anything else
(categoricals, booleans, nullable types, float32, text that needs quoting, missing text) is
written by pandas itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

_NEEDS_QUOTES = (",", '"', "\n", "\r")


def _all_plain_text(cells: list) -> bool:
    """Whether pandas would write every cell as is: text with nothing the CSV must quote
    (checked on one joined string: one pass in C, not a Python call per cell). An empty
    cell is written as nothing, as pandas does in a row of two or more cells."""
    if not set(map(type, cells)) <= {str}:  # exactly str, as all(type(c) is str ...)
        return False
    joined = "\x1f".join(cells)
    return not any(c in joined for c in _NEEDS_QUOTES)


def _float_cells(values: np.ndarray) -> list[str]:
    """float64 as pandas writes it: shortest round-trip text, NaN as an empty cell."""
    # distinct bit patterns, not values: 0.0 == -0.0, but pandas writes "0.0" and "-0.0"
    bits, where = np.unique(np.ascontiguousarray(values).view(np.int64), return_inverse=True)
    if len(bits) * 4 < len(values):  # format each repeated value once
        distinct = bits.view(np.float64).tolist()
        texts = np.array(list(map(repr, distinct)), dtype=object)[where.ravel()].tolist()
    else:
        texts = list(map(repr, values.tolist()))
    missing = np.isnan(values)
    if missing.any():
        for i in np.flatnonzero(missing).tolist():
            texts[i] = ""
    return texts


def _int_cells(values: np.ndarray) -> list[str]:
    """int64 as text; a column of few distinct values (a fold, a class) formats each once."""
    if len(values):
        low, high = int(values.min()), int(values.max())
        if high - low < 1024:
            texts = np.array(list(map(str, range(low, high + 1))), dtype=object)
            return texts[values - low].tolist()
    return list(map(str, values.tolist()))


def _column_cells(values: pd.Series) -> list[str] | None:
    """Every cell of one column as text, or None when pandas must write this column."""
    dtype = values.dtype
    if dtype == np.float64:
        return _float_cells(values.to_numpy())
    if dtype == np.int64:
        return _int_cells(values.to_numpy())
    if dtype.kind == "O":
        cells = values.to_numpy().tolist()
        return cells if _all_plain_text(cells) else None
    return None


def csv_text(frame: pd.DataFrame) -> str:
    """``frame.to_csv(index=False)``, byte for byte."""
    names = list(frame.columns)
    if len(names) < 2 or frame.empty or not _all_plain_text(names) \
            or not frame.columns.is_unique:
        return frame.to_csv(index=False)
    columns = []
    for name in names:
        cells = _column_cells(frame[name])
        if cells is None:
            return frame.to_csv(index=False)
        columns.append(cells)
    end = os.linesep  # pandas' default line terminator
    return end.join([",".join(names), *map(",".join, zip(*columns, strict=True))]) + end


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` (no index) to ``path``: what ``frame.to_csv(path, index=False)`` writes."""
    with open(path, "w", encoding="utf-8", newline="") as handle:  # newline="": as pandas
        handle.write(csv_text(frame))
