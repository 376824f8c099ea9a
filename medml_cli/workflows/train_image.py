"""Training an image task (lung CT): grouped train/validation/test split, a Keras CNN with
early stopping and checkpoints, the voxel logistic-regression reference, plots, Grad-CAM.
With ``tune:``, an Optuna study on the training and validation images (pruned by epoch)
chooses the CNN's hyperparameters first; the test images are never seen by it.

TensorFlow is imported only through ``medml_cli.models.keras.estimator``, inside its methods.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from medml_cli.config.sections import networks_of
from medml_cli.data.image_base import ImageDataset
from medml_cli.errors import DataError, MedmlUsageError
from medml_cli.evaluation.report import image_data_lines
from medml_cli.evaluation.splits import holdout_split
from medml_cli.jsonio import read_json
from medml_cli.problems import ProblemType, dataset_classes, problem_of
from medml_cli.registry import MODELS
from medml_cli.runs.directory import RunDir
from medml_cli.workflows.heldout import card_fields, prediction_table
from medml_cli.workflows.kind import HeldOut, ProgressFn, TrainingKind

CHECKPOINTS = "checkpoints"
#: Skip the voxel logistic regression above this many (rows x voxels): it would take minutes.
MAX_VOXEL_REFERENCE_CELLS = 400_000_000


def image_split(dataset: ImageDataset, cfg: Any) -> dict[str, np.ndarray]:
    """Train / validation / test row indices, grouped by patient and stratified.

    A source with its own split (MedMNIST) keeps it; otherwise ``split.test_size`` of the
    patients are held out for testing and ``split.val_size`` of the rest for early stopping.
    """
    y = dataset.labels
    if dataset.splits:
        train = dataset.splits["train"]
        test = dataset.splits.get("test")
        val = dataset.splits.get("val")
        if test is None:
            raise DataError("the file's splits have no test part.",
                            "set `data.use_file_splits: false` to split it by seed.")
        if val is None or len(val) == 0:
            inner_train, inner_val = holdout_split(
                y[train], test_size=cfg.split.val_size, seed=cfg.seed + 1, classify=True,
                stratify=cfg.split.stratify, groups=None, setting="split.val_size")
            train, val = train[inner_train], train[inner_val]
        return {"train": np.asarray(train), "val": np.asarray(val), "test": np.asarray(test)}
    groups = dataset.groups
    train_full, test = holdout_split(y, test_size=cfg.split.test_size, seed=cfg.seed,
                                     classify=True, stratify=cfg.split.stratify, groups=groups)
    inner_groups = groups[train_full] if groups is not None else None
    inner_train, inner_val = holdout_split(
        y[train_full], test_size=cfg.split.val_size, seed=cfg.seed + 1, classify=True,
        stratify=cfg.split.stratify, groups=inner_groups, setting="split.val_size")
    return {"train": train_full[inner_train], "val": train_full[inner_val], "test": test}


def check_model_fits_data(cfg: Any, dataset: ImageDataset) -> None:
    """Raise a MedmlUsageError when the model's 2D/3D input does not match the data."""
    dims = cfg.model.spatial_dims  # what the network declared when it registered
    if dims != dataset.spatial_dims:
        raise MedmlUsageError(
            f"model.type '{cfg.model.type}' takes {dims}D input but data '{cfg.data.type}' "
            f"gives {dataset.spatial_dims}D images of shape {dataset.input_shape}. Use "
            f"{networks_of(dataset.spatial_dims)}."
        )


def subset(images: np.ndarray, index: np.ndarray, cache: Path | None, name: str) -> np.ndarray:
    """Rows of ``images``; for a memory-mapped source, copied chunk-wise into a memory-mapped
    cache file in the run, so training keeps streaming from disk instead of loading it all."""
    if not isinstance(images, np.memmap) or cache is None:
        return images[index]
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{name}.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=images.dtype,
                                    shape=(len(index), *images.shape[1:]))
    for start in range(0, len(index), 256):
        out[start:start + 256] = images[np.sort(index[start:start + 256])]
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


