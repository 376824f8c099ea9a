"""The bad-input catalogue: every case exits with the right code, names the problem and the
fix in one clean message (no traceback), and leaves no run directory that looks complete."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.conftest import CONFIGS, run_cli
from tests.imaging.test_dicom_series import write_slice

HEART = "task: heart-disease\nmodel: {type: logistic-regression}\n"


@dataclass
class Case:
    """One bad input: files to write, the command, and what the message must contain."""

    name: str
    args: list[str]
    expect: list[str]
    code: int = 2
    files: dict[str, str | bytes] = field(default_factory=dict)


def csv_task(table: str, extra: str = "", task: str = "tabular-classification") -> dict:
    return {"exp.yaml": f"task: {task}\ndata: {{type: csv, path: t.csv, target: y{extra}}}\n",
            "t.csv": table}


GOOD_TABLE = "a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40))

TRAIN_CASES = [
    Case("empty config", ["train", "exp.yaml"], ["empty", "task:"], files={"exp.yaml": ""}),
    Case("top level not a mapping", ["train", "exp.yaml"], ["top level is a list", "mapping"],
         files={"exp.yaml": "- task: heart-disease\n"}),
    Case("yaml syntax error", ["train", "exp.yaml"], ["YAML syntax error", "line 2"],
         files={"exp.yaml": "task: heart-disease\nmodel: {type: svm\n"}),
    Case("duplicate key", ["train", "exp.yaml"], ["duplicate key 'model'", "line 2"],
         files={"exp.yaml": HEART + "model: {type: svm}\n"}),
    Case("unknown key", ["train", "exp.yaml"], ["model.C_value", "did you mean 'C'"],
         files={"exp.yaml": "task: heart-disease\nmodel: {type: svm, C_value: 2}\n"}),
    Case("wrong type", ["train", "exp.yaml"], ["model.n_estimators", "valid integer", "'lots'"],
         files={"exp.yaml": "task: heart-disease\nmodel: {type: random-forest, "
                            "n_estimators: lots}\n"}),
    Case("negative n_estimators", ["train", "exp.yaml"],
         ["model.n_estimators", "greater than or equal to 1", "-5"],
         files={"exp.yaml": "task: heart-disease\nmodel: {type: random-forest, "
                            "n_estimators: -5}\n"}),
    Case("test_size out of range", ["train", "exp.yaml"], ["split.test_size", "less than 1"],
         files={"exp.yaml": HEART + "split: {method: holdout, test_size: 1.5}\n"}),
    Case("unknown task", ["train", "exp.yaml"], ["'heart' is not a task", "heart-disease"],
         files={"exp.yaml": "task: heart\n"}),
    Case("unknown model", ["train", "exp.yaml"], ["'forest' is not a model type",
                                                  "random-forest"],
         files={"exp.yaml": "task: heart-disease\nmodel: {type: forest}\n"}),
    Case("unknown dataset", ["train", "exp.yaml"], ["'diabetis' is not a dataset type",
                                                    "did you mean 'diabetes'"],
         files={"exp.yaml": "task: diabetes\ndata: {type: diabetis}\n"}),
    Case("regression model on classification task", ["train", "exp.yaml"],
         ["'svr' is a regression model", "use one of"],
         files={"exp.yaml": "task: heart-disease\nmodel: {type: svr}\n"}),
    Case("image model on tabular task", ["train", "exp.yaml"], ["'cnn2d' does not take tabular"],
         files={"exp.yaml": "task: heart-disease\nmodel: {type: cnn2d}\n"}),
    Case("--set unknown path", ["train", "exp.yaml", "--set", "split.n_split=3"],
         ["split.n_split", "did you mean 'n_splits'", "--set split.n_split=3"],
         files={"exp.yaml": HEART}),
    Case("--set invalid yaml", ["train", "exp.yaml", "--set", "model.C=[1,"],
         ["not valid YAML"], files={"exp.yaml": HEART}),
    Case("threshold target missing", ["train", "exp.yaml"], ["threshold_target"],
         files={"exp.yaml": HEART + "evaluation: {threshold_method: specificity}\n"}),
    Case("kfold for an image task", ["train", "exp.yaml"], ["split.method", "holdout"],
         files={"exp.yaml": "task: lung-ct\nsplit: {method: kfold}\n"}),
    Case("missing data file", ["train", "exp.yaml"], ["file not found", "data.path"],
         files={"exp.yaml": "task: tabular-classification\ndata: {type: csv, path: none.csv, "
                            "target: y}\n"}),
    Case("empty csv", ["train", "exp.yaml"], ["the file is empty", "header row"],
         files=csv_task("")),
    Case("header-only csv", ["train", "exp.yaml"], ["no data rows"], files=csv_task("a,b,y\n")),
    Case("missing target column", ["train", "exp.yaml"], ["target column(s) y not found",
                                                          "fix the column name"],
         files=csv_task("a,b,outcome\n1,2,0\n")),
    Case("single-class target", ["train", "exp.yaml"], ["single class", "both classes"],
         files=csv_task("a,y\n" + "1,0\n" * 30)),
    Case("positive class absent", ["train", "exp.yaml"], ["positive_class 'yes' does not occur"],
         files=csv_task(GOOD_TABLE, ", positive_class: 'yes'")),
    Case("fewer rows than folds", ["train", "exp.yaml"], ["fewer than the 5 folds",
                                                          "split.n_splits"],
         files=csv_task("a,y\n1,0\n2,1\n3,0\n4,1\n5,0\n6,1\n7,0\n8,1\n9,0\n")),
    Case("text in a numeric column", ["train", "exp.yaml"],
         ["column 'a' should be numeric but row 3 holds 'abc'", "missing"],
         files=csv_task("a,y\n1,0\n2,1\nabc,0\n" + "".join(f"{i},{i % 2}\n" for i in range(30)))),
    Case("inf values", ["train", "exp.yaml"], ["infinite value", "finite number"],
         files=csv_task("a,y\n1,0\ninf,1\n" + "".join(f"{i},{i % 2}\n" for i in range(30)))),
    Case("all-missing column", ["train", "exp.yaml"], ["no values at all", "data.exclude"],
         files=csv_task("a,b,y\n" + "".join(f"{i},,{i % 2}\n" for i in range(30)))),
    Case("duplicate ids", ["train", "exp.yaml"], ["duplicated value", "group_column"],
         files=csv_task("id,a,y\n" + "".join(f"{i % 5},{i},{i % 2}\n" for i in range(30)),
                        ", id_column: id")),
    Case("NaN target", ["train", "exp.yaml"], ["is empty in 2 row(s)", "drop_missing_target"],
         files=csv_task("a,y\n1,\n2,\n" + "".join(f"{i},{i % 2}\n" for i in range(30)))),
    Case("duplicated column names", ["train", "exp.yaml"], ["duplicated column name(s): a"],
         files=csv_task("a,a,y\n1,2,0\n3,4,1\n")),
    Case("binary file as csv", ["train", "exp.yaml"], ["could not be parsed"],
         files=csv_task(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe" * 20)),
    Case("unknown subgroup", ["train", "exp.yaml"], ["subgroups names age_group",
                                                     "did you mean"],
         files={"exp.yaml": HEART + "evaluation: {subgroups: [age_group]}\n"}),
    Case("npz without the expected keys", ["train", "exp.yaml"], ["lacks the array(s)",
                                                                  "train_images"],
         files={"exp.yaml": "task: lung-ct\ndata: {type: medmnist-npz, path: x.npz}\n"
                            "model: {type: cnn2d}\n"}),
    Case("corrupt DICOM in a series", ["train", "exp.yaml"], ["'2.dcm'", "corrupt"],
         files={"exp.yaml": "task: lung-ct\ndata: {type: dicom-series, root: series, labels: "
                            "l.csv}\nmodel: {type: cnn2d}\n"}),
    Case("DICOM series with mixed shapes", ["train", "exp.yaml"], ["32", "48"],
         files={"exp.yaml": "task: lung-ct\ndata: {type: dicom-series, root: mixed, labels: "
                            "l.csv}\nmodel: {type: cnn2d}\n"}),
    Case("image folder with one class", ["train", "exp.yaml"], ["class"],
         files={"exp.yaml": "task: image-classification\ndata: {type: image-folder, root: "
                            "imgs}\n"}),
    # issue 9: resource exhaustion and silently changed meanings
    Case("YAML alias bomb", ["train", "exp.yaml"], ["aliases", "billion laughs"],
         files={"exp.yaml": HEART + "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
             f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n"
             for p, n in zip("abcdefgh", "bcdefghi", strict=True))}),
    Case("YAML nested too deeply", ["train", "exp.yaml"], ["nested too deeply"],
         files={"exp.yaml": HEART + "x: " + "[" * 3000 + "]" * 3000 + "\n"}),
    Case("config is a device", ["train", "/dev/zero"], ["not a regular file"]),
    Case("boolean for a number", ["train", "exp.yaml", "--set", "model.n_estimators=true"],
         ["model.n_estimators", "is a boolean", "write the number itself"],
         files={"exp.yaml": "task: heart-disease\nmodel: {type: random-forest}\n"}),
    Case("run name with a newline", ["train", "exp.yaml", "--name", "ab\n"],
         ["--name", "control characters"], files={"exp.yaml": HEART}),
]


def _write_special(tmp_path: Path, case: Case) -> None:
    """Inputs that are not plain text."""
    if case.name == "npz without the expected keys":
        np.savez(tmp_path / "x.npz", images=np.zeros((4, 8, 8), np.uint8))
    if case.name.startswith("corrupt DICOM"):
        (tmp_path / "series").mkdir()
        for i in range(2):
            write_slice(tmp_path / "series" / f"{i}.dcm", i)
        (tmp_path / "series" / "2.dcm").write_bytes(b"DICM" + os.urandom(64))
        (tmp_path / "l.csv").write_text("file,label\n0.dcm,0\n1.dcm,1\n2.dcm,1\n")
    if case.name.startswith("DICOM series with mixed"):
        (tmp_path / "mixed").mkdir()
        write_slice(tmp_path / "mixed" / "0.dcm", 0, shape=(32, 32))
        write_slice(tmp_path / "mixed" / "1.dcm", 1, shape=(48, 48))
        (tmp_path / "l.csv").write_text("file,label\n0.dcm,0\n1.dcm,1\n")
    if case.name == "image folder with one class":
        (tmp_path / "imgs" / "only").mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "imgs" / "only" / "a.png")


def assert_clean_failure(result, case_code: int, expect: list[str], runs: Path) -> None:
    assert result.exit_code == case_code, result.stderr
    message = " ".join(result.stderr.split())
    for text in expect:
        assert text in message, f"{text!r} not in {message!r}"
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 12  # one short paragraph (or a list)
    assert_no_complete_run(runs)


def assert_no_complete_run(runs: Path) -> None:
    if not runs.exists():
        return
    for run in runs.iterdir():
        status = json.loads((run / "status.json").read_text()) \
            if (run / "status.json").exists() else {}
        assert status.get("state") != "completed", run
        assert not (run / "metrics.json").exists(), run


def run_case(case: Case, tmp_path: Path, monkeypatch, write_special=None) -> None:
    """Write the case's files (and its special inputs), run it from its folder, and check
    the clean failure: the one runner of every catalogue file."""
    for name, content in case.files.items():
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    if write_special is not None:
        write_special(tmp_path, case)
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    result = run_cli(*case.args, "--runs-dir", str(runs))
    assert_clean_failure(result, case.code, case.expect, runs)


@pytest.mark.parametrize("case", TRAIN_CASES, ids=lambda c: c.name)
def test_bad_training_input(tmp_path, monkeypatch, case):
    run_case(case, tmp_path, monkeypatch, _write_special)


# --------------------------------------------------------------------------- runs & models
@pytest.fixture(scope="module")
def tabular_run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    result = run_cli("train", CONFIGS / "diabetes_ridge.yaml", "--runs-dir", runs,
                     "--set", "evaluation.bootstrap=0", "--set", "evaluation.plots=false")
    assert result.exit_code == 0, result.stderr
    return Path(result.last_line)


@pytest.fixture
def run_copy(tabular_run, tmp_path) -> Path:
    copy = tmp_path / tabular_run.name
    shutil.copytree(tabular_run, copy)
    return copy


@pytest.fixture
def diabetes_input(tmp_path) -> Path:
    from sklearn.datasets import load_diabetes

    path = tmp_path / "in.csv"
    load_diabetes(scaled=False, as_frame=True).frame.drop(columns="target").head(5).to_csv(
        path, index=False)
    return path


def _rehash(run: Path) -> None:
    """Make the manifest match a replaced file, as an attacker who edits both would."""
    from medml_cli.data.formats.paths import sha256_file

    manifest = run / "model" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["files"]["model.skops"] = sha256_file(run / "model" / "model.skops")
    manifest.write_text(json.dumps(data))


def test_predict_input_missing_columns(run_copy, diabetes_input):
    pd.read_csv(diabetes_input).drop(columns=["bmi", "s5"]).to_csv(diabetes_input, index=False)
    result = run_cli("predict", run_copy, "--input", diabetes_input)
    assert_clean_failure(result, 2, ["lack the column(s) bmi, s5", "add those columns"],
                         Path("/nonexistent"))


def test_predict_input_wrong_types(run_copy, diabetes_input):
    frame = pd.read_csv(diabetes_input).astype({"bp": object})
    frame.loc[3, "bp"] = "high"
    frame.to_csv(diabetes_input, index=False)
    result = run_cli("predict", run_copy, "--input", diabetes_input)
    assert_clean_failure(result, 2, ["column 'bp' should be numeric but row 4 holds 'high'"],
                         Path("/nonexistent"))


def test_predict_on_missing_input_and_missing_run(run_copy, tmp_path):
    result = run_cli("predict", run_copy, "--input", tmp_path / "nope.csv")
    assert_clean_failure(result, 2, ["file not found"], Path("/nonexistent"))
    result = run_cli("predict", tmp_path / "no-run", "--input", tmp_path / "nope.csv")
    assert_clean_failure(result, 2, ["does not exist", "last line"], Path("/nonexistent"))


def test_truncated_model_file(run_copy, diabetes_input):
    model = run_copy / "model" / "model.skops"
    model.write_bytes(model.read_bytes()[:200])
    result = run_cli("predict", run_copy, "--input", diabetes_input)
    assert_clean_failure(result, 2, ["changed since it was saved", "Re-run `medml train`"],
                         Path("/nonexistent"))
    _rehash(run_copy)  # even with a matching hash, a truncated archive is refused
    result = run_cli("predict", run_copy, "--input", diabetes_input)
    assert_clean_failure(result, 2, ["not a readable skops model file"], Path("/nonexistent"))


def test_skops_file_with_untrusted_type(run_copy, diabetes_input):
    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    sio.dump(Pipeline([("f", FunctionTransformer(func=os.system))]),
             run_copy / "model" / "model.skops")
    _rehash(run_copy)
    result = run_cli("predict", run_copy, "--input", diabetes_input)
    assert_clean_failure(result, 2, ["outside medml's trusted list", "posix.system"],
                         Path("/nonexistent"))


class _Payload:
    """Unpickling this would write a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def test_pickle_renamed_as_model_never_runs(run_copy, diabetes_input, tmp_path):
    marker = tmp_path / "marker.txt"
    (run_copy / "model" / "model.skops").write_bytes(pickle.dumps(_Payload(marker)))
    _rehash(run_copy)
    result = run_cli("predict", run_copy, "--input", diabetes_input)
    assert_clean_failure(result, 2, ["not a readable skops model file", "never loads pickles"],
                         Path("/nonexistent"))
    assert not marker.exists()


