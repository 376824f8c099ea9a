"""Fuzzing: config loading, --set parsing and the table loader either succeed or raise the
project's own error — never any other exception."""

from __future__ import annotations

import string

import numpy as np
import pandas as pd
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medml_cli.config.loader import parse_yaml_text, validate_config_data
from medml_cli.config.overrides import apply_overrides, parse_override
from medml_cli.data.sources.table_file import TableFileData, frame_to_dataset
from medml_cli.errors import ConfigError, DataError
from medml_cli.schemas import Provenance

FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
keys = st.one_of(st.sampled_from(["task", "data", "model", "split", "evaluation", "seed", "name",
                                  "type", "sites", "n_estimators", "C", "path", "target",
                                  "method", "n_splits", "test_size", "threshold", "bootstrap",
                                  "subgroups", "dim", "size"]), st.text(max_size=8))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)), max_leaves=12)
configs = st.fixed_dictionaries(
    {"task": st.sampled_from(["heart-disease", "diabetes", "lung-ct", "tabular-classification",
                              "nope", ""])},
    optional={"model": st.one_of(values, st.fixed_dictionaries(
        {"type": st.sampled_from(["svm", "random-forest", "ridge", "cnn3d", "x"])},
        optional={k: scalars for k in ("C", "n_estimators", "alpha", "epochs", "filters")})),
        "data": values, "split": values, "evaluation": values, "seed": scalars, "name": scalars})


@FAST
@given(st.text(max_size=300))
def test_yaml_loader_on_arbitrary_text(text):
    try:
        data, lines = parse_yaml_text(text, "fuzz.yaml")
    except ConfigError:
        return
    assert isinstance(data, dict) and isinstance(lines, dict)


@FAST
@given(values)
def test_yaml_loader_on_arbitrary_documents(document):
    try:
        text = yaml.safe_dump({"task": "heart-disease", "extra": document})
    except (yaml.YAMLError, ValueError):
        return
    try:
        parse_yaml_text(text, "fuzz.yaml")
    except ConfigError:
        pass


@FAST
@given(configs)
def test_validation_on_arbitrary_configs(data):
    try:
        cfg = validate_config_data(data, source="fuzz.yaml")
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) for p in exc.problems)
        return
    assert cfg.task in {"heart-disease", "diabetes", "lung-ct", "tabular-classification"}


@FAST
@given(st.text(alphabet=string.printable, max_size=60), st.lists(
    st.text(alphabet=string.printable, max_size=40), max_size=3))
def test_set_parser_on_arbitrary_strings(text, more):
    try:
        parts, _ = parse_override(text)
        assert parts and all(parts)
        data, applied = apply_overrides({"task": "diabetes", "model": {"type": "ridge"}},
                                        [text, *more])
        validate_config_data(data, source="fuzz", overrides=applied)
    except ConfigError:
        pass


cells = st.one_of(st.none(), st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True,
                                                          width=32),
                  st.sampled_from(["a", "b", "?", "", "1.5", "x y", "inf"]))


@FAST
@given(st.integers(0, 12).flatmap(lambda n: st.tuples(
    st.lists(cells, min_size=n, max_size=n), st.lists(cells, min_size=n, max_size=n),
    st.lists(st.sampled_from([0, 1, None, "yes", 2]), min_size=n, max_size=n))),
    st.sampled_from(["binary-classification", "regression"]))
def test_table_loader_on_arbitrary_small_frames(columns, problem):
    a, b, y = columns
    frame = pd.DataFrame({"a": pd.Series(a, dtype=object), "b": pd.Series(b, dtype=object),
                          "y": pd.Series(y, dtype=object)})
    cfg = TableFileData(type="csv", path="fuzz.csv", target="y")
    try:
        dataset = frame_to_dataset(frame, cfg, problem=problem, source="fuzz.csv",
                                   provenance=Provenance(source="fuzz"))
    except DataError as exc:
        assert "fuzz.csv" in str(exc)
        return
    assert dataset.n_samples == len(dataset.X) > 0
    numeric = dataset.schema.names_of("numeric")
    if numeric:
        assert not np.isinf(dataset.X[numeric].to_numpy(dtype=float)).any()
