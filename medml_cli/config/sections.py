"""The experiment config's sections (split, evaluation), its cross-field checks, and the full
ExperimentConfig class built from the registries."""

from __future__ import annotations

import copy
import functools
from typing import Annotated, Any, Literal, Union

from pydantic import Field, create_model, field_validator, model_validator

from medml_cli.config.tuning import TuneConfig, tune_problems
from medml_cli.plugins import load_plugins
from medml_cli.registry import DATASETS, MODELS, NETWORKS, PROBLEMS, TASKS, did_you_mean
from medml_cli.schemas import StrictModel

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class SplitConfig(StrictModel):
    """How held-out data are made. Every split is seeded and, with a group column, grouped."""

    method: Literal["kfold", "holdout", "leave-group-out"] = Field(
        "kfold", description="kfold: k-fold cross-validation; holdout: one train/test split; "
                             "leave-group-out: internal-external cross-validation, each group "
                             "of `by` (e.g. each hospital) held out in turn."
    )
    by: str | None = Field(
        None, min_length=1,
        description="leave-group-out: the column whose groups are held out in turn (the UCI "
                    "data's `site`, or your own, e.g. `hospital`); never used as a feature.")
    n_splits: int = Field(5, ge=2, le=100, description="Number of folds (kfold).")
    test_size: float = Field(0.2, gt=0, lt=1, description="Held-out share (holdout).")
    stratify: bool = Field(True, description="Keep the class balance in every fold.")
    val_size: float = Field(
        0.15, gt=0, lt=1,
        description="Image tasks: share of the training part held out for early stopping.",
    )


class EvaluationConfig(StrictModel):
    """How held-out predictions are scored."""

    threshold: float = Field(
        0.5, gt=0, lt=1,
        description="Probability at or above which a case is called positive "
                    "(threshold_method: fixed).",
    )
    threshold_method: Literal["fixed", "youden", "sensitivity", "specificity"] = Field(
        "fixed",
        description="fixed: `threshold`; youden: max sensitivity + specificity - 1; "
                    "sensitivity/specificity: reach `threshold_target`. Chosen on training "
                    "data (inner cross-validation) or validation data, never on test data.",
    )
    threshold_target: float | None = Field(
        None, gt=0, lt=1, description="Target sensitivity or specificity for those methods.")
    bootstrap: int = Field(1000, ge=0, le=100_000,
                           description="Bootstrap resamples for confidence intervals; 0: none.")
    confidence: float = Field(0.95, ge=0.5, le=0.999, description="Confidence level of CIs.")
    recalibration: Literal["none", "sigmoid", "isotonic"] = Field(
        "none", description="Recalibrate probabilities (fitted on training folds only).")
    subgroups: list[str] = Field(
        default_factory=list,
        description="Columns to report metrics by (e.g. sex, site, age_band).")
    min_subgroup_n: int = Field(30, ge=1, description="Warn for subgroups smaller than this.")
    min_subgroup_events: int = Field(10, ge=0,
                                     description="Warn for subgroups (and held-out groups) "
                                                 "with fewer events.")
    meta_analysis: Literal["reml", "dl"] = Field(
        "reml", description="leave-group-out: the random-effects estimator of the "
                            "between-group variance (REML or DerSimonian-Laird).")
    plots: bool = Field(True, description="Save ROC, PR, calibration, confusion-matrix and "
                                          "decision-curve (or residual) plots in plots/.")
    importance_repeats: int = Field(5, ge=1, le=100,
                                    description="Permutation-importance repeats per fold.")
    baseline: bool = Field(True, description="Report the trivial baseline beside the model.")
    voxel_logistic_baseline: bool = Field(
        True, description="Image tasks: also fit a logistic regression on the raw voxels, in "
                          "the same split, as a reference the CNN must beat.")
    explain: Literal["none", "gradcam", "permutation"] = Field(
        "none",
        description="gradcam (image tasks): Grad-CAM overlays of held-out images; permutation "
                    "(tabular): permutation importance on held-out folds + partial dependence.")
    explain_n: int = Field(8, ge=1, le=200, description="How many Grad-CAM overlays to save.")
    horizons: list[float] | None = Field(
        None, min_length=1, max_length=20,
        description="Survival tasks: the times (in the data's time unit) at which time-"
                    "dependent AUROC, Brier score, calibration and net benefit are reported; "
                    "default: the 25th, 50th and 75th percentiles of the observed event times, "
                    "rounded.")

    @field_validator("horizons")
    @classmethod
    def _sorted_positive_horizons(cls, value: list[float] | None) -> list[float] | None:
        if value is None:
            return None
        bad = [h for h in value if not (h > 0 and h < float("inf"))]
        if bad:
            raise ValueError(f"horizons must be positive times, got {bad[0]}")
        if len(set(value)) != len(value):
            raise ValueError("horizons must not repeat a time")
        return sorted(value)

    @model_validator(mode="after")
    def _threshold_target(self) -> EvaluationConfig:
        needs = self.threshold_method in ("sensitivity", "specificity")
        if needs and self.threshold_target is None:
            raise ValueError(f"threshold_method '{self.threshold_method}' needs "
                             "threshold_target, e.g. 0.9")
        if not needs and self.threshold_target is not None:
            raise ValueError("threshold_target only applies to threshold_method "
                             "sensitivity or specificity")
        return self