def test_evaluate_failed_and_incomplete_runs(run_copy, tmp_path):
    failed = tmp_path / (run_copy.name + "-failed")
    shutil.copytree(run_copy, failed)
    (failed / "status.json").write_text(json.dumps({"state": "failed", "error": "boom"}))
    result = run_cli("evaluate", failed)
    assert_clean_failure(result, 2, ["is failed: boom", "train again"], Path("/nonexistent"))
    incomplete = tmp_path / ".tmp-x-123"
    shutil.copytree(run_copy, incomplete)
    (incomplete / "status.json").write_text(json.dumps({"state": "running", "pid": 999999}))
    result = run_cli("evaluate", incomplete)
    assert_clean_failure(result, 2, ["is running"], Path("/nonexistent"))
    (tmp_path / "not-a-run").mkdir()
    result = run_cli("evaluate", tmp_path / "not-a-run")
    assert_clean_failure(result, 2, ["not a medml run directory"], Path("/nonexistent"))


def test_runs_directory_not_writable(tmp_path):
    target = tmp_path / "file-not-dir"
    target.write_text("x")  # a file where the runs folder should be: not writable as a folder
    result = run_cli("train", CONFIGS / "diabetes_ridge.yaml", "--runs-dir", target / "runs")
    assert_clean_failure(result, 2, ["cannot write to the runs directory", "--runs-dir"],
                         target.parent / "nothing")


