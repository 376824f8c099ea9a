"""Data-reading safety: non-regular files, the positive class, ids as text, identifier-like
and half-numeric columns. Every case goes through the CLI (``run_cli``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medml_cli.data.base import binary_target, check_known_labels, label_key, training_labels
from medml_cli.data.formats.paths import sha256_file
from medml_cli.errors import DataError
from medml_cli.schemas import ColumnSpec, FeatureSchema
from tests.conftest import read_metrics, run_cli
from tests.test_bad_inputs import assert_clean_failure

QUICK = ("--set", "evaluation.bootstrap=0", "--set", "evaluation.plots=false")


pytestmark = pytest.mark.usefixtures("no_hang")


def _table(n: int = 40, **columns) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.integers(0, 5, n)})
    for name, values in columns.items():
        frame[name] = values
    return frame


def _train(folder: Path, frame: pd.DataFrame | None, data: str, *extra: str,
           task: str = "tabular-classification"):
    if frame is not None:
        frame.to_csv(folder / "t.csv", index=False)
    (folder / "exp.yaml").write_text(f"task: {task}\ndata: {{{data}}}\n")
    return run_cli("train", folder / "exp.yaml", "--runs-dir", folder / "runs", *QUICK, *extra)


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


# --------------------------------------------------------------------------- non-regular files
def test_dev_zero_as_data_path_is_refused(tmp_path):
    result = _train(tmp_path, None, "type: csv, path: /dev/zero, target: y")
    assert_clean_failure(result, 2, ["/dev/zero", "character device", "not a regular file",
                                     "point `data.path` at a regular file"], tmp_path / "runs")


def test_fifo_as_csv_is_refused(tmp_path):
    _fifo(tmp_path / "t.csv")
    result = _train(tmp_path, None, "type: csv, path: t.csv, target: y")
    assert_clean_failure(result, 2, ["t.csv", "FIFO", "not a regular file"], tmp_path / "runs")


def test_symlink_to_a_regular_csv_is_fine(tmp_path):
    _table(y=[0, 1] * 20).to_csv(tmp_path / "real.csv", index=False)
    (tmp_path / "t.csv").symlink_to(tmp_path / "real.csv")
    result = _train(tmp_path, None, "type: csv, path: t.csv, target: y")
    assert result.exit_code == 0, result.stderr


def test_sha256_of_a_fifo_is_refused_not_blocking(tmp_path):
    with pytest.raises(DataError, match="FIFO"):
        sha256_file(_fifo(tmp_path / "pipe"))


@pytest.fixture(scope="module")
def tabular_run(tmp_path_factory) -> Path:
    """A small classification run with a text id column (leading zeros) and a group column."""
    folder = tmp_path_factory.mktemp("idrun")
    ids = [f"{i:05d}" for i in range(40)]
    frame = _table(pid=ids, patient=[f"{i // 2:04d}" for i in range(40)], y=[0, 1] * 20)
    result = _train(folder, frame, "type: csv, path: t.csv, target: y, id_column: pid, "
                                   "group_column: patient")
    assert result.exit_code == 0, result.stderr
    return Path(result.last_line)


def test_fifo_as_predict_input_is_refused(tabular_run, tmp_path):
    result = run_cli("predict", tabular_run, "--input", _fifo(tmp_path / "in.csv"))
    assert_clean_failure(result, 2, ["in.csv", "FIFO", "not a regular file"],
                         Path("/nonexistent"))


def test_fifo_as_evaluate_data_is_refused(tabular_run, tmp_path):
    result = run_cli("evaluate", tabular_run, "--data", _fifo(tmp_path / "new.csv"))
    assert_clean_failure(result, 2, ["new.csv", "FIFO", "not a regular file"],
                         Path("/nonexistent"))


def test_fifo_inside_a_dicom_folder_is_refused(tmp_path):
    from tests.imaging.test_dicom_series import write_slice

    series = tmp_path / "series"
    series.mkdir()
    for i in range(2):
        write_slice(series / f"{i}.dcm", i)
    _fifo(series / "2.dcm")
    (series / "notes.txt").write_text("skipped by its extension, as before\n")
    (tmp_path / "l.csv").write_text("file,label\n0.dcm,0\n1.dcm,1\n2.dcm,1\n")
    (tmp_path / "exp.yaml").write_text(
        "task: lung-ct\ndata: {type: dicom-series, root: series, labels: l.csv}\n"
        "model: {type: cnn2d}\n")
    result = run_cli("train", tmp_path / "exp.yaml", "--runs-dir", tmp_path / "runs")
    assert_clean_failure(result, 2, ["2.dcm", "FIFO", "not a regular file",
                                     "remove it from the series folder"], tmp_path / "runs")


def test_fifo_as_image_in_an_image_folder_is_refused(tmp_path):
    from PIL import Image

    for name in ("a", "b"):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "imgs" / name / "0.png")
    _fifo(tmp_path / "imgs" / "b" / "1.png")
    (tmp_path / "exp.yaml").write_text(
        "task: image-classification\ndata: {type: image-folder, root: imgs}\n")
    result = run_cli("train", tmp_path / "exp.yaml", "--runs-dir", tmp_path / "runs")
    assert_clean_failure(result, 2, ["1.png", "FIFO", "not a regular file"], tmp_path / "runs")


@pytest.mark.parametrize("data", [
    "type: medmnist-npz, path: x.npz",
    "type: numpy-arrays, images: x.npy, labels: l.csv",
])
def test_fifo_as_array_file_is_refused(tmp_path, data):
    _fifo(tmp_path / ("x.npz" if "npz" in data else "x.npy"))
    (tmp_path / "l.csv").write_text("label\n0\n1\n")
    (tmp_path / "exp.yaml").write_text(f"task: lung-ct\ndata: {{{data}}}\nmodel: {{type: cnn2d}}\n")
    result = run_cli("train", tmp_path / "exp.yaml", "--runs-dir", tmp_path / "runs")
    assert_clean_failure(result, 2, ["FIFO", "not a regular file"], tmp_path / "runs")


def test_fifo_as_mhd_volume_is_refused(tmp_path):
    (tmp_path / "luna" / "subset0").mkdir(parents=True)
    _fifo(tmp_path / "luna" / "subset0" / "1.2.3.mhd")
    (tmp_path / "luna" / "candidates.csv").write_text(
        "seriesuid,coordX,coordY,coordZ,class\n1.2.3,0,0,0,1\n1.2.3,5,5,5,0\n")
    (tmp_path / "exp.yaml").write_text(
        "task: lung-ct\ndata: {type: luna16, root: luna}\nmodel: {type: cnn3d}\n")
    result = run_cli("train", tmp_path / "exp.yaml", "--runs-dir", tmp_path / "runs")
    assert_clean_failure(result, 2, ["1.2.3.mhd", "FIFO", "not a regular file"],
                         tmp_path / "runs")


# --------------------------------------------------------------------------- positive class
def test_two_text_labels_need_positive_class(tmp_path):
    frame = _table(y=["disease", "healthy"] * 20)
    result = _train(tmp_path, frame, "type: csv, path: t.csv, target: y")
    assert_clean_failure(result, 2, ["disease and healthy", "not a 0/1 coding",
                                     "set `data.positive_class: <one of them>`"],
                         tmp_path / "runs")


def test_positive_class_is_the_one_named(tmp_path):
    frame = _table(y=["disease", "healthy", "healthy", "healthy"] * 10)
    result = _train(tmp_path, frame, "type: csv, path: t.csv, target: y, "
                                     "positive_class: disease")
    assert result.exit_code == 0, result.stderr
    run = Path(result.last_line)
    predictions = pd.read_csv(run / "predictions.csv")
    assert predictions["truth"].sum() == 10  # disease rows, not the 30 healthy ones
    assert read_metrics(run)["n"]["events"] == 10


def test_zero_one_coding_needs_no_positive_class(tmp_path):
    frame = _table(y=[0.0, 1.0, 0.0, 0.0] * 10)
    result = _train(tmp_path, frame, "type: csv, path: t.csv, target: y")
    assert result.exit_code == 0, result.stderr
    assert pd.read_csv(Path(result.last_line) / "predictions.csv")["truth"].sum() == 10


@pytest.mark.parametrize("labels", [[0, 1], [0.0, 1.0], [False, True], ["0", "1.0"],
                                    ["false", "TRUE"]])
def test_zero_one_codings_are_recognised(labels):
    encoded, classes = binary_target(pd.Series([labels[0], labels[1], labels[0]]), "y", "t",
                                     None)
    assert encoded.tolist() == [0, 1, 0] and classes == [str(labels[0]), str(labels[1])]


@pytest.mark.parametrize("labels", [[1, 2], [-1, 1], ["no", "yes"], ["0", "yes"]])
def test_other_two_label_codings_need_positive_class(labels):
    with pytest.raises(DataError, match="set `data.positive_class: <one of them>`"):
        binary_target(pd.Series(labels * 3), "y", "t", None)


def test_labels_with_spaces_are_stripped_and_merges_reported(tmp_path, caplog):
    labels = ["yes ", "no", "yes", "no"] * 10  # "yes " used to count as negative
    result = _train(tmp_path, _table(y=labels), "type: csv, path: t.csv, target: y, "
                                                "positive_class: ' yes'")
    assert result.exit_code == 0, result.stderr
    assert pd.read_csv(Path(result.last_line) / "predictions.csv")["truth"].sum() == 20
    assert "'yes ', 'yes'" in caplog.text and "read as one label" in caplog.text


def test_positive_class_matches_numbers_by_value():
    values = pd.Series([1.0, 2.0, 1.0, 2.0])
    encoded, classes = binary_target(values, "y", "t.csv", 1)
    assert encoded.tolist() == [1, 0, 1, 0] and classes == ["2.0", "1.0"]
    assert label_key(" 1.0") == label_key(1) == label_key(True) == "1"
    assert label_key("healthy ") == "healthy"


def test_more_than_two_labels_are_multiclass_unless_positive_class(tmp_path):
    """Issue 11: a target with three labels is multi-class (it used to be refused);
    ``data.positive_class`` binarises it on purpose."""
    result = _train(tmp_path, _table(y=["a", "b", "c", "a"] * 10),
                    "type: csv, path: t.csv, target: y")
    assert result.exit_code == 0, result.stderr
    metrics = json.loads((Path(result.last_line) / "metrics.json").read_text())
    assert metrics["problem"] == "multiclass"
    result = _train(tmp_path, _table(y=["a", "b", "c", "a"] * 10),
                    "type: csv, path: t.csv, target: y, positive_class: c")
    assert result.exit_code == 0, result.stderr
    metrics = json.loads((Path(result.last_line) / "metrics.json").read_text())
    assert metrics["problem"] == "binary-classification"


def _schema(classes: list[str], positive: str) -> FeatureSchema:
    return FeatureSchema(columns=[ColumnSpec(name="a", kind="numeric")], target="y",
                         classes=classes, positive_value=positive)


def test_known_labels_from_the_saved_schema():
    assert training_labels(_schema(["healthy", "disease"], "disease")) == ["healthy", "disease"]
    # the bundled heart data show display names; 0/1 stay valid
    assert set(training_labels(_schema(["no disease", "disease"], "1"))) >= {"0", "1"}
    assert training_labels(_schema(["not a", "a"], "a")) is None  # negatives not recorded
    with pytest.raises(DataError, match="never saw in training: 'unknown'"):
        binary_target(pd.Series(["disease", "healthy", "unknown"]), "y", "t.csv", "disease",
                      known_labels=["healthy", "disease"])


def test_check_known_labels_on_a_loaded_dataset(tmp_path):
    from medml_cli.config.loader import validate_config_data
    from medml_cli.workflows.train import load_dataset

    _table(y=["disease", "healthy", "maybe", "healthy"] * 10).to_csv(tmp_path / "t.csv",
                                                                      index=False)
    cfg = validate_config_data({"task": "tabular-classification", "data": {
        "type": "csv", "path": str(tmp_path / "t.csv"), "target": "y",
        "positive_class": "disease"}})
    dataset = load_dataset(cfg)
    with pytest.raises(DataError, match="'maybe'"):
        check_known_labels(dataset, _schema(["healthy", "disease"], "disease"), "t.csv")


def test_unseen_label_at_evaluation_is_refused(tmp_path):
    """Needs workflows/evaluate.py to call check_known_labels (see the data-safety report)."""
    frame = _table(y=["disease", "healthy"] * 20)
    result = _train(tmp_path, frame, "type: csv, path: t.csv, target: y, "
                                     "positive_class: disease")
    assert result.exit_code == 0, result.stderr
    run = Path(result.last_line)
    _table(y=["disease", "healthy", "Disease", "healthy"] * 10).to_csv(tmp_path / "new.csv",
                                                                        index=False)
    result = run_cli("evaluate", run, "--data", tmp_path / "new.csv")
    assert_clean_failure(result, 2, ["never saw in training: 'Disease'", "recode"],
                         Path("/nonexistent"))
    assert not list((run / "evaluations").glob("[!.]*"))


# --------------------------------------------------------------------------- ids as text
def test_ids_and_groups_keep_leading_zeros_in_predictions(tabular_run):
    predictions = pd.read_csv(tabular_run / "predictions.csv", dtype=str)
    assert set(predictions["id"]) == {f"{i:05d}" for i in range(40)}
    assert set(predictions["patient"]) == {f"{i:04d}" for i in range(20)}


def test_predict_output_keeps_leading_zeros(tabular_run, tmp_path):
    """Needs predict.py to pass text_columns to read_table (see the data-safety report)."""
    _table(n=5, pid=["00002", "00010", "7", "0", "00000"]).to_csv(tmp_path / "in.csv",
                                                                   index=False)
    out = tmp_path / "out.csv"
    result = run_cli("predict", tabular_run, "--input", tmp_path / "in.csv", "--output", out)
    assert result.exit_code == 0, result.stderr
    assert pd.read_csv(out, dtype=str)["id"].tolist() == ["00002", "00010", "7", "0", "00000"]


def test_parquet_numeric_ids_have_no_decimal_point(tmp_path):
    pytest.importorskip("pyarrow")
    ids = pd.Series([float(i) for i in range(40)])  # integer ids stored as float64
    _table(pid=ids, y=[0, 1] * 20).to_parquet(tmp_path / "t.parquet")
    (tmp_path / "exp.yaml").write_text("task: tabular-classification\ndata: {type: parquet, "
                                       "path: t.parquet, target: y, id_column: pid}\n")
    result = run_cli("train", tmp_path / "exp.yaml", "--runs-dir", tmp_path / "runs", *QUICK)
    assert result.exit_code == 0, result.stderr
    ids_out = pd.read_csv(Path(result.last_line) / "predictions.csv", dtype=str)["id"]
    assert set(ids_out) == {str(i) for i in range(40)}


def test_empty_id_cells_are_refused(tmp_path):
    ids = [f"p{i}" for i in range(40)]
    ids[3] = ""
    result = _train(tmp_path, _table(pid=ids, y=[0, 1] * 20),
                    "type: csv, path: t.csv, target: y, id_column: pid")
    assert_clean_failure(result, 2, ["id column 'pid' is empty in 1 row(s)", "data row 4"],
                         tmp_path / "runs")


# --------------------------------------------------------------------------- identifier-like
NAMES = [f"{first} {last}" for first in ("Ann", "Bob", "Cid", "Dee", "Eve")
         for last in ("Smith", "Jones", "Brown", "Lee", "Khan", "Ng", "Roe", "Li")]


def test_patient_name_is_not_a_feature(tmp_path):
    result = _train(tmp_path, _table(patient_name=NAMES[:40], y=[0, 1] * 20),
                    "type: csv, path: t.csv, target: y")
    assert_clean_failure(result, 2, ["patient_name", "identifiers or free text",
                                     "40 distinct values in 40 rows",
                                     "data.exclude: [patient_name]", "data.id_column"],
                         tmp_path / "runs")
    assert "Smith" not in result.stderr  # the refusal itself does not print the names


def test_patient_name_listed_as_categorical_is_still_refused(tmp_path):
    result = _train(tmp_path, _table(patient_name=NAMES[:40], y=[0, 1] * 20),
                    "type: csv, path: t.csv, target: y, categorical: [patient_name]")
    assert_clean_failure(result, 2, ["patient_name", "does not make it a feature"],
                         tmp_path / "runs")


def test_patient_name_excluded_trains_and_stays_out_of_outputs(tmp_path):
    result = _train(tmp_path, _table(patient_name=NAMES[:40], y=[0, 1] * 20),
                    "type: csv, path: t.csv, target: y, exclude: [patient_name]")
    assert result.exit_code == 0, result.stderr
    run = Path(result.last_line)
    for path in (run / "model" / "model.skops", run / "report.md"):
        assert b"Smith" not in path.read_bytes()


def test_free_text_notes_are_refused(tmp_path):
    # 31 distinct in 40 rows: below the 90 % identifier share, but long, wordy and mostly
    # distinct, i.e. clinical notes
    notes = [f"patient reports chest pain since {d} days, referred by GP" for d in range(30)]
    notes += ["no complaints"] * 10
    result = _train(tmp_path, _table(note=notes, y=[0, 1] * 20),
                    "type: csv, path: t.csv, target: y")
    assert_clean_failure(result, 2, ["note", "identifiers or free text"], tmp_path / "runs")


def test_low_cardinality_text_is_still_a_category(tmp_path):
    result = _train(tmp_path, _table(smoker=["yes", "no", "former", "no"] * 10, y=[0, 1] * 20),
                    "type: csv, path: t.csv, target: y")
    assert result.exit_code == 0, result.stderr


# --------------------------------------------------------------------------- half-numeric
def _ages() -> list[object]:
    ages: list[object] = [str(40 + i) for i in range(40)]
    for i in (2, 9, 15, 22, 30, 37):  # 15 % of the cells
        ages[i] = "unknown"
    return ages


def test_numbers_with_a_few_words_are_refused(tmp_path):
    result = _train(tmp_path, _table(age=_ages(), y=[0, 1] * 20),
                    "type: csv, path: t.csv, target: y")
    assert_clean_failure(result, 2, ["column 'age' should be numeric but row 3 holds "
                                     "'unknown'", "6 of 40 present cells are text",
                                     "data.na_values: [unknown]", "data.categorical: [age]"],
                         tmp_path / "runs")


def test_na_values_marks_the_words_missing(tmp_path):
    ages = _ages()
    ages[5] = " unknown "
    result = _train(tmp_path, _table(age=ages, y=[0, 1] * 20),
                    "type: csv, path: t.csv, target: y, na_values: [unknown]")
    assert result.exit_code == 0, result.stderr
    schema = json.loads((Path(result.last_line) / "model" / "schema.json").read_text())
    assert {c["name"]: c["kind"] for c in schema["columns"]}["age"] == "numeric"


def test_half_numeric_column_declared_categorical_trains(tmp_path):
    grades = (["1", "2", "3", "3a"] * 10)
    result = _train(tmp_path, _table(grade=grades, y=[0, 1] * 20),
                    "type: csv, path: t.csv, target: y, categorical: [grade]")
    assert result.exit_code == 0, result.stderr