class CardConfig(StrictModel):
    """What the run's model card (model/card.md) says the model is for. Left out, the card
    says research use only, not validated for clinical decisions."""

    intended_use: str | None = Field(
        None, min_length=1, description="The primary intended use, e.g. 'Ranking patients "
                                        "for angiography in a retrospective audit'.")
    intended_users: str | None = Field(
        None, min_length=1, description="Who is meant to use the model's output.")
    out_of_scope: list[str] | None = Field(
        None, description="Uses the model is not for (replaces medml's defaults; [] for none).")
    caveats: list[str] = Field(
        [], description="Caveats added to those medml writes itself (synthetic data, small "
                        "subgroups, single-site development ...).")


class ExperimentConfigBase(StrictModel):
    """Fields shared by every experiment; ``data`` and ``model`` are added from the registries."""

    name: str | None = Field(
        None, pattern=NAME_PATTERN, description="Run name; default: '<task>-<model type>'."
    )
    seed: int = Field(42, ge=0, le=2**32 - 1, description="Seed for splits and models.")
    task: str = Field(description="Task preset or generic task; see `medml tasks list`.")
    split: SplitConfig = Field(default_factory=SplitConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    tune: TuneConfig | None = Field(
        None, description="Tune model hyperparameters inside the run by nested "
                          "cross-validation (Optuna); see the README's Tuning section.")
    card: CardConfig | None = Field(
        None, description="Intended use, users, out-of-scope uses and caveats for the run's "
                          "model card (model/card.md).")

    @field_validator("task")
    @classmethod
    def _known_task(cls, value: str) -> str:
        if value not in TASKS:
            raise ValueError(
                f"'{value}' is not a task{did_you_mean(value, TASKS.names())} "
                f"(tasks: {', '.join(TASKS.names())})"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, values: Any) -> Any:
        """Presets fill in the data and model sections the config leaves out."""
        if not isinstance(values, dict) or values.get("task") not in TASKS:
            return values
        spec = TASKS.get(values["task"])
        values = dict(values)
        if spec.default_split:
            given = values.get("split")
            values["split"] = {**spec.default_split, **(given if isinstance(given, dict) else {})}
        for key, default in (("data", spec.default_data), ("model", spec.default_model)):
            if key not in values and default is not None:
                values[key] = copy.deepcopy(default)
            elif isinstance(values.get(key), dict) and "type" not in values[key] and default:
                values[key] = {"type": default["type"], **values[key]}
        return values

    @model_validator(mode="after")
    def _cross_field_checks(self) -> ExperimentConfigBase:
        problems = cross_field_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def run_name(self) -> str:
        """The run's name: `name` if given, else `<task>-<model type>` (tuned runs:
        `<task>-tuned`, or `<task>-<model type>-tuned` when the type is fixed)."""
        if self.name:
            return self.name
        if self.tune is not None and "model.type" in self.tune.parameters:
            return f"{self.task}-tuned"  # the model type is the study's choice
        suffix = "-tuned" if self.tune is not None else ""
        return f"{self.task}-{self.model.type}{suffix}"  # type: ignore[attr-defined]


def _reads_target_of(data_entry: Any, problem: str) -> bool:
    """Whether a data source reads any target of this problem type's kind: a generic table
    is tagged ``classes-target`` / ``numeric-target`` and so serves plug-in problem types."""
    kind = getattr(PROBLEMS.get(problem), "target_kind", None) if problem in PROBLEMS else None
    return kind is not None and f"{kind}-target" in data_entry.tags


def cross_field_problems(cfg: Any) -> list[str]:
    """Checks that span sections: does the model solve the task, does the data fit it."""
    spec = TASKS.get(cfg.task)
    problems: list[str] = []
    model_entry = MODELS.entry(cfg.model.type)
    if spec.problem not in model_entry.tags:
        fitting = [e.name for e in MODELS.entries() if spec.problem in e.tags
                   and spec.data_kind in e.tags]
        problems.append(
            f"model.type: '{cfg.model.type}' is a "
            f"{' / '.join(sorted(model_entry.tags & set(PROBLEMS.names())))} "
            f"model but task '{cfg.task}' is {spec.problem}; "
            f"use one of: {', '.join(fitting)}"
        )
    elif spec.data_kind not in model_entry.tags:
        problems.append(f"model.type: '{cfg.model.type}' does not take {spec.data_kind} data")
    data_entry = DATASETS.entry(cfg.data.type)
    if spec.data_kind not in data_entry.tags:
        fitting = [e.name for e in DATASETS.entries() if spec.data_kind in e.tags]
        problems.append(
            f"data.type: '{cfg.data.type}' is not {spec.data_kind} data, which task "
            f"'{cfg.task}' needs; use one of: {', '.join(fitting)}"
        )
    elif spec.problem not in data_entry.tags and not _reads_target_of(data_entry, spec.problem):
        kinds = " / ".join(sorted(data_entry.tags & set(PROBLEMS.names())))
        problems.append(
            f"data.type: '{cfg.data.type}' is {kinds} data but task '{cfg.task}' is "
            f"{spec.problem}; pick a {spec.problem} task or other data"
        )
    explain = cfg.evaluation.explain
    if explain == "gradcam" and spec.data_kind != "image":
        problems.append("evaluation.explain: gradcam is for image tasks; use permutation")
    if explain == "permutation" and spec.data_kind != "tabular":
        problems.append("evaluation.explain: permutation is for tabular tasks; use gradcam")
    if not PROBLEMS.get(spec.problem).classifies and (cfg.evaluation.threshold_method != "fixed"
                                         or cfg.evaluation.recalibration != "none"):
        problems.append("evaluation.threshold_method / recalibration: only for classification")
    if spec.problem == "multiclass" and cfg.evaluation.threshold_method != "fixed":
        problems.append("evaluation.threshold_method: multi-class runs assign the most "
                        "probable class, there is no threshold to choose; use fixed")
    if spec.data_kind == "image" and cfg.evaluation.recalibration != "none":
        problems.append("evaluation.recalibration: not supported for image models yet; "
                        "use none")
    if cfg.split.method == "leave-group-out" and not cfg.split.by:
        problems.append("split.by: leave-group-out needs the column whose groups are held out "
                        "in turn, e.g. `by: site` (the UCI data) or `by: hospital`")
    if cfg.split.by and cfg.split.method != "leave-group-out":
        problems.append("split.by: only for `split.method: leave-group-out`; remove it, or "
                        "use `data.group_column` to keep a patient's rows together")
    if spec.data_kind == "image" and cfg.split.method != "holdout":
        problems.append("split.method: image tasks use `holdout` (a train/validation/test "
                        "split); k-fold CV of a CNN is not supported")
    model_dims = getattr(cfg.model, "spatial_dims", None)
    data_dims = getattr(cfg.data, "dim", None) or (3 if cfg.data.type == "luna16" else None)
    if cfg.data.type == "image-folder":
        data_dims = 2
    if cfg.data.type == "dicom-series":
        data_dims = 3 if cfg.data.level == "series" else 2
    if model_dims and data_dims and model_dims != data_dims:
        problems.append(f"model.type: '{cfg.model.type}' takes {model_dims}D input but the "
                        f"data are {data_dims}D; use "
                        f"{networks_of(data_dims)}")
    if getattr(cfg.data, "missing", "impute") == "native" and \
            not model_entry.extra.get("native_missing"):
        native = [e.name for e in MODELS.entries() if e.extra.get("native_missing")
                  and spec.problem in e.tags]
        problems.append(f"data.missing: native leaves missing values for the model, but "
                        f"'{cfg.model.type}' cannot take them; use impute or indicator, or one "
                        f"of: {', '.join(native) or 'none for this task'}")
    problems.extend(PROBLEMS.get(spec.problem).config_problems(cfg))
    problems.extend(tune_problems(cfg, cfg.model.model_dump(include=cfg.model.model_fields_set)))
    check = getattr(cfg.model, "problems_check", None)
    if check is not None:
        problems.extend(f"model.{p}" for p in check(spec.problem))
    return problems


def networks_of(dims: int) -> str:
    """'cnn3d or resnet3d': the registered networks that take ``dims``-D input."""
    return " or ".join(e.name for e in NETWORKS.entries() if e.extra.get("dims") == dims)


def _discriminated(configs: list[type]) -> Any:
    if len(configs) == 1:
        return configs[0]
    return Annotated[Union[tuple(configs)], Field(discriminator="type")]  # noqa: UP007


@functools.cache
def experiment_config_class() -> type[ExperimentConfigBase]:
    """The full ExperimentConfig, with data and model unions built from the registries."""
    load_plugins()
    return create_model(
        "ExperimentConfig",
        __base__=ExperimentConfigBase,
        data=(_discriminated(DATASETS.config_classes()), Field(description="Data source.")),
        model=(_discriminated(MODELS.config_classes()), Field(description="Model and "
                                                                       "hyperparameters.")),
    )
