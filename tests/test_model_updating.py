"""``medml evaluate RUN --data SITE --update intercept|recalibrate|refit``: the within-site
cross-validation never scores a row with an update fitted on its outcome, intercept updating
fixes calibration-in-the-large, the updated model is a complete run naming its parent, and
bad requests exit 2. A small run: logistic regression trained on Cleveland, updated at
Hungarian (whose prevalence, 36 %, is far below Cleveland's 46 %)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medml_cli.errors import DataError, MedmlUsageError
from medml_cli.evaluation.calibration import calibration_slope_intercept
from medml_cli.workflows.update import (
    UPDATE_METHODS,
    RecalibrationUpdate,
    check_update_request,
    cross_validated_update,
    make_updater,
    update_folds,
)
from tests.conftest import run_cli

CONFIG = """\
name: cleveland-logreg
seed: 42
task: heart-disease
data:
  type: uci-heart-disease
  sites: [cleveland]
  missing: indicator
split:
  method: kfold
  n_splits: 5
model:
  type: logistic-regression
  C: 0.1
evaluation:
  threshold: 0.5
  bootstrap: 20
  plots: false
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """A completed Cleveland run, a Hungarian data config and a Hungarian CSV."""
    folder = tmp_path_factory.mktemp("updating")
    config = folder / "cleveland.yaml"
    config.write_text(CONFIG)
    train = run_cli("train", config, "--runs-dir", folder / "runs")
    assert train.exit_code == 0, train.stderr
    site = folder / "hungarian.yaml"
    site.write_text("data: {type: uci-heart-disease, sites: [hungarian]}\n")
    return {"run": Path(train.last_line), "site": site, "folder": folder}


@pytest.fixture(scope="module")
def site_rows(trained):
    """What evaluate hands the updaters: the run's config and schema, the site's rows, their
    features as the schema has them, and the run's model with its probability per row."""
    from medml_cli.config.loader import validate_config_data
    from medml_cli.data.base import prepare_features
    from medml_cli.problems import get_problem
    from medml_cli.runs.artifacts import load_sklearn_model
    from medml_cli.workflows.run_model import load_run_config, load_schema
    from medml_cli.workflows.train import load_dataset

    run = trained["run"]
    data = load_run_config(run).model_dump(mode="json")
    data["data"] = {"type": "uci-heart-disease", "sites": ["hungarian"]}
    cfg = validate_config_data(data)
    schema = load_schema(run)
    dataset = load_dataset(cfg)
    X = prepare_features(dataset.X, schema, "hungarian", context="evaluation")
    model = load_sklearn_model(run / "model")
    problem = get_problem("binary-classification")
    return {"cfg": cfg, "schema": schema, "dataset": dataset, "X": X, "model": model,
            "problem": problem, "original": problem.scores(model, X),
            "y": dataset.y.to_numpy().astype(int)}


def _updater(site_rows, method):
    return make_updater(method, cfg=site_rows["cfg"], dataset=site_rows["dataset"],
                        X=site_rows["X"], schema=site_rows["schema"],
                        problem=site_rows["problem"], model=site_rows["model"],
                        original=site_rows["original"])


def _evaluate(trained, method, *extra):
    result = run_cli("evaluate", trained["run"], "--data", trained["site"], "--update", method,
                     *extra)
    assert result.exit_code == 0, result.stderr
    out = Path(result.last_line)
    return out, json.loads((out / "metrics.json").read_text())


