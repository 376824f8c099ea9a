"""Tuning an image (CNN) run (`tune:` on a lung-CT task): one Optuna study on the training and
validation images, trials pruned by epoch, the test images never seen by it; config checks,
resume, determinism and what the run records. Tiny CNNs on a small synthetic phantom."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medml_cli.config.loader import load_experiment_config
from medml_cli.errors import ConfigError
from tests.conftest import read_metrics, run_cli, train_text, write_config

LUNG = """\
task: lung-ct
seed: 42
data: {type: lung-phantom, dim: 2, size: 32, n_patients: 24, samples_per_patient: 4}
split: {method: holdout, test_size: 0.25, val_size: 0.3}
model: {type: cnn2d, filters: [4, 8], dense_units: 8, epochs: 5, patience: 5}
evaluation: {bootstrap: 50, explain: none, voxel_logistic_baseline: false}
"""

EPOCHS = 5
# two learning rates that learn and two so large the network collapses to a constant (AUROC
# 0.5 on the validation images): once five trials have finished the pruner stops those
GRID = LUNG + """\
tune:
  sampler: grid
  pruning_warmup_epochs: 0
  parameters:
    model.learning_rate: [0.001, 0.002, 0.5, 0.9]
    model.dropout: [0.0, 0.5]
"""
N_TRIALS = 8


def _problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_experiment_config(write_config(tmp_path, text))
    return "\n".join(caught.value.problems)


def _study_trials(run: Path) -> list:
    import optuna

    storage = optuna.storages.RDBStorage(f"sqlite:///{run / 'tune' / 'studies.db'}")
    try:
        return optuna.load_study(study_name="validation", storage=storage).get_trials()
    finally:
        storage.engine.dispose()


# --------------------------------------------------------------------------- config checks
HEART = "task: heart-disease\ndata: {type: uci-heart-disease, sites: [cleveland]}\n" \
        "model: {type: logistic-regression}\n"


@pytest.mark.parametrize(("text", "expected"), [
    (LUNG + "tune: {inner_splits: 3, parameters: {model.dropout: [0.0, 0.5]}}\n",
     "tune.inner_splits: image tasks are tuned on their validation images"),
    (HEART + "tune: {pruner: median, parameters: {model.C: [0.1, 1.0]}}\n",
     "tune.pruner: pruning stops a CNN trial between epochs"),
    (HEART + "tune: {pruning_warmup_epochs: 1, parameters: {model.C: [0.1, 1.0]}}\n",
     "tune.pruning_warmup_epochs: applies to image (CNN) tasks only"),
    (LUNG + "tune: {parameters: {model.type: [cnn2d, cnn3d]}}\n",
     "'cnn3d' takes 3D input but the data are 2D"),
    (LUNG + "tune: {parameters: {model.learning_rate: {distribution: log-uniform, "
            "low: 0.001, high: 5}}}\n", "5.0 is not valid for cnn2d"),
    (LUNG + "tune: {parameters: {model.filterz: [8, 16]}}\n",
     "not a hyperparameter of cnn2d; did you mean 'filters'?"),
    (LUNG + "tune: {parameters: {model.type: [cnn2d, random-forest]}}\n",
     "'random-forest' does not fit task 'lung-ct'"),
    (LUNG + "tune: {pruner: mean, parameters: {model.dropout: [0.0]}}\n", "tune.pruner"),
    (LUNG + "tune: {pruning_warmup_epochs: -1, parameters: {model.dropout: [0.0]}}\n",
     "tune.pruning_warmup_epochs"),
])
def test_bad_image_tune_blocks_are_refused_before_anything_runs(tmp_path, text, expected):
    assert expected in _problems(tmp_path, text)


def test_image_tune_blocks_and_their_resolved_configs_load(tmp_path):
    from medml_cli.config.loader import config_to_yaml

    cfg = load_experiment_config(write_config(tmp_path, GRID))
    assert cfg.tune.pruner is None and cfg.tune.pruning_warmup_epochs == 0
    # a run's config.yaml writes every default (inner_splits included) and must load again
    again = load_experiment_config(write_config(tmp_path, config_to_yaml(cfg), "resolved.yaml"))
    assert again.tune == cfg.tune
    shipped = load_experiment_config(Path(__file__).parents[1] / "configs"
                                     / "lung_ct_cnn2d_tuned.yaml")
    assert shipped.tune is not None and shipped.data.type == "lung-phantom"


def test_a_bad_image_tune_block_exits_2_and_writes_no_run(tmp_path, runs_dir):
    config = write_config(tmp_path, LUNG + "tune: {inner_splits: 3, parameters: "
                                           "{model.dropout: [0.0, 0.5]}}\n")
    result = run_cli("train", config, "--runs-dir", runs_dir)
    assert result.exit_code == 2
    assert "tune.inner_splits" in result.stderr and "Traceback" not in result.stderr
    assert not runs_dir.exists() or not list(runs_dir.iterdir())


def test_validation_images_of_one_class_exit_2_before_a_run(tmp_path, runs_dir):
    # 10 patients: the validation share is one patient, whose 4 images share one label
    text = LUNG.replace("n_patients: 24", "n_patients: 10").replace(
        "val_size: 0.3", "val_size: 0.15").replace("size: 32", "size: 16")
    config = write_config(tmp_path, text + "tune: {parameters: {model.dropout: [0.0, 0.5]}}\n")
    result = run_cli("train", config, "--runs-dir", runs_dir)
    assert result.exit_code == 2, result.stderr
    assert "cannot be computed on the" in result.stderr and "split.val_size" in result.stderr
    assert not runs_dir.exists() or not list(runs_dir.iterdir())


# --------------------------------------------------------------------------- a tuned run
@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tuned")
    return train_text(folder, GRID)


@pytest.mark.tensorflow
def test_tuned_run_records_the_study_and_the_test_score(tuned_run):
    metrics = read_metrics(tuned_run)
    block = metrics["tuning"]
    assert block["scheme"] == "validation-images" and block["metric"] == "auroc"
    assert block["trials"] == N_TRIALS and block["pruner"] == "median"
    assert block["trials_completed"] + block["trials_pruned"] + block["trials_failed"] \
        == N_TRIALS
    chosen = block["final"]["params"]
    assert set(chosen) == {"model.learning_rate", "model.dropout"}
    # the shipped model is refitted with the chosen values exactly as the trial was fitted
    assert block["final_validation"] == pytest.approx(block["best_validation"], abs=1e-9)
    assert block["test"] == pytest.approx(metrics["metrics"]["auroc"], abs=1e-9)
    assert block["optimism"] == pytest.approx(block["best_validation"] - block["test"])
    card = json.loads((tuned_run / "model" / "card.json").read_text())
    assert card["tuned_parameters"] == chosen
    report = (tuned_run / "report.md").read_text()
    assert "## Tuning (on the validation images)" in report
    assert "chosen on the validation images and reported on the test images" in report
    assert "Model: tuned on the validation images" in report
    assert f"{block['trials_completed']} / {block['trials_pruned']} / 0" in report
    model_card = (tuned_run / "model" / "card.md").read_text()
    assert "tuned on the validation images (the test images never reached the study)" \
        in model_card
    reporting = card["reporting"]["metrics"]
    assert reporting["tuning_scheme"] == "validation-images"
    assert reporting["tuning_mean_optimism"] == pytest.approx(block["optimism"])
    log = (tuned_run / "log.txt").read_text()
    assert f"trial 1/{N_TRIALS}: validation auroc" in log
    assert not (tuned_run / "checkpoints").exists()


@pytest.mark.tensorflow
def test_hopeless_trials_are_pruned_before_their_last_epoch(tuned_run):
    from optuna.trial import TrialState

    trials = _study_trials(tuned_run)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, [(t.params, t.state) for t in trials]
    assert read_metrics(tuned_run)["tuning"]["trials_pruned"] == len(pruned)
    for trial in pruned:
        assert trial.params["model.learning_rate"] >= 0.5  # only the collapsing ones
        assert max(trial.intermediate_values) < EPOCHS - 1  # stopped before the last epoch
        assert len(trial.user_attrs["epoch_scores"]) < EPOCHS
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value)
    assert read_metrics(tuned_run)["tuning"]["final"]["params"] == best.params
    log = (tuned_run / "log.txt").read_text()
    assert f"trial {pruned[0].number + 1}/{N_TRIALS} pruned at epoch" in log


@pytest.mark.tensorflow
def test_the_test_images_never_reach_the_study(tuned_run, tmp_path, monkeypatch):
    from medml_cli.workflows.train_image import ImageTraining

    plan = ImageTraining.plan

    def flipped_test_labels(self, cfg, dataset, problem, *, resume):
        split = plan(self, cfg, dataset, problem, resume=resume)
        dataset.labels[split["test"]] = 1 - dataset.labels[split["test"]]
        return split

    monkeypatch.setattr(ImageTraining, "plan", flipped_test_labels)
    result = run_cli("--quiet", "train", write_config(tmp_path, GRID), "--runs-dir",
                     tmp_path / "runs")
    assert result.exit_code == 0, result.stderr
    flipped, original = read_metrics(Path(result.last_line)), read_metrics(tuned_run)
    assert flipped["tuning"]["final"]["params"] == original["tuning"]["final"]["params"]
    assert [t.value for t in _study_trials(Path(result.last_line))] == \
        [t.value for t in _study_trials(tuned_run)]
    # the flip did reach the test metrics: AUROC on flipped labels is 1 - AUROC
    assert flipped["metrics"]["auroc"] == pytest.approx(1 - original["metrics"]["auroc"])


# --------------------------------------------------------------------------- resume
@pytest.mark.tensorflow
def test_an_interrupted_image_tune_resumes_without_repeating_finished_trials(
        tuned_run, tmp_path, monkeypatch):
    from optuna.trial import TrialState

    from medml_cli.workflows import tuning

    calls: list[int] = []
    original = tuning.ImageTuner._objective
    interrupt_at: int | None = N_TRIALS - 1  # after the first pruned trial has finished

    def counting(self, name, rows):
        objective = original(self, name, rows)

        def wrapped(trial):
            calls.append(trial.number)
            if interrupt_at is not None and len(calls) == interrupt_at:
                raise KeyboardInterrupt
            return objective(trial)
        return wrapped

    monkeypatch.setattr(tuning.ImageTuner, "_objective", counting)
    stopped_run = run_cli("--quiet", "train", write_config(tmp_path, GRID), "--runs-dir",
                          tmp_path / "runs")
    assert stopped_run.exit_code == 130, stopped_run.stderr
    (stopped,) = (tmp_path / "runs").glob("*-interrupted")
    done = [t for t in _study_trials(stopped)
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(done) == N_TRIALS - 2
    assert any(t.state == TrialState.PRUNED for t in done)

    calls.clear()
    interrupt_at = None
    result = run_cli("--quiet", "train", "--resume", stopped)
    assert result.exit_code == 0, result.stderr
    assert len(calls) == 2  # the interrupted trial again, then the last one
    resumed, fresh = read_metrics(Path(result.last_line)), read_metrics(tuned_run)
    # same seed, same study: the same choice and the same held-out metrics
    assert resumed["tuning"]["final"]["params"] == fresh["tuning"]["final"]["params"]
    assert resumed["metrics"] == fresh["metrics"]
    assert resumed["tuning"]["trials_pruned"] == fresh["tuning"]["trials_pruned"]
    assert "resuming, " in (Path(result.last_line) / "log.txt").read_text()



SHAPES = """\
name: shapes-tuned
seed: 5
task: image-classification
data: {type: medmnist-npz, path: shapes.npz, use_file_splits: true}
split: {method: holdout}
model: {type: cnn2d, filters: [4, 8], dense_units: 8, epochs: 2, batch_size: 32}
evaluation: {bootstrap: 0, explain: none}
tune:
  trials: 2
  parameters:
    model.learning_rate: [0.001, 0.003]
"""


@pytest.mark.tensorflow
def test_a_k_class_image_tune_optimises_the_multiclass_primary_metric(tmp_path, runs_dir):
    from tests.imaging.shapes import make_shapes_npz

    make_shapes_npz(tmp_path / "shapes.npz", 40, seed=3)
    result = run_cli("train", write_config(tmp_path, SHAPES), "--runs-dir", runs_dir)
    assert result.exit_code == 0, result.stderr
    metrics = read_metrics(Path(result.last_line))
    assert metrics["problem"] == "multiclass"
    assert metrics["tuning"]["metric"] == "macro_auroc"  # the task's binary "auroc" is not
    assert metrics["tuning"]["test"] == pytest.approx(metrics["metrics"]["macro_auroc"])
    # a metric the k-class data do not have is a config error before any run folder
    wrong = write_config(tmp_path, SHAPES.replace("  trials: 2\n",
                                                  "  trials: 2\n  metric: auroc\n"), "w.yaml")
    result = run_cli("train", wrong, "--runs-dir", tmp_path / "other")
    assert result.exit_code == 2
    assert "'auroc' is not a metric of these data's problem type (multiclass)" in result.stderr
    assert not (tmp_path / "other").exists() or not any((tmp_path / "other").iterdir())
