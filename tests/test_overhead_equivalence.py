"""The per-run overhead work (issue 14, part 3) changed how things are computed, not what:
each vectorised or single-pass function is checked here against the per-row (or two-pass)
code it replaced, on tricky inputs. Speed is measured in benchmarks/run.py, never here."""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medml_cli.data.base import binary_target, label_key, make_schema, multiclass_target
from medml_cli.runs.environment import PACKAGES, package_versions
from medml_cli.workflows.run_model import RANGE_MARGIN, row_warnings


def _old_encoding(values: pd.Series, code_of) -> pd.Series:
    """The per-row encoding binary_target and multiclass_target used before."""
    return values.astype(object).map(
        lambda v: -1 if v is None or (not isinstance(v, str) and pd.isna(v))
        else code_of(label_key(v))).astype(int)


MIXED = pd.Series([1, 1.0, "1", " 1", True, "true", 0, "0.0", False, " 0 ", None, np.nan,
                   pd.NA, np.float64(1.0), np.int64(0), "1.00", -0.0], name="outcome",
                  index=range(100, 117))


def test_binary_target_matches_per_row_encoding():
    encoded, labels = binary_target(MIXED, "outcome", "test", None)
    expected = _old_encoding(MIXED, lambda key: int(key == "1"))
    pd.testing.assert_series_equal(encoded, expected)
    assert labels == ["0", "1"]
    assert encoded.dtype == np.int64


def test_binary_target_with_positive_class_and_text_labels():
    values = pd.Series(["yes", "no", " yes", None, "maybe", "no", np.nan, "YES"] * 3)
    encoded, _ = binary_target(values, "y", "test", "yes")
    pd.testing.assert_series_equal(encoded, _old_encoding(values, lambda k: int(k == "yes")))


def test_multiclass_target_matches_per_row_encoding():
    values = pd.Series([0, 1.0, "2", " 3", 4, None, "4.0", np.nan, 2, "1", 0.0, 10, "10"],
                       name="num")
    encoded, labels = multiclass_target(values, "num", "test")
    order = {label_key(c): i for i, c in enumerate(labels)}
    pd.testing.assert_series_equal(encoded, _old_encoding(values, order.__getitem__))
    assert [label_key(c) for c in labels] == ["0", "1", "2", "3", "4", "10"]


def _old_row_warnings(X: pd.DataFrame, schema) -> pd.Series:
    """row_warnings as it was: a list per row."""
    notes: list[list[str]] = [[] for _ in range(len(X))]
    for column in schema.columns:
        name = column.name
        values = X[name]
        if column.kind == "categorical" and name in schema.categories:
            unseen = values.notna() & ~values.astype(object).isin(schema.categories[name])
            for i in np.flatnonzero(unseen.to_numpy()):
                notes[i].append(f"unseen category: {name}={values.iloc[i]}")
        elif column.kind == "numeric" and name in schema.ranges:
            low, high = schema.ranges[name]
            margin = RANGE_MARGIN * ((high - low) or max(abs(high), 1.0))
            numbers = values.to_numpy(dtype=float)
            with np.errstate(invalid="ignore"):
                outside = (numbers < low - margin) | (numbers > high + margin)
            for i in np.flatnonzero(outside):
                notes[i].append(f"{name}={numbers[i]:g} far outside the training range "
                                f"{low:g}-{high:g}")
    n_features = len(schema.columns)
    missing = X[schema.feature_names].isna().sum(axis=1).to_numpy()
    for i in np.flatnonzero(missing * 2 > n_features):
        notes[i].append(f"{missing[i]} of {n_features} features missing")
    return pd.Series(["; ".join(n) for n in notes], index=X.index, dtype=object)


