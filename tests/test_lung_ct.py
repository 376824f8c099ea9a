"""The lung-CT task end to end through the CLI, on a small synthetic phantom (few, small)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.conftest import CONFIGS, read_metrics
from tests.imaging.test_dicom_series import write_slice

pytestmark = pytest.mark.tensorflow

TINY = ["--set", "data.n_patients=10", "--set", "data.samples_per_patient=4",
        "--set", "data.size=16", "--set", "model.filters=[4,8]", "--set", "model.dense_units=8",
        "--set", "model.epochs=2", "--set", "evaluation.bootstrap=100",
        "--set", "evaluation.explain_n=2"]


@pytest.fixture(scope="module")
def cnn3d_run(tmp_path_factory) -> Path:
    from tests.conftest import run_cli

    runs = tmp_path_factory.mktemp("runs")
    result = run_cli("train", CONFIGS / "lung_ct_cnn3d.yaml", "--runs-dir", runs, *TINY)
    assert result.exit_code == 0, result.stderr
    return Path(result.last_line)


def test_cnn3d_run_is_complete_and_labelled_synthetic(cnn3d_run):
    metrics = read_metrics(cnn3d_run)
    assert metrics["synthetic"] is True and metrics["task"] == "lung-ct"
    assert 0.0 <= metrics["metrics"]["auroc"] <= 1.0
    assert "voxel-logistic-regression" in metrics["reference"]
    assert metrics["training"]["epochs_run"] == 2
    assert metrics["n"]["patients"] >= 2
    for name in ("model/model.keras", "model/card.json", "plots/learning_curves.png",
                 "plots/roc.png", "report.md", "report.html", "predictions.csv"):
        assert (cnn3d_run / name).exists(), name
    assert len(list((cnn3d_run / "plots" / "gradcam").glob("*.png"))) == 2
    assert "SYNTHETIC" in (cnn3d_run / "report.md").read_text()
    assert "SYNTHETIC" in (cnn3d_run / "report.html").read_text()
    assert not (cnn3d_run / "checkpoints").exists()  # removed once the run completed
    predictions = pd.read_csv(cnn3d_run / "predictions.csv")
    assert predictions["patient"].nunique() == metrics["n"]["patients"]


def test_split_is_grouped_by_patient(cnn3d_run):
    from medml_cli.workflows.run_model import load_run_config
    from medml_cli.workflows.train import load_dataset
    from medml_cli.workflows.train_image import image_split

    cfg = load_run_config(cnn3d_run)
    dataset = load_dataset(cfg)
    split = image_split(dataset, cfg)
    patients = {part: set(dataset.groups[index]) for part, index in split.items()}
    assert not patients["train"] & patients["test"]
    assert not patients["train"] & patients["val"] and not patients["val"] & patients["test"]
    predictions = pd.read_csv(cnn3d_run / "predictions.csv")
    assert set(predictions["patient"]) == patients["test"]


def test_evaluate_reproduces_the_held_out_metrics(cli, cnn3d_run):
    result = cli("evaluate", cnn3d_run, "--json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["metrics"]["auroc"] == pytest.approx(read_metrics(cnn3d_run)["metrics"]["auroc"])


def test_predict_on_a_dicom_series_tiles_the_volume(cli, cnn3d_run, tmp_path):
    series = tmp_path / "patient_0042"
    series.mkdir()
    for i in range(6):
        write_slice(series / f"{i}.dcm", i)
    out = tmp_path / "pred.csv"
    result = cli("predict", cnn3d_run, "--input", series, "--output", out)
    assert result.exit_code == 0, result.stderr
    frame = pd.read_csv(out)
    assert len(frame) == 4  # 6x32x32 voxels in 16^3 patches: 1 x 2 x 2
    assert frame["probability"].between(0, 1).all()
    assert frame["id"].str.startswith("patient_0042:").all()
    assert "SYNTHETIC" in result.stderr


def test_predict_refuses_inputs_that_do_not_fit(cli, cnn3d_run, tmp_path):
    np.savez(tmp_path / "wrong.npz", test_images=np.zeros((2, 28, 28, 28), np.uint8))
    result = cli("predict", cnn3d_run, "--input", tmp_path / "wrong.npz")
    assert result.exit_code == 2 and "(28, 28, 28)" in result.stderr
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "x.png")
    result = cli("predict", cnn3d_run, "--input", tmp_path / "x.png")
    assert result.exit_code == 2 and "Hounsfield" in result.stderr
    (tmp_path / "bad.dcm").write_bytes(b"not a dicom file at all")
    result = cli("predict", cnn3d_run, "--input", tmp_path / "bad.dcm")
    assert result.exit_code == 2 and "Traceback" not in result.stderr


def test_predict_on_matching_npz(cli, cnn3d_run, tmp_path):
    np.savez(tmp_path / "ok.npz", images=np.full((3, 16, 16, 16), -800.0, np.float32))
    result = cli("predict", cnn3d_run, "--input", tmp_path / "ok.npz")
    assert result.exit_code == 0, result.stderr
    assert len(pd.read_csv(__import__("io").StringIO(result.stdout))) == 3


def test_tampered_keras_model_is_refused(cli, cnn3d_run, tmp_path):
    import shutil

    copy = tmp_path / cnn3d_run.name
    shutil.copytree(cnn3d_run, copy)
    model = copy / "model" / "model.keras"
    model.write_bytes(model.read_bytes()[:1000])
    np.savez(tmp_path / "ok.npz", images=np.zeros((1, 16, 16, 16), np.float32))
    result = cli("predict", copy, "--input", tmp_path / "ok.npz")
    assert result.exit_code == 2 and "changed since it was saved" in result.stderr


def test_cnn2d_on_slices(cli, runs_dir):
    result = cli("train", CONFIGS / "lung_ct_cnn2d.yaml", "--runs-dir", runs_dir, *TINY,
                 "--set", "data.size=32")
    assert result.exit_code == 0, result.stderr
    card = json.loads((Path(result.last_line) / "model" / "card.json").read_text())
    assert card["input_kind"] == "image2d" and card["input_shape"] == [32, 32, 1]


@pytest.mark.slow
def test_killed_cnn_run_resumes_from_its_checkpoint(tmp_path):
    """SIGKILL mid-training leaves a .tmp- run marked running; --resume finishes it."""
    runs = tmp_path / "runs"
    args = [sys.executable, "-m", "medml_cli", "train", str(CONFIGS / "lung_ct_cnn3d.yaml"),
            "--runs-dir", str(runs), *TINY, "--set", "model.epochs=40",
            "--set", "model.patience=100", "--set", "evaluation.explain=none"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.time() + 120
    state = None
    while time.time() < deadline:
        states = list(runs.glob(".tmp-*/checkpoints/train_state.json")) if runs.exists() else []
        if states and json.loads(states[0].read_text()).get("epoch", 0) >= 2:
            state = states[0]
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert state is not None, "no checkpoint appeared"
    run = state.parent.parent
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "running" and not (run / "metrics.json").exists()
    resumed = subprocess.run([sys.executable, "-m", "medml_cli", "train", "--resume", str(run)],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    final = Path(resumed.stdout.strip().splitlines()[-1])
    assert not final.name.startswith(".tmp") and final.parent == runs
    metrics = read_metrics(final)
    assert metrics["training"]["epochs_run"] == 40
    assert "resuming from epoch" in (final / "log.txt").read_text()
