"""A new problem type is one file that registers itself: here a count outcome (Poisson
regression) with its own metric, a task and a model, trained, gated and predicted through the
CLI without any change to medml's workflows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pytest

from medml_cli.config.sections import experiment_config_class
from medml_cli.plugins import load_builtins
from medml_cli.problems.regression import Regression
from medml_cli.registry import MODELS, PROBLEMS, TASKS
from medml_cli.schemas import StrictModel


class CountRegression(Regression):
    """Counts (e.g. admissions per year): a Poisson deviance beside the regression metrics."""

    name = "count-regression"
    summary = "a count outcome: mean Poisson deviance, mae"
    metric_names = ("poisson_deviance", "mae")
    primary_metric = "mae"
    lower_is_better = frozenset({"poisson_deviance"})

    def metrics(self, y, scores, threshold=None) -> dict[str, float]:
        from sklearn.metrics import mean_absolute_error, mean_poisson_deviance

        scores = np.clip(np.asarray(scores, dtype=float), 1e-9, None)
        return {"poisson_deviance": float(mean_poisson_deviance(y, scores)),
                "mae": float(mean_absolute_error(y, scores))}

    def assess(self, y, scores, **kwargs: Any) -> dict[str, Any]:
        return {"intervals": {}, "confidence": None, "bootstrap_resamples": 0}


class PoissonConfig(StrictModel):
    """Poisson GLM."""

    type: Literal["poisson-glm"]
    alpha: float = 1e-4


@pytest.fixture
def count_plugin():
    from medml_cli.models.base import register_model
    from medml_cli.problems.base import register_problem
    from medml_cli.tasks.base import TaskSpec, register_task

    load_builtins()
    register_problem(CountRegression())

    @register_model("poisson-glm", config=PoissonConfig, summary="Poisson GLM",
                    problems=("count-regression",))
    def build(cfg, *, problem, schema, seed):
        from sklearn.linear_model import PoissonRegressor

        from medml_cli.models.preprocessing import tabular_pipeline

        return tabular_pipeline(schema, PoissonRegressor(alpha=cfg.alpha), scale=True)

    register_task(TaskSpec(name="tabular-counts", problem="count-regression",
                           data_kind="tabular", summary="counts from your own table",
                           default_model={"type": "poisson-glm"}))
    experiment_config_class.cache_clear()  # the config's model union now holds poisson-glm
    yield
    TASKS.unregister("tabular-counts")
    MODELS.unregister("poisson-glm")
    PROBLEMS.unregister("count-regression")
    experiment_config_class.cache_clear()


def test_a_registered_problem_type_runs_through_the_cli(count_plugin, cli, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    frame = pd.DataFrame({"x": x, "z": rng.normal(size=300),
                          "admissions": rng.poisson(np.exp(0.3 + 0.8 * x))})
    frame.to_csv(tmp_path / "counts.csv", index=False)
    (tmp_path / "counts.yaml").write_text(
        "task: tabular-counts\ndata: {type: csv, path: counts.csv, target: admissions}\n"
        "model: {type: poisson-glm}\nevaluation: {plots: false}\n")
    result = cli("train", tmp_path / "counts.yaml", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.stderr
    run = Path(result.last_line)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["problem"] == "count-regression"
    assert set(metrics["metrics"]) == {"poisson_deviance", "mae"}
    assert metrics["primary_metric"] == "mae"
    assert metrics["metrics"]["mae"] < metrics["baseline"]["mae"]  # the model beats the mean
    assert "prediction" in pd.read_csv(run / "predictions.csv")
    # the problem type's own lower-is-better metric is gated as a maximum
    assert cli("evaluate", run, "--fail-under", "poisson_deviance=0.01").exit_code == 1
    assert cli("evaluate", run, "--fail-under", "poisson_deviance=100").exit_code == 0
    new = tmp_path / "new.csv"
    frame.drop(columns="admissions").head(3).to_csv(new, index=False)
    predicted = cli("predict", run, "--input", new)
    assert predicted.exit_code == 0, predicted.stderr
    assert predicted.stdout.splitlines()[0].startswith("id,prediction")