def test_row_warnings_match_per_row_version_on_tricky_rows():
    train = pd.DataFrame({"age": [30.0, 50.0, 70.0], "chol": [200.0, 250.0, 300.0],
                          "cp": ["1.0", "2.0", "3.0"], "flat": [5.0, 5.0, 5.0]})
    schema = make_schema(train, ["cp"], target="y", id_column=None, group_column=None,
                         classes=["0", "1"]).with_training_stats(train)
    X = pd.DataFrame({
        # NaN, far out on both sides, just inside the margin, -inf
        "age": [np.nan, 400.0, -100.0, 109.0, 50.0, np.nan, -np.inf, 45.0],
        "chol": [np.nan, 1e9, 250.0, 250.0, np.nan, np.nan, 220.0, 260.0],
        # unseen categories, numbers spelt as text, missing
        "cp": [np.nan, "9", "2.0", "x", "1", np.nan, "3.0", " 2.0"],
        # a constant training column: margin from its value
        "flat": [np.nan, 5.0, 11.0, 9.9, 5.0, np.nan, 5.0, -0.5],
    }, index=[10, 11, 12, 13, 14, 15, 16, 17]).astype({"cp": object})
    new, old = row_warnings(X, schema), _old_row_warnings(X, schema)
    pd.testing.assert_series_equal(new, old)
    assert (new != "").sum() >= 6  # the tricky rows are really flagged
    assert "4 of 4 features missing" in new.loc[10]
    assert new.loc[11].startswith("age=400 far outside")


def test_row_warnings_all_clean_and_empty():
    train = pd.DataFrame({"a": [0.0, 1.0], "c": ["u", "v"]})
    schema = make_schema(train, ["c"], target="y", id_column=None, group_column=None,
                         classes=["0", "1"]).with_training_stats(train)
    clean = pd.DataFrame({"a": [0.5, 0.2], "c": ["u", "v"]})
    pd.testing.assert_series_equal(row_warnings(clean, schema), _old_row_warnings(clean, schema))
    empty = clean.iloc[:0]
    pd.testing.assert_series_equal(row_warnings(empty, schema), _old_row_warnings(empty, schema))


