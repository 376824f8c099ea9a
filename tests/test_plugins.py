"""Extensions are one file each: models declare the skops types they need, task presets are
discovered file by file, CNN networks register their dimensionality, and installed packages
add all of these through ``medml.plugins`` entry points."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pandas as pd
import pytest

from medml_cli import plugins
from medml_cli.data.sources.uci_heart import FEATURES, load_frame
from medml_cli.models.base import register_model
from medml_cli.registry import MODELS, TASKS, model_trusted_types
from medml_cli.runs.artifacts import TRUSTED_TYPES, trusted_types
from medml_cli.tasks import presets
from tests.conftest import REPO, write_config

plugins.load_plugins()


def patients_csv(tmp_path: Path, n: int = 5) -> Path:
    path = tmp_path / "patients.csv"
    load_frame(["hungarian"]).head(n)[["patient_id", *FEATURES]].to_csv(path, index=False)
    return path


def test_trusted_types_come_from_the_registered_models():
    assert TRUSTED_TYPES == ("numpy.dtype",)
    extra = {name: set(MODELS.entry(name).extra["trusted_types"]) for name in MODELS.names()}
    assert "sklearn.tree._tree.Tree" in extra["random-forest"]
    assert "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper" in \
        extra["gradient-boosting"]
    assert "sklearn.calibration._CalibratedClassifier" in extra["svm"]
    # evaluation.recalibration may wrap any classifier, so every classifier trusts calibration
    assert "sklearn.calibration._SigmoidCalibration" in extra["logistic-regression"]
    assert "sklearn.calibration._SigmoidCalibration" not in extra["ridge"]
    assert trusted_types() == {*TRUSTED_TYPES, *model_trusted_types()}


def test_a_model_that_leaves_the_registry_takes_its_trust_with_it():
    from sklearn.dummy import DummyClassifier

    register_model("trust-probe", config=type("C", (), {}), summary="x",
                   problems=("regression",), trusted_types=("medml_probe.Secret",))(
        lambda *a, **k: DummyClassifier())
    try:
        assert "medml_probe.Secret" in trusted_types()
    finally:
        MODELS.unregister("trust-probe")
    assert "medml_probe.Secret" not in trusted_types()
    with pytest.raises(ValueError, match="dotted type names"):
        register_model("trust-bad", config=type("C", (), {}), summary="x",
                       problems=("regression",), trusted_types=("Secret",))


@pytest.mark.parametrize("problem", ["heart-disease", "diabetes"])
def test_knn_is_one_file_and_its_saved_model_predicts(cli, tmp_path, problem):
    assert (REPO / "medml_cli" / "models" / "knn.py").is_file()
    config = write_config(tmp_path, textwrap.dedent(f"""\
        task: {problem}
        data: {{type: {'uci-heart-disease' if problem == 'heart-disease' else 'diabetes'}}}
        split: {{method: holdout, test_size: 0.25}}
        model: {{type: k-nearest-neighbours, n_neighbors: 7, weights: distance}}
        """))
    result = cli("train", config, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.stderr
    run = Path(result.last_line)
    if problem == "diabetes":
        from sklearn.datasets import load_diabetes

        inputs = tmp_path / "in.csv"
        load_diabetes(scaled=False, as_frame=True).frame.head(4).drop(columns="target") \
            .to_csv(inputs, index=False)
    else:
        inputs = patients_csv(tmp_path)
    result = cli("predict", run, "--input", inputs, "--output", tmp_path / "pred.csv")
    assert result.exit_code == 0, result.stderr
    assert len(pd.read_csv(tmp_path / "pred.csv")) == len(pd.read_csv(inputs))


def test_task_presets_are_one_file_each():
    files = {m.name.replace("_", "-") for m in pkgutil.iter_modules(presets.__path__)}
    assert files == set(TASKS.names())
    assert not (REPO / "medml_cli" / "tasks" / "presets.py").exists()


def test_a_broken_plugin_warns_and_medml_keeps_working(monkeypatch):
    class FakeDist:
        name = "medml-broken-plugin"

    class FakeEntryPoint:
        name, value, module, dist = "broken", "medml_no_such_module", "medml_no_such_module", \
            FakeDist()

    monkeypatch.setattr(plugins, "_done", False)
    monkeypatch.setattr(plugins, "_loaded", {})
    monkeypatch.setattr(plugins, "entry_points", lambda group: [FakeEntryPoint()])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert plugins.load_plugins() == {}
    (warning,) = [w for w in caught if issubclass(w.category, plugins.PluginWarning)]
    message = str(warning.message)
    assert "medml-broken-plugin" in message and "ModuleNotFoundError" in message
    assert "medml_no_such_module" in message


def test_loading_the_plugins_does_not_import_tensorflow():
    code = ("import sys; from medml_cli.plugins import load_plugins; load_plugins(); "
            "print('tensorflow' in sys.modules or 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


PLUGIN_MODULE = '''\
"""A tiny medml plug-in: a k-nearest-neighbours variant with its own trusted types."""
from typing import Literal

from sklearn.neighbors import KNeighborsClassifier

from medml_cli.models.base import register_model
from medml_cli.models.preprocessing import tabular_pipeline
from medml_cli.schemas import StrictModel


class ManhattanConfig(StrictModel):
    type: Literal["manhattan-neighbours"]
    n_neighbors: int = 9


@register_model("manhattan-neighbours", config=ManhattanConfig,
                summary="k-NN with the Manhattan distance (test plug-in)",
                problems=("binary-classification",),
                trusted_types=("sklearn.neighbors._ball_tree.BallTree",
                               "sklearn.metrics._dist_metrics.ManhattanDistance64"))
def build(cfg, *, problem, schema, seed):
    return tabular_pipeline(schema, KNeighborsClassifier(
        n_neighbors=cfg.n_neighbors, algorithm="ball_tree", metric="manhattan"), scale=True)
'''


def _medml(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    return subprocess.run([sys.executable, "-m", "medml_cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_an_installed_plugin_adds_a_model_that_trains_and_predicts(tmp_path):
    dist = tmp_path / "plugin"
    dist.mkdir()
    (dist / "pyproject.toml").write_text(textwrap.dedent("""\
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "medml-tiny-plugin"
        version = "0.1"

        [project.entry-points."medml.plugins"]
        mymodel = "medml_tiny_plugin"

        [tool.setuptools]
        py-modules = ["medml_tiny_plugin"]
        """))
    (dist / "medml_tiny_plugin.py").write_text(PLUGIN_MODULE)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--no-deps", "--no-build-isolation", "--no-index",
                    str(dist)], check=True, capture_output=True, cwd=tmp_path, timeout=300)
    try:
        listed = _medml("models", "list", "--json", cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert "manhattan-neighbours" in listed.stdout
        config = write_config(tmp_path, "task: heart-disease\n"
                                        "split: {method: holdout, test_size: 0.25}\n"
                                        "model: {type: manhattan-neighbours, n_neighbors: 5}\n")
        trained = _medml("train", config, "--runs-dir", tmp_path / "runs", cwd=tmp_path)
        assert trained.returncode == 0, trained.stderr
        run = Path(trained.stdout.strip().splitlines()[-1])
        out = tmp_path / "pred.csv"
        predicted = _medml("predict", run, "--input", patients_csv(tmp_path), "--output", out,
                           cwd=tmp_path)
        assert predicted.returncode == 0, predicted.stderr
        assert len(pd.read_csv(out)) == 5

        # a plug-in that breaks on import: a warning naming it, and medml still works
        (dist / "medml_tiny_plugin.py").write_text("raise RuntimeError('plug-in is broken')\n")
        subprocess.run([*pip, "install", "--no-deps", "--no-build-isolation", "--no-index",
                        "--force-reinstall", str(dist)], check=True, capture_output=True,
                       cwd=tmp_path, timeout=300)
        helped = _medml("models", "list", cwd=tmp_path)
        assert helped.returncode == 0, helped.stderr
        assert "medml-tiny-plugin" in helped.stderr and "plug-in is broken" in helped.stderr
        assert _medml("--help", cwd=tmp_path).returncode == 0
        # without its plug-in the run is refused cleanly (its model type is unknown)
        refused = _medml("predict", run, "--input", patients_csv(tmp_path), cwd=tmp_path)
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
        assert "manhattan-neighbours" in refused.stderr
    finally:
        subprocess.run([*pip, "uninstall", "-y", "medml-tiny-plugin"], capture_output=True,
                       cwd=tmp_path, timeout=300)


@pytest.fixture
def tiny_network():
    """A network registered from this test module: one file is all a network needs."""
    from medml_cli.models.cnn import register_network
    from medml_cli.registry import NETWORKS

    @register_network("tinynet3d", dims=3, summary="one Conv3D and global pooling (test)")
    def tiny(keras, x, *, dims, filters, seeds, **_):
        x = keras.layers.Conv3D(int(filters[0]), 3, padding="same", activation="relu",
                                name="last_conv")(x)
        return keras.layers.GlobalAveragePooling3D(name="global_pool")(x)

    yield "tinynet3d"
    NETWORKS.unregister("tinynet3d")
    MODELS.unregister("tinynet3d")


def test_networks_declare_their_dimensionality():
    from medml_cli.models.keras.networks import ARCHITECTURES
    from medml_cli.registry import NETWORKS

    assert dict(ARCHITECTURES) == {"cnn2d": 2, "cnn3d": 3, "resnet2d": 2, "resnet3d": 3}
    assert set(NETWORKS.names()) <= set(MODELS.names())
    assert [e.extra["dims"] for e in NETWORKS.entries()] == [2, 3, 2, 3]


def test_a_new_network_is_listed_and_checked_for_dimensionality(cli, tiny_network):
    import json

    from medml_cli.config.sections import networks_of

    result = cli("models", "list", "--json")
    assert result.exit_code == 0, result.stderr
    listed = {m["name"]: m for m in json.loads(result.stdout)}
    assert "image" in listed[tiny_network]["tags"]
    config = MODELS.entry(tiny_network).config(type=tiny_network)
    assert config.spatial_dims == 3
    assert networks_of(3) == "cnn3d or resnet3d or tinynet3d"


@pytest.mark.tensorflow
def test_a_new_network_builds(tiny_network):
    from medml_cli.models.keras.networks import build_network, last_conv_layer_name

    model = build_network(tiny_network, (8, 8, 8, 1), filters=(4,), seed=0)
    assert model.output_shape == (None, 1)
    assert last_conv_layer_name(model) == "last_conv"
    with pytest.raises(ValueError, match="3 spatial dimensions"):
        build_network(tiny_network, (8, 8, 1), filters=(4,))
