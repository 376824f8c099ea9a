"""`medml export RUN --format onnx`: parity with medml's own model on shipped configs, the
bundle scored by `medml predict` like its run, and every refusal an exit-2 error that leaves
no bundle behind."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import CONFIGS, export_bundles, run_cli, run_data, train_runs

QUICK = ["--set", "evaluation.bootstrap=0"]
#: shipped configs covering each converter path: linear, forest, boosting, calibrated svm,
#: multiclass, regression (svr's target scaler), categorical features with missing values
#: and indicator columns (four UCI sites)
TABULAR = {
    "heart_disease_logreg": [],
    "heart_disease_rf": ["--set", "model.n_estimators=60"],
    "heart_disease_gb": ["--set", "model.max_iter=60"],
    "heart_disease_svm": [],
    "heart_disease_severity": [],
    "diabetes_svr": [],
    "diabetes_rf": ["--set", "model.n_estimators=60"],
    "heart_disease_internal_external": [],
}
TINY_CNN = ["--set", "data.n_patients=10", "--set", "data.samples_per_patient=4",
            "--set", "data.size=16", "--set", "model.filters=[4,8]",
            "--set", "model.dense_units=8", "--set", "model.epochs=2",
            "--set", "evaluation.bootstrap=0", "--set", "evaluation.explain=none"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    return train_runs(tmp_path_factory.mktemp("runs"),
                      {name: (name, [*QUICK, *extra]) for name, extra in TABULAR.items()})


@pytest.fixture(scope="module")
def bundles(runs) -> dict[str, Path]:
    return export_bundles(runs, "--format", "onnx")


def _input_csv(run: Path, path: Path) -> Path:
    """The run's own data as a predict input (ids included), read by medml's loader."""
    run_data(run)[1].to_csv(path, index=False)
    return path


@pytest.mark.parametrize("name", list(TABULAR))
def test_tabular_export_matches_medml_within_1e_5(bundles, runs, name):
    bundle = bundles[name]
    assert bundle == runs[name] / "exports" / "onnx"
    for file in ("model.onnx", "signature.json", "card.json", "schema.json", "config.yaml",
                 "manifest.json"):
        assert (bundle / file).is_file(), file
    signature = json.loads((bundle / "signature.json").read_text())
    parity = signature["parity"]
    assert parity["tolerance"] == 1e-5 and parity["max_abs_diff"] <= 1e-5
    assert parity["rows"] > 200  # the data rows plus the blanked-feature probes
    card = json.loads((runs[name] / "model" / "card.json").read_text())
    assert signature["problem"] == card["problem"]
    assert signature["threshold"] == card.get("threshold")
    assert [i["feature"] for i in signature["inputs"]] == card["features"]
    assert not list(bundle.parent.glob(".tmp-*"))


@pytest.mark.parametrize("name", ["heart_disease_internal_external", "diabetes_svr",
                                  "heart_disease_severity", "heart_disease_gb"])
def test_predict_with_the_bundle_equals_predict_with_the_run(bundles, runs, name, tmp_path):
    data = _input_csv(runs[name], tmp_path / "input.csv")
    by_run = run_cli("predict", runs[name], "--input", data)
    by_bundle = run_cli("predict", bundles[name], "--input", data)
    assert by_run.exit_code == 0 and by_bundle.exit_code == 0, by_bundle.stderr
    a = pd.read_csv(pd.io.common.StringIO(by_run.stdout))
    b = pd.read_csv(pd.io.common.StringIO(by_bundle.stdout))
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    numeric = [c for c in a.columns if c not in ("id", "warnings", "predicted_label")
               and pd.api.types.is_float_dtype(a[c])]
    assert numeric
    assert np.abs(a[numeric].to_numpy() - b[numeric].to_numpy()).max() <= 1e-5
    rest = [c for c in a.columns if c not in numeric]
    assert a[rest].fillna("").astype(str).equals(b[rest].fillna("").astype(str))
    assert "ONNX bundle" in by_bundle.stderr


def test_the_bundle_is_usable_with_onnxruntime_alone(bundles, runs, tmp_path):
    """What signature.json says is enough to feed the graph without medml."""
    import onnxruntime as ort

    name = "heart_disease_internal_external"
    bundle = bundles[name]
    signature = json.loads((bundle / "signature.json").read_text())
    frame = pd.read_csv(_input_csv(runs[name], tmp_path / "input.csv"), dtype=str)
    feeds = {}
    for spec in signature["inputs"]:
        column = frame[spec["feature"]]
        if spec["type"] == "string":
            values = column.fillna(signature["missing"]["categorical"])
            feeds[spec["name"]] = values.to_numpy(dtype=object).reshape(-1, 1)
        else:
            feeds[spec["name"]] = column.astype(float).to_numpy().reshape(-1, 1)
    session = ort.InferenceSession(str(bundle / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    proba = session.run([signature["score_output"]], feeds)[0][:, 1]
    medml = pd.read_csv(pd.io.common.StringIO(
        run_cli("predict", runs[name], "--input", tmp_path / "input.csv").stdout))
    assert np.abs(proba - medml["probability"].to_numpy()).max() <= 1e-5


def test_the_signature_says_which_onnx_runtime_the_bundle_needs(bundles):
    """Tree bundles hold ai.onnx.ml 5 TreeEnsemble nodes, which ONNX Runtime 1.19 and 1.20
    cannot run (tried: NOT_IMPLEMENTED); the others ran unchanged on 1.19.2."""
    import onnx

    from medml_cli.export.onnx import ORT_FOR_TREES, ORT_WITHOUT_TREES

    for name in ("heart_disease_rf", "heart_disease_gb", "diabetes_rf", "heart_disease_logreg",
                 "diabetes_svr"):
        signature = json.loads((bundles[name] / "signature.json").read_text())
        graph = onnx.load(bundles[name] / "model.onnx").graph
        trees = any(node.op_type == "TreeEnsemble" for node in graph.node)
        assert trees == (name in ("heart_disease_rf", "heart_disease_gb", "diabetes_rf"))
        assert signature["requires"]["onnxruntime"] == \
            f">={ORT_FOR_TREES if trees else ORT_WITHOUT_TREES}"
        assert (signature["opset"]["ai.onnx.ml"] >= 5) == trees


def test_a_broken_parity_is_exit_2_and_leaves_no_bundle(runs, tmp_path, monkeypatch):
    from medml_cli.runs import onnx_bundle

    real = onnx_bundle.OnnxModel.predict_proba
    monkeypatch.setattr(onnx_bundle.OnnxModel, "predict_proba",
                        lambda self, X: np.clip(real(self, X) + 1e-3, 0, 1))
    out = tmp_path / "bundle"
    result = run_cli("export", runs["heart_disease_logreg"], "--output", out)
    assert result.exit_code == 2
    assert "parity check failed" in result.stderr and "no bundle was written" in result.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []
    # the default output folder inside the run is not left behind either
    run = tmp_path / "run"
    shutil.copytree(runs["heart_disease_logreg"], run, ignore=shutil.ignore_patterns("exports"))
    result = run_cli("export", run)
    assert result.exit_code == 2 and not (run / "exports").exists()


def test_unknown_format_failed_run_and_unwritable_output_are_exit_2(runs, tmp_path):
    run = runs["heart_disease_logreg"]
    result = run_cli("export", run, "--format", "pmml")
    assert result.exit_code == 2 and "pmml" in result.stderr and "onnx" in result.stderr

    failed = tmp_path / "failed-run"
    shutil.copytree(run, failed, ignore=shutil.ignore_patterns("exports"))
    status = json.loads((failed / "status.json").read_text())
    status.update(state="failed", error="training crashed")
    (failed / "status.json").write_text(json.dumps(status))
    result = run_cli("export", failed)
    assert result.exit_code == 2 and "failed" in result.stderr
    assert not (failed / "exports").exists()

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_cli("export", run, "--output", blocker / "bundle")
    assert result.exit_code == 2 and "cannot write the bundle" in result.stderr
    assert blocker.read_text() == "not a folder"

    result = run_cli("export", tmp_path / "no-such-run")
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_an_existing_bundle_needs_overwrite(bundles, runs):
    run = runs["heart_disease_logreg"]
    again = run_cli("export", run)
    assert again.exit_code == 2 and "--overwrite" in again.stderr
    replaced = run_cli("export", run, "--overwrite")
    assert replaced.exit_code == 0 and Path(replaced.last_line) == bundles[
        "heart_disease_logreg"]


@pytest.mark.parametrize("victim", ["model.onnx", "schema.json", "card.json"])
def test_a_tampered_bundle_is_refused_at_predict(bundles, runs, tmp_path, victim):
    bundle = tmp_path / "bundle"
    shutil.copytree(bundles["heart_disease_rf"], bundle)
    path = bundle / victim
    data = path.read_bytes()
    path.write_bytes(data[:-2] + (b"}\n" if victim != "model.onnx" else b"\x00\x00"))
    if path.read_bytes() == data:
        path.write_bytes(data + b" ")
    result = run_cli("predict", bundle, "--input",
                     _input_csv(runs["heart_disease_rf"], tmp_path / "in.csv"))
    assert result.exit_code == 2
    assert victim in result.stderr and "changed after export" in result.stderr


def test_predict_with_a_tabular_bundle_does_not_import_tensorflow(bundles, runs, tmp_path):
    data = _input_csv(runs["diabetes_svr"], tmp_path / "in.csv")
    code = ("import sys; from pathlib import Path; "
            "from medml_cli.workflows.predict import predict_with_run; "
            f"r = predict_with_run(Path({str(bundles['diabetes_svr'])!r}), Path({str(data)!r}));"
            " assert len(r.frame) > 400; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-2000:]


def test_cnn_export_matches_keras_and_predicts_like_the_run(tmp_path):
    runs_dir = tmp_path / "runs"
    trained = run_cli("train", CONFIGS / "lung_ct_cnn3d.yaml", "--runs-dir", runs_dir,
                      *TINY_CNN)
    assert trained.exit_code == 0, trained.stderr
    run = Path(trained.last_line)
    exported = run_cli("export", run, "--output", tmp_path / "cnn-bundle")
    assert exported.exit_code == 0, exported.stderr
    bundle = Path(exported.last_line)
    signature = json.loads((bundle / "signature.json").read_text())
    assert signature["kind"] == "image" and signature["parity"]["tolerance"] == 1e-4
    assert signature["parity"]["max_abs_diff"] <= 1e-4 and signature["parity"]["rows"] > 0
    assert signature["image"]["hu_window"] == [-1000.0, 400.0]
    assert signature["image"]["input_shape"] == [16, 16, 16, 1]
    assert signature["requires"]["onnxruntime"] == ">=1.19"  # no tree operators
    assert "ai.onnx" in signature["opset"]
    rng = np.random.default_rng(7)
    np.save(tmp_path / "volumes.npy",
            rng.uniform(-1200, 600, (6, 16, 16, 16)).astype(np.float32))
    by_run = run_cli("predict", run, "--input", tmp_path / "volumes.npy")
    by_bundle = run_cli("predict", bundle, "--input", tmp_path / "volumes.npy")
    assert by_run.exit_code == 0 and by_bundle.exit_code == 0, by_bundle.stderr
    a = pd.read_csv(pd.io.common.StringIO(by_run.stdout))
    b = pd.read_csv(pd.io.common.StringIO(by_bundle.stdout))
    assert list(a.columns) == list(b.columns)
    assert np.abs(a["probability"] - b["probability"]).max() <= 1e-4
    assert "SYNTHETIC" in by_bundle.stderr


def test_a_site_updated_model_exports_within_1e_5(runs):
    """`evaluate --update recalibrate` saves medml's own wrapper; it converts too."""
    updated = run_cli("evaluate", runs["heart_disease_logreg"], "--data",
                      CONFIGS / "data" / "heart_disease_other_sites.yaml", "--update",
                      "recalibrate")
    assert updated.exit_code == 0, updated.stderr
    line = next(x for x in updated.stderr.splitlines() + updated.stdout.splitlines()
                if "updated model saved as run:" in x)
    run = Path(line.split("saved as run:", 1)[1].strip())
    exported = run_cli("export", run)
    assert exported.exit_code == 0, exported.stderr
    signature = json.loads((Path(exported.last_line) / "signature.json").read_text())
    assert signature["parity"]["max_abs_diff"] <= 1e-5


def test_overwrite_never_replaces_a_folder_that_is_not_a_bundle(runs, tmp_path):
    run = runs["heart_disease_logreg"]
    notes = tmp_path / "mine"
    notes.mkdir()
    (notes / "notes.txt").write_text("keep me")
    for folder in (notes, run):  # a user's folder, and the run itself
        before = sorted(p.name for p in folder.iterdir())
        result = run_cli("export", run, "--output", folder, "--overwrite")
        assert result.exit_code == 2 and "not a medml export bundle" in result.stderr
        assert sorted(p.name for p in folder.iterdir()) == before
    assert (notes / "notes.txt").read_text() == "keep me"
    assert (run / "metrics.json").exists()


def test_an_output_that_cannot_be_created_is_exit_2(runs):
    result = run_cli("export", runs["heart_disease_logreg"], "--output", "/proc/no-bundle")
    assert result.exit_code == 2 and "cannot write the bundle" in result.stderr
    assert "internal error" not in result.stderr