def voxel_reference(dataset: ImageDataset, split: dict[str, np.ndarray], seed: int,
                    threshold: float | None, problem: ProblemType) -> dict[str, Any] | None:
    """Logistic regression on the raw (windowed, scaled) voxels: the bar a CNN must clear."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from medml_cli.models.keras.input_pipeline import normalise_array

    train, test = split["train"], split["test"]
    n_voxels = int(np.prod(dataset.images.shape[1:]))
    if len(train) * n_voxels > MAX_VOXEL_REFERENCE_CELLS:
        return None
    X_train = normalise_array(np.asarray(dataset.images[train]), dataset.intensity)
    X_test = normalise_array(np.asarray(dataset.images[test]), dataset.intensity)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000,
                                                               random_state=seed))
    model.fit(X_train.reshape(len(train), -1), dataset.labels[train])
    score = problem.scores(model, X_test.reshape(len(test), -1), len(dataset.class_names))
    return {"model": "logistic regression on raw voxels (C=0.01, standardised)",
            "metrics": problem.metrics(dataset.labels[test], score, threshold)}


class ImageTraining(TrainingKind):
    """Images or volumes: a grouped train / validation / test split and one Keras CNN with
    early stopping and checkpoints, the voxel logistic-regression reference, Grad-CAM."""

    def plan(self, cfg: Any, dataset: ImageDataset, problem: ProblemType, *,
             resume: bool) -> dict[str, np.ndarray]:
        """The train / validation / test indices (split problems raise before a run)."""
        check_model_fits_data(cfg, dataset)
        split = image_split(dataset, cfg)
        if cfg.tune is not None:
            from medml_cli.config.tuning import candidate_model_types
            from medml_cli.workflows.tuning import check_validation_scorable, tuned_config

            for model_type in candidate_model_types(cfg.tune, cfg.model.type):
                check_model_fits_data(tuned_config(cfg, {"model.type": model_type}), dataset)
            check_validation_scorable(cfg, problem, dataset.labels[split["val"]],
                                      len(dataset_classes(dataset)))
        return split

    def describe(self, cfg: Any, dataset: ImageDataset, problem: ProblemType,
                 plan: Any) -> str:
        """Task, images and their shape, model (and how it is tuned) and seed."""
        tuned = ""
        if cfg.tune is not None:
            tuned = (f" tuned on the validation images ({cfg.tune.sampler}, "
                     f"{cfg.tune.pruner or 'median'} pruner, "
                     f"{', '.join(cfg.tune.parameters)})")
        return (f"task {cfg.task} ({problem.name}); data {cfg.data.type}: "
                f"{dataset.n_samples} images of shape {dataset.input_shape}; model "
                f"{cfg.model.type}{tuned}; seed {cfg.seed}")

    def fit(self, cfg: Any, dataset: ImageDataset, problem: ProblemType, plan: Any,
            run: RunDir, *, progress: ProgressFn | None, resume: bool) -> HeldOut:
        """Fit the CNN on the training images (early stopping and threshold on the
        validation images), score the test images, and fit the voxel reference."""
        split = plan
        classes = dataset_classes(dataset)
        run.log(f"split: train {len(split['train'])}, validation {len(split['val'])}, "
                f"test {len(split['test'])} images"
                + (f" ({len(np.unique(dataset.groups[split['test']]))} test patients)"
                   if dataset.groups is not None else ""))
        cache = run.file("cache") if isinstance(dataset.images, np.memmap) else None
        X_train = subset(dataset.images, split["train"], cache, "train")
        X_val = subset(dataset.images, split["val"], cache, "val")
        X_test = subset(dataset.images, split["test"], cache, "test")
        y = dataset.labels
        fit_cfg, tuner = cfg, None
        if cfg.tune is not None:  # the study sees the training and validation images only
            from medml_cli.workflows.tuning import ImageStudyData, ImageTuner

            tuner = ImageTuner(cfg, dataset, problem, run.file("tune"), run.log, build_cnn,
                               progress=(lambda label: progress(0, 1, label))
                               if progress else None)
            fit_cfg, _ = tuner.run(ImageStudyData(X_train, y[split["train"]], X_val,
                                                  y[split["val"]], len(classes)))
        estimator = _fit_cnn(fit_cfg, dataset, problem, run, X_train, y[split["train"]], X_val,
                             y[split["val"]], progress=progress, resume=resume)

        score = problem.scores(estimator, X_test, len(classes))
        baseline_model = problem.baseline_estimator().fit(
            np.zeros((len(split["train"]), 1)), y[split["train"]])
        baseline = problem.scores(baseline_model, np.zeros((len(split["test"]), 1)),
                                  len(classes))
        threshold = cfg.evaluation.threshold if problem.uses_threshold else None
        if problem.uses_threshold and cfg.evaluation.threshold_method != "fixed":
            from medml_cli.workflows.threshold import pick_threshold

            # chosen on the validation images, never on the test images
            threshold = pick_threshold(cfg, y[split["val"]],
                                       problem.scores(estimator, X_val, len(classes)))
            run.log(f"threshold {threshold:.4f} chosen on the validation set "
                    f"({cfg.evaluation.threshold_method})")
        test = split["test"]
        test_groups = dataset.groups[test] if dataset.groups is not None else None
        predictions = prediction_table(
            problem, ids=dataset.ids[test], truth=y[test], scores=score, classes=classes,
            threshold=threshold, baseline=baseline, fold=0,
            groups=("patient", test_groups) if test_groups is not None else None)

        reference = None
        if cfg.evaluation.voxel_logistic_baseline:
            reference = voxel_reference(dataset, split, cfg.seed, threshold, problem)
            if reference is None:
                run.log("voxel logistic-regression reference skipped: input too large")
            else:
                run.log(f"voxel logistic-regression reference: {problem.primary_metric} "
                        f"{reference['metrics'][problem.primary_metric]:.4f}")
        summary = {
            "split": {"method": "holdout", "train": len(split["train"]),
                      "validation": len(split["val"]), "test": len(test),
                      "source": "file" if dataset.splits else "seeded, grouped by patient"},
            "threshold": threshold,
            "threshold_method": cfg.evaluation.threshold_method
            if problem.uses_threshold else None,
            "metrics": problem.metrics(y[test], score, threshold),
            "baseline": problem.metrics(y[test], baseline, threshold)
            if cfg.evaluation.baseline else {},
            "reference": {"voxel-logistic-regression": reference["metrics"]}
            if reference else {},
            "intervals": {},
            "n": problem.sample_counts(y[test], test_groups, classes),
            "training": {"epochs_run": len(estimator.history_.get("loss", [])),
                         "best_epoch": int(estimator.best_epoch_) + 1,
                         "history": estimator.history_},
            "primary_metric": problem.primary_metric,
            "data_notes": list(getattr(dataset, "notes", [])),
        }
        if tuner is not None:
            # both scored as the study scored its trials (same metric, same threshold)
            tuner.record_test(tuner.score(estimator, X_val, y[split["val"]], len(classes)),
                              tuner.score(estimator, X_test, y[test], len(classes)))
            summary["model"] = fit_cfg.model.type  # the tuned choice
            summary["tuning"] = tuning = tuner.summary()
            run.log(f"tuned model: validation {tuner.metric} {tuning['final_validation']:.4f}"
                    f", test {tuner.metric} {tuning['test']:.4f}")
        return HeldOut(predictions=predictions, truth=y[test], scores=score,
                       threshold=threshold, summary=summary, groups=test_groups,
                       state={"model": estimator, "X_test": X_test, "cache": cache,
                              "test": test, "cfg": fit_cfg})

    def finish(self, cfg: Any, dataset: ImageDataset, problem: ProblemType, held: HeldOut,
               run: RunDir, metrics: dict[str, Any]) -> None:
        """The Keras model and its card, learning curves, Grad-CAM; checkpoints and the
        image cache removed."""
        from medml_cli.runs.artifacts import save_keras_estimator
        from medml_cli.runs.records import write_card

        estimator, test = held.state["model"], held.state["test"]
        save_keras_estimator(estimator, run.file("model"))
        card = image_model_card(held.state["cfg"], dataset, held.threshold, problem)
        if metrics.get("tuning"):  # the values the study chose, as a tabular card has them
            card["tuned_parameters"] = metrics["tuning"]["final"]["params"]
        write_card(run.file("model"), card)
        plots = run.file("plots")
        plot_learning_curves(estimator.history_, plots / "learning_curves.png",
                             synthetic=dataset.provenance.synthetic)
        run.log("evaluation and plots written")
        if cfg.evaluation.explain == "gradcam":
            from medml_cli.models.keras.gradcam import save_gradcam_overlays
            from medml_cli.models.keras.input_pipeline import normalise_array

            n = min(cfg.evaluation.explain_n, len(test))
            chosen = np.asarray(held.state["X_test"][:n])
            save_gradcam_overlays(estimator.model_, normalise_array(chosen, dataset.intensity),
                                  held.scores[:n], held.truth[:n], dataset.ids[test][:n],
                                  plots / "gradcam", n=n,
                                  synthetic=dataset.provenance.synthetic,
                                  class_names=dataset_classes(dataset))
        shutil.rmtree(run.file(CHECKPOINTS), ignore_errors=True)
        cache = held.state.pop("cache")
        held.state.pop("X_test")
        if cache is not None:  # the memory-mapped arrays are closed once unreferenced
            shutil.rmtree(cache, ignore_errors=True)

    def data_lines(self, dataset: ImageDataset) -> list[str]:
        """Images, shape, intensity and classes."""
        return image_data_lines(dataset)


def build_cnn(cfg: Any, dataset: ImageDataset, problem: ProblemType) -> Any:
    """The unfitted CNN estimator of a config, for these images."""
    return MODELS.create(cfg.model.type, cfg.model, problem=problem.name,
                         schema=dataset.intensity, seed=cfg.seed)


def _fit_cnn(cfg: Any, dataset: ImageDataset, problem: ProblemType, run: RunDir,
             X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray,
             *, progress: ProgressFn | None, resume: bool) -> Any:
    """The CNN fitted with early stopping on the validation images, checkpointing every
    epoch into the run (``resume`` continues from the last checkpoint, when there is one:
    a tuned run interrupted during its study has none yet)."""
    from medml_cli.models.keras.estimator import read_train_state

    estimator = build_cnn(cfg, dataset, problem)
    checkpoint_dir = run.file(CHECKPOINTS)
    estimator.set_params(checkpoint_dir=str(checkpoint_dir))
    epochs = cfg.model.epochs

    def on_epoch(epoch: int, logs: dict[str, float]) -> None:
        text = ", ".join(f"{k}={v:.4f}" for k, v in logs.items())
        run.log(f"epoch {epoch + 1}/{epochs}: {text}")
        if progress:
            progress(epoch + 1, epochs, f"epoch {epoch + 1}/{epochs} "
                     f"val_auroc={logs.get('val_auroc', float('nan')):.3f}")

    estimator.set_params(epoch_callback=on_epoch)
    fit_kwargs: dict[str, Any] = {"X_val": X_val, "y_val": y_val}
    n_classes = len(dataset_classes(dataset))
    if n_classes > 2:  # a class missing from the training split still gets an output
        fit_kwargs["n_classes"] = n_classes
    if resume and (cfg.tune is None or read_train_state(checkpoint_dir) is not None):
        state = read_json(checkpoint_dir / "train_state.json")
        fit_kwargs.update(resume_from=checkpoint_dir / "last.keras",
                          initial_epoch=int(state["epoch"]))
        run.log(f"resuming from epoch {state['epoch']}")
    estimator.fit(X_train, y_train, **fit_kwargs)
    run.log(f"training finished; best epoch {int(estimator.best_epoch_) + 1}")
    return estimator


def image_model_card(cfg: Any, dataset: ImageDataset, threshold: float | None,
                     problem: ProblemType | None = None) -> dict[str, Any]:
    """A trained image model's card: format, input shape, intensity, threshold, classes."""
    problem = problem or problem_of(cfg.task, dataset)
    return {
        **card_fields(cfg, problem, model_format="keras",
                      input_kind="volume3d" if dataset.spatial_dims == 3 else "image2d",
                      threshold=threshold, synthetic=dataset.provenance.synthetic),
        "input_shape": list(dataset.input_shape),
        "spatial_dims": dataset.spatial_dims,
        "intensity": list(dataset.intensity),
        "classes": list(dataset.class_names),
        "trained_on_images": dataset.n_samples,
    }


def plot_learning_curves(history: dict[str, list[float]], path: Path, *,
                         synthetic: bool) -> None:
    """Plot training and validation curves per epoch to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for key, ax in (("loss", axes[0]), ("auroc", axes[1])):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = history.get(prefix + key)
            if values:
                ax.plot(range(1, len(values) + 1), values, style,
                        label="validation" if prefix else "training")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend()
    fig.suptitle("learning curves" + (" — SYNTHETIC DATA" if synthetic else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
