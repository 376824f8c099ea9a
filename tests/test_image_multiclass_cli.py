"""A k-class image run through the CLI: train on a MedMNIST-layout file of four shapes, then
evaluate and predict with the saved softmax CNN."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.imaging.shapes import make_shapes_npz

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory) -> Path:
    from tests.conftest import run_cli

    folder = tmp_path_factory.mktemp("shapes")
    make_shapes_npz(folder / "shapes.npz", 40, seed=3)
    (folder / "shapes.yaml").write_text(
        "name: shapes\nseed: 5\ntask: image-classification\n"
        "data: {type: medmnist-npz, path: shapes.npz, use_file_splits: true}\n"
        "split: {method: holdout}\n"
        "model: {type: cnn2d, filters: [8, 16], dense_units: 16, epochs: 2, batch_size: 32}\n"
        "evaluation: {bootstrap: 100, explain: gradcam, explain_n: 2}\n")
    result = run_cli("train", folder / "shapes.yaml", "--runs-dir", folder / "runs")
    assert result.exit_code == 0, result.stderr
    return Path(result.last_line)


def test_k_class_image_run_records(shapes_run):
    metrics = json.loads((shapes_run / "metrics.json").read_text())
    assert metrics["problem"] == "multiclass"
    assert set(metrics["per_class"]) == {"0", "1", "2", "3"}
    assert metrics["n"]["classes"] == {"0": 12, "1": 12, "2": 12, "3": 12}
    card = json.loads((shapes_run / "model" / "card.json").read_text())
    assert card["classes"] == ["0", "1", "2", "3"] and card["threshold"] is None
    frame = pd.read_csv(shapes_run / "predictions.csv")
    proba = frame[[f"probability_{c}" for c in range(4)]].to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert (frame["predicted_class"] == proba.argmax(axis=1)).all()
    assert len(list((shapes_run / "plots" / "gradcam").glob("*.png"))) == 2
    for name in ("roc.png", "confusion_matrix.png", "learning_curves.png"):
        assert (shapes_run / "plots" / name).exists()


def test_k_class_image_run_evaluates_and_predicts(cli, shapes_run, tmp_path):
    trained = json.loads((shapes_run / "metrics.json").read_text())
    result = cli("evaluate", shapes_run, "--fail-under", "macro_auroc=0.0")
    assert result.exit_code == 0, result.stderr
    again = json.loads((Path(result.last_line) / "metrics.json").read_text())
    assert again["metrics"]["macro_auroc"] == pytest.approx(trained["metrics"]["macro_auroc"],
                                                            abs=1e-6)
    images = np.load(shapes_run.parents[1] / "shapes.npz")["test_images"][:5]
    np.save(tmp_path / "five.npy", images)
    out = tmp_path / "five.csv"
    predicted = cli("predict", shapes_run, "--input", tmp_path / "five.npy", "--output", out)
    assert predicted.exit_code == 0, predicted.stderr
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["id", *(f"probability_{c}" for c in range(4)),
                                   "predicted_class", "predicted_label", "warnings"]
    assert len(frame) == 5