def test_unreadable_folder(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("runs as root, which can read any folder; chmod cannot make one "
                    "unreadable here")
    folder = tmp_path / "imgs"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    folder.chmod(0)
    try:
        (tmp_path / "exp.yaml").write_text(
            "task: image-classification\ndata: {type: image-folder, root: imgs}\n")
        result = run_cli("train", tmp_path / "exp.yaml", "--runs-dir", tmp_path / "runs")
        assert_clean_failure(result, 2, ["imgs"], tmp_path / "runs")
    finally:
        folder.chmod(0o755)


def test_gate_threshold_nan_and_output_onto_input(tabular_run, diabetes_input):
    gate = run_cli("evaluate", tabular_run, "--fail-under", "rmse=nan")
    nowhere = diabetes_input.parent / "no-runs"  # neither command makes a run
    assert_clean_failure(gate, 2, ["--fail-under", "finite number"], nowhere)
    before = diabetes_input.read_bytes()
    same = run_cli("predict", tabular_run, "--input", diabetes_input, "--output", diabetes_input)
    assert_clean_failure(same, 2, ["is the input file", "--overwrite"], nowhere)
    assert diabetes_input.read_bytes() == before


def test_gate_with_unknown_metric_and_missing_eval_data(tabular_run, tmp_path):
    result = run_cli("evaluate", tabular_run, "--fail-under", "r_squared=0.5")
    assert_clean_failure(result, 2, ["unknown metric 'r_squared'"], Path("/nonexistent"))
    result = run_cli("evaluate", tabular_run, "--data", tmp_path / "none.csv")
    assert_clean_failure(result, 2, ["file not found"], Path("/nonexistent"))
    from sklearn.datasets import load_diabetes

    load_diabetes(scaled=False, as_frame=True).frame.drop(columns="target").to_csv(
        tmp_path / "no_outcome.csv", index=False)
    result = run_cli("evaluate", tabular_run, "--data", tmp_path / "no_outcome.csv")
    assert_clean_failure(result, 2, ["lacks the outcome column 'progression'", "medml predict"],
                         Path("/nonexistent"))


@pytest.mark.tensorflow
def test_keras_file_with_lambda_layer_is_refused(tmp_path):
    from medml_cli.errors import ModelLoadError
    from medml_cli.models.keras.estimator import ImageCnnClassifier
    from medml_cli.models.keras.tf_runtime import import_tensorflow

    _, keras = import_tensorflow()
    folder = tmp_path / "model"
    estimator = ImageCnnClassifier(architecture="cnn2d", filters=(2,), dense_units=2, epochs=1,
                                   patience=None, intensity=("unit", 0.0, 1.0))
    estimator.fit(np.random.default_rng(0).random((8, 8, 8)), np.arange(8) % 2)
    estimator.save(folder)
    marker = str(tmp_path / "marker.txt")
    inputs = keras.Input((8, 8, 1))
    # a layer carrying Python code that would write a marker file if it were ever run
    outputs = keras.layers.Lambda(lambda x: (open(marker, "w").write("pwned"), x)[1])(inputs)
    keras.Model(inputs, outputs).save(folder / "model.keras")
    Path(marker).unlink(missing_ok=True)  # building the model above ran the lambda once
    with pytest.raises(ModelLoadError) as info:
        ImageCnnClassifier.load(folder)
    assert "code" in str(info.value) or "Lambda" in str(info.value)
    assert not Path(marker).exists()


@pytest.mark.tensorflow
def test_image_of_wrong_channel_count(tmp_path):
    from tests.test_lung_ct import TINY

    runs = tmp_path / "runs"
    result = run_cli("train", CONFIGS / "lung_ct_cnn2d.yaml", "--runs-dir", runs, *TINY,
                     "--set", "evaluation.explain=none", "--set", "data.size=16")
    assert result.exit_code == 0, result.stderr
    run = Path(result.last_line)
    np.save(tmp_path / "rgb.npy", np.zeros((2, 16, 16, 3), np.float32))
    result = run_cli("predict", run, "--input", tmp_path / "rgb.npy")
    assert_clean_failure(result, 2, ["(16, 16, 3)", "(16, 16, 1)"], Path("/nonexistent"))
    np.save(tmp_path / "small.npy", np.zeros((2, 8, 8), np.float32))
    result = run_cli("predict", run, "--input", tmp_path / "small.npy")
    assert_clean_failure(result, 2, ["(8, 8)", "resize"], Path("/nonexistent"))


def test_unreadable_folder_even_as_root(tmp_path, monkeypatch):
    """The same case with the permission error injected, so it is checked under root too."""
    folder = tmp_path / "imgs"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    real_iterdir = Path.iterdir

    def iterdir(self):
        if self == folder:
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    (tmp_path / "exp.yaml").write_text(
        "task: image-classification\ndata: {type: image-folder, root: imgs}\n")
    result = run_cli("train", tmp_path / "exp.yaml", "--runs-dir", tmp_path / "runs")
    assert_clean_failure(result, 2, ["imgs", "ermission"], tmp_path / "runs")