# --------------------------------------------------------------------------- (1) honesty
@pytest.mark.parametrize("method", UPDATE_METHODS)
def test_scrambling_a_folds_test_outcomes_changes_nothing_of_that_fold(site_rows, method):
    y = site_rows["y"]
    folds = update_folds(y, seed=42)
    updater = _updater(site_rows, method)
    reference = cross_validated_update(updater, y, folds)
    assert not np.isnan(reference.scores).any()
    assert sorted(np.concatenate([t for _, t in folds])) == list(range(len(y)))
    rng = np.random.default_rng(0)
    for k, (_, test) in enumerate(folds):
        scrambled = y.copy()
        scrambled[test] = 1 - scrambled[test]  # every test outcome flipped...
        scrambled[rng.choice(test, size=len(test) // 2, replace=False)] = 1  # ...and mixed
        again = cross_validated_update(updater, scrambled, folds)
        assert again.folds[k].parameters == reference.folds[k].parameters
        np.testing.assert_array_equal(again.folds[k].scores, reference.folds[k].scores)
        np.testing.assert_array_equal(again.scores[test], reference.scores[test])
        # the other folds train on those rows, so their updates must move (the labels matter)
        others = [j for j in range(len(folds)) if j != k]
        moved = [not np.array_equal(again.folds[j].scores, reference.folds[j].scores)
                 for j in others]
        assert all(moved)


def test_the_honesty_check_catches_an_update_that_sees_all_outcomes(site_rows):
    """The check above can fail: an updater that fits on every row's outcome is caught."""
    y = site_rows["y"]
    folds = update_folds(y, seed=42)
    seen = {"y": y}

    class Leaky(RecalibrationUpdate):
        def fit(self, rows, y_rows):
            return super().fit(np.arange(len(seen["y"])), seen["y"])

    leaky = Leaky(method="intercept", original=site_rows["original"], base=None)
    reference = cross_validated_update(leaky, y, folds)
    test = folds[0][1]
    scrambled = y.copy()
    scrambled[test] = 1 - scrambled[test]
    seen["y"] = scrambled
    again = cross_validated_update(leaky, scrambled, folds)
    assert again.folds[0].parameters != reference.folds[0].parameters


def test_folds_follow_the_rarer_class():
    y = np.array([1] * 40 + [0] * 3)
    folds = update_folds(y, seed=1)
    assert len(folds) == 3 and all((y[test] == 0).sum() == 1 for _, test in folds)
    assert len(update_folds(np.array([1, 0] * 30), seed=1)) == 5
    with pytest.raises(DataError, match="single class"):
        update_folds(np.ones(30), seed=1)
    with pytest.raises(DataError, match="too few"):
        update_folds(np.array([1] * 30 + [0]), seed=1)


# --------------------------------------------------------------------------- (2) CITL
def test_intercept_update_brings_calibration_in_the_large_to_zero(trained):
    out, metrics = _evaluate(trained, "intercept")
    update = metrics["update"]
    original_citl = update["original"]["calibration"]["calibration_intercept"]
    updated_citl = update["updated"]["calibration"]["calibration_intercept"]
    assert abs(original_citl) > 0.2  # the Cleveland model misjudges Hungarian's risk
    assert abs(updated_citl) < 0.05
    assert update["folds"] == 5 and update["parameters"]["slope"] == 1.0
    # the block is computed from the cross-validated scores written beside it
    predictions = pd.read_csv(out / "predictions.csv")
    assert {"score", "updated_score", "update_fold"} <= set(predictions.columns)
    _, citl = calibration_slope_intercept(predictions["truth"], predictions["updated_score"])
    assert citl == pytest.approx(updated_citl)
    _, citl = calibration_slope_intercept(predictions["truth"], predictions["score"])
    assert citl == pytest.approx(original_citl)
    assert sorted(predictions["update_fold"].unique()) == list(range(5))
    # the evaluation's own metrics stay the original model's, as without --update
    assert metrics["metrics"] == pytest.approx(update["original"]["metrics"])
    report = (out / "report.md").read_text()
    assert "Model updating at this site: intercept" in report
    assert "cross-validation within the site" in report


# --------------------------------------------------------------------------- (3) new run
def test_the_updated_model_is_a_complete_run_naming_its_parent(trained, tmp_path):
    from medml_cli.runs.artifacts import load_sklearn_model
    from medml_cli.workflows.predict import predict_with_run

    _, metrics = _evaluate(trained, "intercept")
    new = Path(metrics["update"]["run_dir"])
    parent = trained["run"]
    assert new.parent == parent.parent and new != parent
    assert not list(parent.parent.glob(".tmp-*"))  # written atomically, nothing left over
    assert json.loads((new / "status.json").read_text())["state"] == "completed"
    for name in ("config.yaml", "predictions.csv", "report.md", "report.html", "log.txt",
                 "model/model.skops", "model/schema.json"):
        assert (new / name).is_file(), name
    new_metrics = json.loads((new / "metrics.json").read_text())
    card = json.loads((new / "model" / "card.json").read_text())
    environment = json.loads((new / "environment.json").read_text())
    for record in (new_metrics, card, environment):
        assert record["parent_run"] == parent.name
    assert f"Updated from run {parent.name}" in (new / "report.md").read_text()
    assert new_metrics["metrics"] == pytest.approx(metrics["update"]["updated"]["metrics"])

    # predict with it: the parent's probability, shifted by the fitted intercept on the logit
    rows = pd.read_csv(new / "predictions.csv").head(0)  # only to know it parses
    assert "original_score" in rows.columns
    site = _site_csv(trained, tmp_path)
    predicted = run_cli("predict", new, "--input", site)
    assert predicted.exit_code == 0, predicted.stderr
    new_p = pd.read_csv(pd.io.common.StringIO(predicted.stdout))["probability"].to_numpy()
    parent_p = predict_with_run(parent, site).frame["probability"].to_numpy()
    a = metrics["update"]["parameters"]["intercept"]
    logit = np.log(parent_p) - np.log1p(-parent_p)
    np.testing.assert_allclose(new_p, 1 / (1 + np.exp(-(a + logit))), rtol=1e-9)
    model = load_sklearn_model(new / "model")
    assert type(model).__name__ == "RecalibratedClassifier" and model.intercept == a

    # and evaluate it, on its own (cross-validated) rows and on other data
    again = run_cli("evaluate", new)
    assert again.exit_code == 0, again.stderr
    held = json.loads((Path(again.last_line) / "metrics.json").read_text())
    assert held["metrics"]["auroc"] == pytest.approx(new_metrics["metrics"]["auroc"])
    other = run_cli("evaluate", new, "--data", trained["site"])
    assert other.exit_code == 0, other.stderr


def _site_csv(trained, folder: Path) -> Path:
    """The Hungarian rows as a user's table: id, the 13 features and the outcome."""
    from medml_cli.config.loader import validate_config_data
    from medml_cli.workflows.run_model import load_run_config
    from medml_cli.workflows.train import load_dataset

    data = load_run_config(trained["run"]).model_dump(mode="json")
    data["data"] = {"type": "uci-heart-disease", "sites": ["hungarian"]}
    dataset = load_dataset(validate_config_data(data))
    frame = dataset.X.copy()
    frame.insert(0, "patient_id", dataset.ids.to_numpy())
    frame["disease"] = dataset.y.to_numpy().astype(int)  # the run's codes: 1 = disease
    path = folder / "hungarian.csv"
    frame.to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------- (4) bad input
def test_update_without_data_exits_2(trained):
    result = run_cli("evaluate", trained["run"], "--update", "intercept")
    assert result.exit_code == 2
    assert "--data" in result.stderr and "needs the new site's data" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_update_method_exits_2(trained):
    result = run_cli("evaluate", trained["run"], "--data", trained["site"], "--update",
                     "platt")
    assert result.exit_code == 2
    assert "intercept" in result.stderr and "refit" in result.stderr


@pytest.mark.parametrize("case,needle", [("single", "single class"), ("few", "too few")])
def test_a_site_that_cannot_be_cross_validated_exits_2(trained, tmp_path, case, needle):
    frame = pd.read_csv(_site_csv(trained, tmp_path))
    positive = frame[frame["disease"] == 1]
    if case == "few":
        positive = pd.concat([positive, frame[frame["disease"] == 0].head(1)])
    path = tmp_path / f"{case}.csv"
    positive.to_csv(path, index=False)
    before = sorted(p.name for p in trained["run"].parent.iterdir())
    result = run_cli("evaluate", trained["run"], "--data", path, "--update", "intercept")
    assert result.exit_code == 2, result.stderr
    assert needle in " ".join(result.stderr.split())
    # nothing was written: no new run beside the parent
    assert sorted(p.name for p in trained["run"].parent.iterdir()) == before


def test_multiclass_runs_exit_2():
    with pytest.raises(MedmlUsageError, match="binary-classification and regression") as caught:
        check_update_request("intercept", Path("site.yaml"), {"problem": "multiclass"})
    assert caught.value.exit_code == 2


@pytest.fixture(scope="module")
def diabetes_sites(tmp_path_factory) -> dict[str, Path]:
    """Ridge trained on the diabetes data's men (sex 1), to update at its women (sex 2)."""
    from sklearn.datasets import load_diabetes

    folder = tmp_path_factory.mktemp("diabetes")
    frame = load_diabetes(as_frame=True, scaled=False).frame
    frame[frame["sex"] == 1].to_csv(folder / "men.csv", index=False)
    frame[frame["sex"] == 2].to_csv(folder / "women.csv", index=False)
    config = folder / "men.yaml"
    config.write_text("seed: 3\ntask: tabular-regression\n"
                      "data: {type: csv, path: men.csv, target: target, exclude: [sex]}\n"
                      "model: {type: ridge}\nevaluation: {bootstrap: 100, plots: false}\n")
    train = run_cli("train", config, "--runs-dir", folder / "runs")
    assert train.exit_code == 0, train.stderr
    return {"run": Path(train.last_line), "site": folder / "women.csv"}


@pytest.mark.parametrize("method", UPDATE_METHODS)
def test_regression_runs_are_updated_honestly(diabetes_sites, method):
    result = run_cli("evaluate", diabetes_sites["run"], "--data", diabetes_sites["site"],
                     "--update", method, "--json")
    assert result.exit_code == 0, result.stderr
    update = json.loads(result.stdout)["update"]
    original, updated = update["original"], update["updated"]
    # the men's model over-predicts the women's progression on average: a shift fixes that
    assert abs(original["calibration"]["calibration_intercept"]) > 10
    assert abs(updated["calibration"]["calibration_intercept"]) < 5
    assert updated["metrics"]["rmse"] < original["metrics"]["rmse"]
    if method != "refit":
        assert set(update["parameters"]) == {"intercept", "slope"}
        assert (update["parameters"]["slope"] == 1.0) == (method == "intercept")
    # the cross-validated predictions are the ones recorded, never in-sample ones
    predictions = pd.read_csv(Path(update["run_dir"]) / "predictions.csv")
    assert predictions["fold"].nunique() == update["folds"] == 5
    women = pd.read_csv(diabetes_sites["site"])
    new_run = Path(update["run_dir"])
    assert json.loads((new_run / "metrics.json").read_text())["parent_run"] == \
        diabetes_sites["run"].name
    out = new_run.parent / f"{method}-predictions.csv"
    predicted = run_cli("predict", new_run, "--input", diabetes_sites["site"], "--output", out)
    assert predicted.exit_code == 0, predicted.stderr
    assert len(pd.read_csv(out)) == len(women)


def test_linear_update_folds_never_see_their_test_outcomes():
    rng = np.random.default_rng(0)
    original = rng.normal(150, 40, 120)
    y = 20 + 0.9 * original + rng.normal(0, 10, 120)
    folds = update_folds(y, seed=1, classify=False)
    for method in ("intercept", "recalibrate"):
        updater = RecalibrationUpdate(method=method, original=original, base=None,
                                      linear=True)
        reference = cross_validated_update(updater, y, folds)
        for k, (_, test) in enumerate(folds):
            scrambled = y.copy()
            scrambled[test] = rng.permutation(scrambled[test]) + 100
            again = cross_validated_update(updater, scrambled, folds)
            assert again.folds[k].parameters == reference.folds[k].parameters
            np.testing.assert_array_equal(again.scores[test], reference.scores[test])
    with pytest.raises(DataError, match="too few"):
        update_folds(y[:8], seed=1, classify=False)


def test_image_runs_are_refused():
    with pytest.raises(MedmlUsageError, match="image") as caught:
        check_update_request("intercept", Path("site.yaml"),
                             {"format": "keras", "problem": "binary-classification"})
    assert caught.value.exit_code == 2


# --------------------------------------------------------------------------- (5) the others
def test_recalibrate_end_to_end(trained):
    from medml_cli.runs.artifacts import load_sklearn_model

    out, metrics = _evaluate(trained, "recalibrate")
    update = metrics["update"]
    slope = update["parameters"]["slope"]
    assert slope != 1.0 and all(f["slope"] != 1.0 for f in update["per_fold"])
    assert abs(update["updated"]["calibration"]["calibration_intercept"]) < 0.1
    model = load_sklearn_model(Path(update["run_dir"]) / "model")
    assert model.slope == pytest.approx(slope)
    assert model.intercept == pytest.approx(update["parameters"]["intercept"])


def test_refit_end_to_end_from_a_table(trained, tmp_path):
    from sklearn.pipeline import Pipeline

    from medml_cli.runs.artifacts import load_sklearn_model

    site = _site_csv(trained, tmp_path)
    result = run_cli("evaluate", trained["run"], "--data", site, "--update", "refit")
    assert result.exit_code == 0, result.stderr
    metrics = json.loads((Path(result.last_line) / "metrics.json").read_text())
    update = metrics["update"]
    assert update["method"] == "refit" and update["parameters"] == {}
    new = Path(update["run_dir"])
    model = load_sklearn_model(new / "model")
    assert isinstance(model, Pipeline)  # the run's own pipeline, fitted on the site
    assert model.named_steps["model"].C == 0.1
    card = json.loads((new / "model" / "card.json").read_text())
    assert card["trained_on_rows"] == 294 and card["update_method"] == "refit"
    predicted = run_cli("predict", new, "--input", site)
    assert predicted.exit_code == 0, predicted.stderr
    assert len(pd.read_csv(pd.io.common.StringIO(predicted.stdout))) == 294