def test_package_versions_match_importlib_metadata():
    expected = {}
    for name in PACKAGES:
        try:
            expected[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            expected[name] = None
    assert package_versions() == expected


def test_package_versions_looks_up_an_imported_package_once(monkeypatch):
    """Imported packages are read once per process (the code that runs cannot change); one
    not imported yet is read every time, so an install between runs is seen."""
    import sys

    import sklearn  # noqa: F401 - imported, as in every run

    from medml_cli.runs import environment

    monkeypatch.setattr(environment, "_LOADED_VERSIONS", {})
    monkeypatch.delitem(sys.modules, "SimpleITK", raising=False)
    asked: list[str] = []
    real = environment.package_version
    monkeypatch.setattr(environment, "package_version",
                        lambda name: asked.append(name) or real(name))
    first = package_versions(("scikit-learn", "numpy", "simpleitk"))
    second = package_versions(("scikit-learn", "numpy", "simpleitk"))
    assert first == second
    assert first["scikit-learn"] == metadata.version("scikit-learn")
    assert asked == ["scikit-learn", "numpy", "simpleitk", "simpleitk"]


def test_single_pass_load_refuses_untrusted_types_with_the_same_message(tmp_path):
    import os

    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from medml_cli.errors import ModelLoadError
    from medml_cli.runs.artifacts import load_sklearn_model, save_sklearn_model

    folder = tmp_path / "model"
    save_sklearn_model(Pipeline([("f", FunctionTransformer(func=os.system))]), folder)
    asked = sio.get_untrusted_types(file=folder / "model.skops")
    with pytest.raises(ModelLoadError) as caught:
        load_sklearn_model(folder)
    message = str(caught.value)
    assert "outside medml's trusted list: posix.system. The file was not loaded." in message
    assert "posix.system" in asked


def test_single_pass_load_builds_the_same_model(tmp_path):
    from sklearn.linear_model import LogisticRegression

    from medml_cli.runs.artifacts import load_sklearn_model, save_sklearn_model

    X = np.random.default_rng(0).normal(size=(40, 3))
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    save_sklearn_model(model, tmp_path / "model")
    loaded = load_sklearn_model(tmp_path / "model")
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


@settings(max_examples=300, deadline=None)
@given(names=st.lists(st.sampled_from(["a", "a.1", "a.2", "b", " a", "", " ", "x.y", "1",
                                       "Unnamed: 0", "c.10"]), min_size=2, max_size=6))
def test_a_header_pandas_renamed_is_always_read_again(names):
    """read_table reads the raw header again only when pandas may have renamed a cell; every
    header pandas did rename (a repeated or blank name) must be among those."""
    import csv
    import io

    from medml_cli.data.formats.table import _maybe_renamed

    text = ",".join(names) + "\n" + ",".join("1" for _ in names) + "\n"
    frame = pd.read_csv(io.StringIO(text), skipinitialspace=True, index_col=False)
    raw = next(csv.reader(io.StringIO(text), skipinitialspace=True))
    if [str(c) for c in frame.columns] != raw:
        assert _maybe_renamed(frame.columns), (names, list(frame.columns))


_EDGE_VALUES = st.sampled_from([0.0, -0.0, np.nan, 1.5, -2.0, 3e38, -1e-300, 7.0])


@settings(max_examples=300, deadline=None)
@given(cells=st.lists(st.lists(_EDGE_VALUES, min_size=3, max_size=3), min_size=1,
                      max_size=8))
def test_training_ranges_are_pandas_min_and_max(cells):
    """with_training_stats takes every column's range at once; each is the column's own
    min and max as pandas gives them (signed zeros kept), and a column with no values has
    none."""
    import math

    from medml_cli.schemas import ColumnSpec, FeatureSchema

    X = pd.DataFrame(cells, columns=["a", "b", "c"], dtype=float)
    schema = FeatureSchema(columns=[ColumnSpec(name=n, kind="numeric") for n in X.columns],
                           target="y", classes=[])
    expected = {n: [float(X[n].min()), float(X[n].max())] for n in X.columns
                if math.isfinite(X[n].min())}
    ranges = schema.with_training_stats(X).ranges
    assert list(ranges) == list(expected)
    for name, (low, high) in expected.items():
        assert ranges[name] == [low, high]
        assert [math.copysign(1, v) for v in ranges[name]] == \
            [math.copysign(1, low), math.copysign(1, high)]


@settings(max_examples=200, deadline=None)
@given(cells=st.lists(st.tuples(st.integers(-5, 5), _EDGE_VALUES), min_size=1, max_size=8))
def test_numeric_features_in_one_pass_match_column_by_column(cells):
    """frame_to_dataset's one-pass conversion of int and float features gives the frame
    the column-by-column conversion gives, laid out the same way."""
    from medml_cli.data.base import coerce_numeric_column
    from medml_cli.data.sources.table_file import _numeric_features

    frame = pd.DataFrame(cells, columns=["count", "value"])
    fast = _numeric_features(frame, ["count", "value"])
    if (frame["value"].abs() > np.finfo(np.float32).max).any():
        assert fast is None  # left to coerce_numeric_column, which names the cell
        return
    slow = pd.DataFrame({n: coerce_numeric_column(frame, n, "test") for n in frame.columns})
    pd.testing.assert_frame_equal(fast, slow)
    assert np.asarray(fast).flags.f_contiguous == np.asarray(slow).flags.f_contiguous


def _detect_separator_trying_all(text: str, prefer: str) -> str:
    """detect_separator as it was: every candidate split first, then the same rules."""
    from medml_cli.data.formats.table import SEPARATORS, _fit, _split_rows

    candidates = [prefer, *(s for s in SEPARATORS if s != prefer)]
    fits = {s: _fit(_split_rows(text, s)) for s in candidates}
    header = _split_rows(text.split("\n", 1)[0], prefer)
    names = header[0] if header else []
    if fits[prefer]:
        rivals = [s for s in candidates[1:] if fits[s] > fits[prefer]
                  and any(s in name for name in names)]
    else:
        rivals = [s for s in candidates[1:] if fits[s]]
        if len(rivals) == 1:
            return rivals[0]
    if not rivals:
        return prefer
    raise ValueError(str(sorted((s, fits[s]) for s in candidates if fits[s])))


@settings(max_examples=1500, deadline=None)
@given(text=st.text(st.sampled_from(list('ab1 ,;\t|"\n.')), max_size=60),
       prefer=st.sampled_from([",", ";", "\t", "|"]))
def test_separator_detection_splits_only_what_it_must(text, prefer):
    """detect_separator tries another separator only when it can matter; its answer (or
    refusal) is the one of trying every separator."""
    from medml_cli.data.formats.table import detect_separator
    from medml_cli.errors import DataError

    try:
        expected = _detect_separator_trying_all(text, prefer)
    except ValueError:
        with pytest.raises(DataError, match="cannot tell the separator"):
            detect_separator(text, prefer)
    else:
        assert detect_separator(text, prefer) == expected
