"""csvio.csv_text writes exactly the bytes pandas' to_csv(index=False) writes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from medml_cli.csvio import csv_text, write_csv

EXTREMES = [0.0, -0.0, 1e-5, 1e-4, 0.1, 0.5, 1 / 3, 2 / 3, 1e15, 1e16, 1e16 + 2, 1e22,
            1.7976931348623157e308, 5e-324, 2.2250738585072014e-308, -1.5, 123456789.125,
            float("nan"), float("inf"), float("-inf"), 0.30000000000000004, 9007199254740993.0]


def test_extreme_floats_and_missing_values_match_pandas():
    frame = pd.DataFrame({"id": [f"p{i}" for i in range(len(EXTREMES))],
                          "score": EXTREMES, "fold": np.arange(len(EXTREMES)),
                          "threshold": np.repeat(0.5, len(EXTREMES))})
    assert csv_text(frame) == frame.to_csv(index=False)


def test_signed_zeros_in_a_repeated_value_column_keep_their_signs():
    """0.0 == -0.0, so formatting each distinct *value* once would write one of them for
    both (found by the hypothesis test below)."""
    frame = pd.DataFrame({"x": [-0.0, 0.0] * 10, "n": np.arange(20)})
    assert csv_text(frame) == frame.to_csv(index=False)


def test_a_repeated_value_column_with_a_missing_cell_matches_pandas():
    values = np.tile([0.25, 0.5, np.nan, 0.75], 50)
    frame = pd.DataFrame({"a": values, "b": np.arange(200)})
    assert csv_text(frame) == frame.to_csv(index=False)


@settings(max_examples=500, deadline=None)
@given(floats=hnp.arrays(np.float64, st.integers(1, 40),
                         elements=st.floats(allow_nan=True, allow_infinity=True)),
       repeat=st.booleans())
def test_any_float64_column_matches_pandas(floats, repeat):
    if repeat:  # the path that formats each distinct value once
        floats = np.tile(floats[:2], 10)
    frame = pd.DataFrame({"x": floats, "n": np.arange(len(floats), dtype=np.int64)})
    assert csv_text(frame) == frame.to_csv(index=False)


@settings(max_examples=300, deadline=None)
@given(ints=hnp.arrays(np.int64, st.integers(1, 40)),
       low=st.integers(-(2 ** 63), 2 ** 63 - 1024), narrow=st.booleans())
def test_any_int64_column_matches_pandas(ints, low, narrow):
    """Both ways of writing integers: each distinct value once when they span a short range
    (a fold, a class), one by one otherwise, the extremes of int64 included."""
    if narrow:
        ints = low + np.abs(ints % 1000)
    frame = pd.DataFrame({"n": ints, "x": np.zeros(len(ints))})
    assert csv_text(frame) == frame.to_csv(index=False)


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(max_size=6), min_size=1, max_size=20),
       numbers=st.integers(-(2 ** 62), 2 ** 62))
def test_any_text_column_matches_pandas(texts, numbers):
    """Text with separators, quotes, line breaks or empty cells goes to pandas itself."""
    frame = pd.DataFrame({"id": texts, "n": [numbers] * len(texts)})
    assert csv_text(frame) == frame.to_csv(index=False)


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"a": [1.5, None], "b": ["x", None]}),              # a missing text cell
    pd.DataFrame({"a": [True, False], "b": [1, 2]}),                 # booleans
    pd.DataFrame({"a": pd.array([1, None], dtype="Int64"), "b": [1.0, 2.0]}),  # nullable
    pd.DataFrame({"a": np.array([0.1, 0.2], dtype=np.float32), "b": [1, 2]}),  # float32
    pd.DataFrame({"a": pd.Categorical(["x", "y"]), "b": [1, 2]}),
    pd.DataFrame({"a": ["x,y", 'say "hi"'], "b": [1, 2]}),           # quoting
    pd.DataFrame({"a": [1, 2], "b": [object(), "x"]}).astype({"b": str}),
    pd.DataFrame({"only": [0.1, 0.2]}),                              # one column
    pd.DataFrame({"a": [], "b": []}),                                # no rows
    pd.DataFrame({"a,b": [1, 2], "c": [3, 4]}),                      # a name to quote
    pd.DataFrame([[1, 2]], columns=["a", "a"]),                      # repeated names
    pd.DataFrame({1: [1.0], 2: [2.0]}),                              # names not text
])
def test_what_the_fast_path_does_not_take_is_written_by_pandas(frame):
    assert csv_text(frame) == frame.to_csv(index=False)


def test_empty_text_cells_and_names_match_pandas():
    """medml predict's `warnings` column is empty for most rows."""
    frame = pd.DataFrame({"id": ["1", "2", "3"], "score": [0.1, 0.2, 0.3],
                          "warnings": ["", "unusual age", ""], "": ["", "", ""]})
    assert csv_text(frame) == frame.to_csv(index=False)
    assert csv_text(frame[["warnings", ""]]) == frame[["warnings", ""]].to_csv(index=False)


def test_write_csv_writes_the_same_file_as_pandas(tmp_path):
    frame = pd.DataFrame({"id": ["1", "2"], "score": [0.1, 1 / 3], "fold": [0, 1]})
    write_csv(frame, tmp_path / "ours.csv")
    frame.to_csv(tmp_path / "pandas.csv", index=False)
    assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()
