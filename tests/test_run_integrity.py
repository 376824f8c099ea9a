"""Run-record integrity and out-of-range inputs, through the CLI.

- every file of ``model/`` that evaluate/predict read is checksummed in manifest.json, and a
  change after training (a new threshold, an edited schema) is refused with exit 2; runs of
  earlier versions, whose manifest lists the model file only, stay readable with a warning;
- ``medml predict`` flags rows the model never saw the like of (unseen categories, values far
  outside the training range, most features missing) in a ``warnings`` column and counts them
  on stderr; images with NaN pixels are refused and constant images flagged.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import CONFIGS, run_cli
from tests.test_bad_inputs import assert_clean_failure

NOWHERE = Path("/nonexistent")
FAST = ["--set", "evaluation.bootstrap=0", "--set", "evaluation.plots=false"]
COLUMNS = ["id", "probability", "predicted_class", "predicted_label", "warnings"]


@pytest.fixture(scope="module")
def heart_run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    result = run_cli("train", CONFIGS / "heart_disease_logreg.yaml", "--runs-dir", runs, *FAST)
    assert result.exit_code == 0, result.stderr
    return Path(result.last_line)


@pytest.fixture
def run_copy(heart_run, tmp_path) -> Path:
    copy = tmp_path / heart_run.name
    shutil.copytree(heart_run, copy)
    return copy


def patients(tmp_path: Path, rows: int = 4) -> pd.DataFrame:
    from medml_cli.data.sources.uci_heart import load_frame

    frame = load_frame(["cleveland"]).head(rows)
    return frame.drop(columns=["site", "num", "disease"])


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data, indent=2))


def make_legacy(run: Path) -> None:
    """Rewrite the manifest as medml before version 2 wrote it: the model file only."""
    manifest = run / "model" / "manifest.json"
    files = json.loads(manifest.read_text())["files"]
    manifest.write_text(json.dumps({"files": {"model.skops": files["model.skops"]}}))


# --------------------------------------------------------------------------- A: manifest
def test_manifest_lists_every_file_of_the_model_folder(heart_run):
    manifest = json.loads((heart_run / "model" / "manifest.json").read_text())
    assert manifest["format_version"] == 2
    on_disk = {p.name for p in (heart_run / "model").iterdir()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk == {"model.skops", "card.json", "schema.json",
                                                 "card.md"}


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_edited_threshold_is_refused(run_copy, tmp_path, command):
    edit_json(run_copy / "model" / "card.json", threshold=0.99)
    args = ["--input", write_csv(patients(tmp_path), tmp_path / "in.csv")] \
        if command == "predict" else []
    result = run_cli(command, run_copy, *args)
    assert_clean_failure(result, 2, ["card.json was changed after training", "manifest.json",
                                     "Re-run `medml train`"], NOWHERE)


def test_edited_schema_is_refused(run_copy, tmp_path):
    schema = run_copy / "model" / "schema.json"
    data = json.loads(schema.read_text())
    data["columns"] = [c for c in data["columns"] if c["name"] != "chol"]
    schema.write_text(json.dumps(data))
    result = run_cli("predict", run_copy, "--input",
                     write_csv(patients(tmp_path), tmp_path / "in.csv"))
    assert_clean_failure(result, 2, ["schema.json was changed after training"], NOWHERE)


def test_file_missing_from_a_current_manifest_is_refused(run_copy, tmp_path):
    manifest = run_copy / "model" / "manifest.json"
    data = json.loads(manifest.read_text())
    del data["files"]["card.json"]
    manifest.write_text(json.dumps(data))
    result = run_cli("predict", run_copy, "--input",
                     write_csv(patients(tmp_path), tmp_path / "in.csv"))
    assert_clean_failure(result, 2, ["does not list card.json", "cannot be verified"], NOWHERE)


def test_legacy_manifest_is_read_with_a_warning(run_copy, tmp_path):
    make_legacy(run_copy)
    inputs = write_csv(patients(tmp_path), tmp_path / "in.csv")
    result = run_cli("predict", run_copy, "--input", inputs)
    assert result.exit_code == 0, result.stderr
    message = " ".join(result.stderr.split())
    assert "card.json and schema.json are not checksummed" in message
    assert list(pd.read_csv(io.StringIO(result.stdout)).columns) == COLUMNS
    evaluation = run_cli("evaluate", run_copy)
    assert evaluation.exit_code == 0, evaluation.stderr
    assert "not checksummed" in " ".join(evaluation.stderr.split())
    # what the old manifest does list is still verified
    model = run_copy / "model" / "model.skops"
    model.write_bytes(model.read_bytes()[:300])
    result = run_cli("predict", run_copy, "--input", inputs)
    assert_clean_failure(result, 2, ["model.skops was changed after training"], NOWHERE)


def test_damaged_manifest_is_refused(run_copy, tmp_path):
    (run_copy / "model" / "manifest.json").write_text('{"files": ')
    result = run_cli("predict", run_copy, "--input",
                     write_csv(patients(tmp_path), tmp_path / "in.csv"))
    assert_clean_failure(result, 2, ["manifest.json", "not valid JSON", "medml train"], NOWHERE)


# --------------------------------------------------------------------------- B: row warnings
def test_schema_records_training_categories_and_ranges(heart_run):
    schema = json.loads((heart_run / "model" / "schema.json").read_text())
    assert set(schema["categories"]) == {"cp", "restecg", "slope", "thal"}
    assert len(schema["categories"]["cp"]) == 4
    low, high = schema["ranges"]["age"]
    assert 20 <= low < high <= 90


def test_predict_flags_rows_unlike_the_training_data(heart_run, tmp_path):
    frame = patients(tmp_path, rows=5)
    frame["cp"] = frame["cp"].astype(object)
    frame.loc[1, "cp"] = 9                                 # a chest-pain code never seen
    features = [c for c in frame.columns if c != "patient_id"]
    frame.loc[2, features] = np.nan                         # nothing known about the patient
    frame.loc[3, "age"] = 400                               # a typo, far outside 29-77
    result = run_cli("predict", heart_run, "--input", write_csv(frame, tmp_path / "in.csv"))
    assert result.exit_code == 0, result.stderr
    out = pd.read_csv(io.StringIO(result.stdout), keep_default_na=False)
    assert list(out.columns) == COLUMNS
    assert out["warnings"][0] == "" and out["warnings"][4] == ""
    assert out["warnings"][1] in ("unseen category: cp=9", "unseen category: cp=9.0")
    assert out["warnings"][2] == f"{len(features)} of {len(features)} features missing"
    assert "age=400 far outside the training range" in out["warnings"][3]
    message = " ".join(result.stderr.split())
    assert "3 of 5 row(s) are unlike the training data" in message
    assert "1 with unseen category values" in message
    assert "1 with more than half the features missing" in message


def test_integer_category_codes_match_training_floats(heart_run, tmp_path):
    """The bundled data read cp as 1.0 ...; a table with integer codes must score the same."""
    floats = patients(tmp_path)
    ints = floats.copy()
    for column in ("cp", "restecg", "slope", "thal"):
        ints[column] = ints[column].astype("Int64")
    a = run_cli("predict", heart_run, "--input", write_csv(floats, tmp_path / "f.csv"))
    b = run_cli("predict", heart_run, "--input", write_csv(ints, tmp_path / "i.csv"))
    assert a.exit_code == 0 and b.exit_code == 0, a.stderr + b.stderr
    fa = pd.read_csv(io.StringIO(a.stdout), keep_default_na=False)
    fb = pd.read_csv(io.StringIO(b.stdout), keep_default_na=False)
    assert (fb["warnings"] == "").all()
    assert fa["probability"].to_numpy() == pytest.approx(fb["probability"].to_numpy())


def test_schema_of_an_earlier_version_still_predicts(run_copy, tmp_path):
    schema = run_copy / "model" / "schema.json"
    data = json.loads(schema.read_text())
    data.pop("categories"), data.pop("ranges")
    schema.write_text(json.dumps(data))
    make_legacy(run_copy)
    frame = patients(tmp_path)
    frame.loc[0, [c for c in frame.columns if c != "patient_id"]] = np.nan
    result = run_cli("predict", run_copy, "--input", write_csv(frame, tmp_path / "in.csv"))
    assert result.exit_code == 0, result.stderr
    out = pd.read_csv(io.StringIO(result.stdout), keep_default_na=False)
    assert out["warnings"][0].endswith("features missing")
    assert "predates medml's record of training categories" in " ".join(result.stderr.split())


def test_regression_predict_has_the_warnings_column_last(tmp_path):
    from sklearn.datasets import load_diabetes

    runs = tmp_path / "runs"
    result = run_cli("train", CONFIGS / "diabetes_ridge.yaml", "--runs-dir", runs, *FAST)
    assert result.exit_code == 0, result.stderr
    frame = load_diabetes(scaled=False, as_frame=True).frame.drop(columns="target").head(3)
    result = run_cli("predict", result.last_line, "--input",
                     write_csv(frame, tmp_path / "in.csv"))
    assert result.exit_code == 0, result.stderr
    out = pd.read_csv(io.StringIO(result.stdout), keep_default_na=False)
    assert list(out.columns) == ["id", "prediction", "warnings"]
    assert (out["warnings"] == "").all() and "unlike the training data" not in result.stderr


def test_evaluate_on_external_table_counts_flagged_rows(heart_run, tmp_path):
    from medml_cli.data.sources.uci_heart import load_frame

    frame = load_frame(["hungarian"]).drop(columns=["site", "num"])
    frame["cp"] = frame["cp"].astype(object)
    frame.loc[:4, "cp"] = 9
    result = run_cli("evaluate", heart_run, "--data", write_csv(frame, tmp_path / "ext.csv"),
                     *FAST[2:])
    assert result.exit_code == 0, result.stderr
    message = " ".join(result.stderr.split())
    assert f"5 of {len(frame)} row(s) are unlike the training data" in message
    metrics = json.loads((Path(result.last_line) / "metrics.json").read_text())
    assert any("unlike the training data" in note for note in metrics["notes"])


# --------------------------------------------------------------------------- images
@pytest.fixture(scope="module")
def cnn2d_run(tmp_path_factory) -> Path:
    from tests.test_lung_ct import TINY

    runs = tmp_path_factory.mktemp("cnn")
    result = run_cli("train", CONFIGS / "lung_ct_cnn2d.yaml", "--runs-dir", runs, *TINY,
                     "--set", "evaluation.explain=none", "--set", "evaluation.bootstrap=0",
                     "--set", "evaluation.plots=false", "--set", "model.epochs=1",
                     "--set", "evaluation.voxel_logistic_baseline=false")
    assert result.exit_code == 0, result.stderr
    return Path(result.last_line)


@pytest.mark.slow
@pytest.mark.tensorflow
def test_keras_run_checksums_its_card_and_refuses_an_edit(cnn2d_run, tmp_path):
    manifest = json.loads((cnn2d_run / "model" / "manifest.json").read_text())
    assert set(manifest["files"]) == {"model.keras", "estimator.json", "card.json", "card.md"}
    copy = tmp_path / cnn2d_run.name
    shutil.copytree(cnn2d_run, copy)
    edit_json(copy / "model" / "card.json", threshold=0.99)
    np.save(tmp_path / "ok.npy", np.full((2, 16, 16), -800.0, np.float32))
    result = run_cli("predict", copy, "--input", tmp_path / "ok.npy")
    assert_clean_failure(result, 2, ["card.json was changed after training"], NOWHERE)


@pytest.mark.slow
@pytest.mark.tensorflow
def test_images_with_nan_pixels_are_refused_and_constant_ones_flagged(cnn2d_run, tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(-1000, 200, (3, 16, 16)).astype(np.float32)
    images[1] = -1000.0                                     # nothing but air
    np.save(tmp_path / "x.npy", images)
    result = run_cli("predict", cnn2d_run, "--input", tmp_path / "x.npy")
    assert result.exit_code == 0, result.stderr
    out = pd.read_csv(io.StringIO(result.stdout), keep_default_na=False)
    assert list(out.columns) == COLUMNS
    assert list(out["warnings"]) == ["", "constant image (every pixel -1000)", ""]
    assert "1 of 3 row(s) are unlike the training data" in " ".join(result.stderr.split())
    images[2] = np.nan
    np.save(tmp_path / "nan.npy", images)
    result = run_cli("predict", cnn2d_run, "--input", tmp_path / "nan.npy")
    assert_clean_failure(result, 2, ["image '2'", "NaN or infinite", "cannot be scored"],
                         NOWHERE)
