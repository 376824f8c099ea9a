"""Reading time-to-event outcomes from users' tables, and the built-in survival datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medml_cli.config.loader import validate_config_data
from medml_cli.errors import ConfigError, DataError
from medml_cli.workflows.train import load_dataset

sksurv = pytest.importorskip("sksurv", reason="scikit-survival is a medml dependency")


def _write(tmp_path: Path, frame: pd.DataFrame, name: str = "cohort.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _cohort(n: int = 60, seed: int = 0, event_codes=(0, 1)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(60, 10, n).round()
    time = rng.exponential(300 * np.exp(-(age - 60) / 20)).round() + 1
    event = rng.random(n) < 0.6
    return pd.DataFrame({"patient": [f"p{i}" for i in range(n)], "age": age,
                         "stage": rng.choice(["I", "II", "III"], n), "futime": time,
                         "status": np.where(event, event_codes[1], event_codes[0])})


def _config(path: Path, **data) -> object:
    return validate_config_data({
        "task": "tabular-survival",
        "data": {"type": "csv", "path": str(path), "time": "futime", "event": "status",
                 "id_column": "patient", **data},
    })


@pytest.mark.parametrize("codes, event_value", [((0, 1), 1), ((1, 2), 2),
                                                (("alive", "dead"), "dead"),
                                                (("FALSE", "TRUE"), "true")])
def test_event_coding_variants(tmp_path, codes, event_value):
    frame = _cohort(event_codes=codes)
    dataset = load_dataset(_config(_write(tmp_path, frame), event_value=event_value))
    y = dataset.y.to_numpy()
    assert y.shape == (60, 2)
    expected = (frame["status"].astype(str).str.lower() == str(codes[1]).lower()).to_numpy()
    assert np.array_equal(y[:, 1], expected.astype(float))
    assert np.array_equal(y[:, 0], frame["futime"].to_numpy(dtype=float))
    assert set(dataset.X.columns) == {"age", "stage"}  # time and event are not features
    assert dataset.schema.event_column == "status"


def test_semicolon_excel_export_with_decimal_commas(tmp_path):
    frame = _cohort()
    frame["futime"] = frame["futime"] + 0.5
    path = tmp_path / "export.csv"
    frame.to_csv(path, index=False, sep=";", decimal=",")
    dataset = load_dataset(_config(path, decimal=","))
    assert dataset.y["time"].iloc[0] == frame["futime"].iloc[0]


@pytest.mark.parametrize("change, message", [
    (lambda f: f.assign(futime=f["futime"].where(f.index != 3, 0)), "not positive"),
    (lambda f: f.assign(futime=f["futime"].where(f.index != 5, -2)), "not positive"),
    (lambda f: f.assign(futime=f["futime"].astype(object).where(f.index != 4, None)),
     "missing"),
    (lambda f: f.assign(status=0), "no patient had the event"),
    (lambda f: f.assign(status=1), "nobody is censored"),
    (lambda f: f.assign(futime=f["futime"].astype(object).where(f.index != 2, "soon")),
     "not a number"),
])
def test_bad_outcomes_are_clear_errors(tmp_path, change, message):
    path = _write(tmp_path, change(_cohort()))
    with pytest.raises(DataError, match=message):
        load_dataset(_config(path))


def test_event_value_absent_names_the_values_seen(tmp_path):
    path = _write(tmp_path, _cohort(event_codes=("alive", "dead")))
    with pytest.raises(DataError, match=r"event_value.*'died'.*never occurs.*'alive'"):
        load_dataset(_config(path, event_value="died"))


def test_missing_outcomes_can_be_dropped_on_request(tmp_path):
    frame = _cohort()
    frame.loc[[1, 7], "futime"] = np.nan
    dataset = load_dataset(_config(_write(tmp_path, frame), drop_missing_target=True))
    assert dataset.n_samples == 58


@pytest.mark.parametrize("data, message", [
    ({"target": "status"}, "data.target: survival tasks take"),
    ({"event": None}, "needs both"),
])
def test_config_errors(tmp_path, data, message):
    path = _write(tmp_path, _cohort())
    with pytest.raises(ConfigError, match=message):
        _config(path, **data)


def test_time_and_event_refused_for_other_tasks(tmp_path):
    path = _write(tmp_path, _cohort())
    with pytest.raises(ConfigError, match="only for survival"):
        validate_config_data({"task": "tabular-regression", "data": {
            "type": "csv", "path": str(path), "target": "age", "time": "futime"}})
    with pytest.raises(ConfigError, match="evaluation.horizons: only for survival"):
        validate_config_data({"task": "tabular-regression", "evaluation": {"horizons": [30]},
                              "data": {"type": "csv", "path": str(path), "target": "age"}})


def test_horizons_are_checked(tmp_path):
    path = _write(tmp_path, _cohort())
    assert _config(path, time_unit="days").evaluation.horizons is None  # default: quartiles
    with pytest.raises(ConfigError, match="positive"):
        validate_config_data({"task": "tabular-survival", "evaluation": {"horizons": [-1]},
                              "data": {"type": "csv", "path": str(path), "time": "futime",
                                       "event": "status"}})


@pytest.mark.parametrize("source, rows, events, time, event", [
    ("veterans-lung-cancer", 137, 128, "survival_days", "dead"),
    ("gbsg2", 686, 299, "recurrence_free_days", "recurrence"),
    ("whas500", 500, 215, "follow_up_days", "died"),
])
def test_builtin_datasets_match_scikit_survival(source, rows, events, time, event):
    task = {"veterans-lung-cancer": "lung-cancer-survival", "gbsg2": "breast-cancer-survival",
            "whas500": "heart-attack-survival"}[source]
    dataset = load_dataset(validate_config_data({"task": task, "data": {"type": source}}))
    y = dataset.y.to_numpy()
    assert y.shape == (rows, 2) and int(y[:, 1].sum()) == events
    assert dataset.schema.target == time and dataset.schema.event_column == event
    assert dataset.schema.time_unit == "days"
    assert dataset.provenance.citation and "scikit-survival" in dataset.provenance.source
    assert list(dataset.provenance.files.values())[0]  # sha256 of the shipped ARFF file


def test_builtin_survival_data_refuse_other_tasks():
    with pytest.raises((ConfigError, DataError), match="survival"):
        load_dataset(validate_config_data({"task": "tabular-classification",
                                           "data": {"type": "gbsg2"}}))


def test_default_horizons_and_grid():
    from medml_cli.problems.survival import default_horizons, time_grid

    rng = np.random.default_rng(0)
    time = rng.exponential(700, 400).round() + 1
    event = (rng.random(400) < 0.7).astype(float)
    horizons = default_horizons(time, event)
    raw = np.percentile(time[event == 1], [25, 50, 75])
    assert len(horizons) == 3
    assert all(abs(h - r) / r < 0.06 for h, r in zip(horizons, raw, strict=True))
    assert all(len(f"{h:g}".replace(".", "").strip("0")) <= 2 for h in horizons)
    grid = time_grid(time, event, horizons)
    assert set(horizons) <= set(grid) and grid == sorted(grid) and grid[-1] == horizons[-1]
    single = time_grid(time, event, [float(np.percentile(time[event == 1], 5))])
    assert len(single) >= 2  # the integrated Brier score needs two times
