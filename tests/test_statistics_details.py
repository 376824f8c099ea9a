"""Statistics details found by an independent recomputation: per-row (per-fold) thresholds
everywhere held-out rows are classified, an exact decision-curve grid that agrees with
``dcurves`` on tied scores, exact Youden ties, calibration under perfect separation, and the
natural order of subgroup levels."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from medml_cli.config.loader import validate_config_data
from medml_cli.evaluation.bootstrap import as_threshold, bootstrap_distribution
from medml_cli.evaluation.calibration import (
    REVERSED_SEPARATION_WARNING,
    SEPARATION_WARNING,
    calibration_slope_intercept,
    calibration_summary,
    slope_problem,
)
from medml_cli.evaluation.clinical import assess, site_table
from medml_cli.evaluation.decision_curve import decision_curve, default_thresholds, net_benefit
from medml_cli.evaluation.metrics import score_predictions
from medml_cli.evaluation.plots import plot_confusion_matrix
from medml_cli.evaluation.subgroups import age_bands, natural_key, subgroup_metrics
from medml_cli.evaluation.thresholds import choose_threshold
from medml_cli.jsonio import write_json
from medml_cli.workflows.train import load_dataset, subgroup_frame
from tests.conftest import CONFIGS, read_metrics, write_config

CLF = "binary-classification"


def _by_hand(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    tp = int(np.sum((predicted == 1) & (y == 1)))
    tn = int(np.sum((predicted == 0) & (y == 0)))
    return {"sensitivity": tp / int(np.sum(y == 1)), "specificity": tn / int(np.sum(y == 0)),
            "accuracy": (tp + tn) / len(y)}


def _fold_data(seed: int = 0):
    """Scores, truth, a subgroup and per-row thresholds that differ by fold (4 folds)."""
    rng = np.random.default_rng(seed)
    n = 240
    y = rng.integers(0, 2, n)
    score = np.clip(0.5 + 0.25 * (y - 0.5) + rng.normal(scale=0.2, size=n), 0, 1)
    fold = np.arange(n) % 4
    cut = np.array([0.35, 0.45, 0.55, 0.65])[fold]
    group = np.where(rng.random(n) < 0.4, "F", "M")
    return y, score, cut, group


# --------------------------------------------------------------------------- per-row thresholds
def test_as_threshold_checks_length_and_nan():
    assert as_threshold(0.5, 3) == 0.5
    assert as_threshold(np.array([0.1, 0.2]), 2).tolist() == [0.1, 0.2]
    with pytest.raises(ValueError, match="one value per row"):
        as_threshold([0.1, 0.2], 3)
    with pytest.raises(ValueError, match="NaN"):
        as_threshold([0.1, float("nan")], 2)


def test_metrics_and_bootstrap_use_each_rows_threshold():
    y, score, cut, _ = _fold_data()
    metrics = score_predictions(CLF, y, score, cut)
    expected = _by_hand(y, (score >= cut).astype(int))
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, abs=1e-12)
    # a per-row threshold that is the same everywhere gives exactly the scalar result
    same = bootstrap_distribution(CLF, y, score, threshold=np.full(len(y), 0.5), n_resamples=30)
    scalar = bootstrap_distribution(CLF, y, score, threshold=0.5, n_resamples=30)
    for name in scalar:
        np.testing.assert_array_equal(same[name], scalar[name])
    # and differing ones move the resampled sensitivity (it is not the mean threshold)
    mean_cut = bootstrap_distribution(CLF, y, score, threshold=float(cut.mean()), n_resamples=30)
    per_row = bootstrap_distribution(CLF, y, score, threshold=cut, n_resamples=30)
    assert not np.array_equal(mean_cut["sensitivity"], per_row["sensitivity"])


def test_subgroup_metrics_classify_each_row_at_its_own_threshold():
    y, score, cut, group = _fold_data()
    table = subgroup_metrics(CLF, y, score, pd.Series(group), threshold=cut, n_resamples=20)
    predicted = (score >= cut).astype(int)
    for row in table.itertuples():
        mask = group == row.subgroup
        expected = _by_hand(y[mask], predicted[mask])
        assert row.sensitivity == pytest.approx(expected["sensitivity"], abs=1e-12)
        assert row.specificity == pytest.approx(expected["specificity"], abs=1e-12)
        assert row.sensitivity_low <= row.sensitivity <= row.sensitivity_high
    with pytest.raises(ValueError, match="one value per row"):
        subgroup_metrics(CLF, y, score, pd.Series(group), threshold=cut[:-1], n_resamples=5)


def test_assess_subgroups_match_pooled_classification(tmp_path):
    y, score, cut, group = _fold_data(1)
    ev = SimpleNamespace(bootstrap=20, confidence=0.95, subgroups=["sex"], min_subgroup_n=30,
                         min_subgroup_events=10, plots=True)
    result = assess(CLF, y, score, threshold=cut, ev=ev, seed=0,
                    subgroup_frame=pd.DataFrame({"sex": group}), out_dir=tmp_path)
    table = pd.read_csv(tmp_path / "subgroups.csv")
    predicted = (score >= cut).astype(int)
    for row in table.itertuples():
        expected = _by_hand(y[group == row.subgroup], predicted[group == row.subgroup])
        assert row.sensitivity == pytest.approx(expected["sensitivity"], abs=1e-12)
    # subgroup counts add up to the pooled confusion matrix (same classification of rows)
    pooled = result["metrics"]
    assert pooled["sensitivity"] == pytest.approx(_by_hand(y, predicted)["sensitivity"])
    assert (tmp_path / "plots" / "confusion_matrix.png").stat().st_size > 1000


def test_confusion_matrix_plot_accepts_per_row_thresholds(tmp_path):
    y, score, cut, _ = _fold_data()
    assert plot_confusion_matrix(y, score, cut, tmp_path / "cm.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="one value per row"):
        plot_confusion_matrix(y, score, cut[:5], tmp_path / "bad.png")


def test_site_table_uses_per_row_thresholds():
    y, score, cut, group = _fold_data(2)
    predictions = pd.DataFrame({"truth": y, "score": score, "site": group})
    X = pd.DataFrame({"a": np.zeros(len(y))})
    ev = SimpleNamespace(bootstrap=0, confidence=0.95)
    sites = site_table(predictions, X, by="site", threshold=cut, ev=ev, seed=0).set_index("site")
    predicted = (score >= cut).astype(int)
    for site in ("F", "M"):
        expected = _by_hand(y[group == site], predicted[group == site])
        assert sites.loc[site, "accuracy"] == pytest.approx(expected["accuracy"], abs=1e-12)


# --------------------------------------------------------------------------- decision curve
def test_default_grid_is_exact_hundredths():
    grid = default_thresholds()
    assert len(grid) == 99
    assert grid.tolist() == [k / 100 for k in range(1, 100)]
    assert decision_curve([0, 1], [0.2, 0.8])["threshold"].tolist() == grid.tolist()
    # the grid medml used before misses k/100 at 25 points, which flips tied scores
    assert int(np.sum(np.linspace(0.01, 0.99, 99) != grid)) == 25


def test_a_score_equal_to_the_threshold_is_treated():
    # one patient, an event, with risk exactly 0.07 = the threshold: treated, so NB = 1/1
    assert net_benefit([1], [7 / 100], [7 / 100])[0] == 1.0
    assert net_benefit([0], [7 / 100], [7 / 100])[0] == pytest.approx(-0.07 / 0.93)


DATA = Path(__file__).parent / "data"


def test_net_benefit_matches_dcurves_with_scores_tied_on_the_grid():
    """Against net benefit computed by the dcurves package (dcurves 1.1.7, recorded by
    tests/data/make_dcurves_reference.py) on 400 scores that all sit on k/100."""
    # round_trip: pandas 2's default float parser can be 1 ulp off (0.81 != 0.81)
    data = pd.read_csv(DATA / "dcurves_input.csv", float_precision="round_trip")
    ref = pd.read_csv(DATA / "dcurves_reference.csv", float_precision="round_trip")
    assert data["score"].isin(ref["threshold"]).mean() > 0.9  # ties with the grid
    ours = decision_curve(data["y"].to_numpy(), data["score"].to_numpy())
    np.testing.assert_array_equal(ours["threshold"].to_numpy(), ref["threshold"].to_numpy())
    for column, name in (("model", "model"), ("treat_all", "all"), ("treat_none", "none")):
        np.testing.assert_allclose(ours[column].to_numpy(), ref[name].to_numpy(), rtol=0,
                                   atol=1e-12, err_msg=column)


# --------------------------------------------------------------------------- Youden ties
def test_youden_exact_tie_takes_the_highest_threshold():
    # Descending scores alternate positive/negative: J = 1/3 at 0.9, 0.6 and 0.3 exactly.
    y = [1, 0, 1, 0, 1, 0]
    score = [0.9, 0.7, 0.6, 0.4, 0.3, 0.1]
    # In floating point the three tied J values differ (1 - 2/3 > 1/3), which made the
    # lowest of them win before.
    assert 1 - 2 / 3 > 1 / 3
    assert choose_threshold(y, score, method="youden") == 0.9


def test_youden_matches_exact_fractions_on_random_ties():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(6, 40))
        y = rng.integers(0, 2, n)
        if y.min() == y.max():
            continue
        score = rng.integers(1, 30, n) / 31
        n_pos, n_neg = int(y.sum()), int(n - y.sum())
        best, best_j = None, None
        for cut in sorted(set(score.tolist()), reverse=True):  # highest first
            called = score >= cut
            j = Fraction(int(np.sum(called & (y == 1))), n_pos) \
                - Fraction(int(np.sum(called & (y == 0))), n_neg)
            if best_j is None or j > best_j:
                best, best_j = cut, j
        if best_j <= 0:  # "call nobody" (J = 0) wins a tie at the top
            continue
        assert choose_threshold(y, score, method="youden") == best


# --------------------------------------------------------------------------- calibration
def test_separated_predictions_have_no_calibration_slope():
    y = np.r_[np.zeros(50), np.ones(50)]
    rng = np.random.default_rng(0)
    prob = np.r_[rng.uniform(0.05, 0.5, 50), rng.uniform(0.5, 0.95, 50)]
    slope, intercept = calibration_slope_intercept(y, prob)
    assert np.isnan(slope)
    # calibration-in-the-large is still defined: the offset model's score equation holds
    lp = np.log(prob / (1 - prob))
    assert abs(np.sum(y - 1 / (1 + np.exp(-(intercept + lp))))) < 1e-6
    summary = calibration_summary(y, prob)
    assert np.isnan(summary["calibration_slope"]) and summary["warning"] == SEPARATION_WARNING
    assert summary["warning"].startswith(
        "calibration slope undefined: the predictions separate the classes perfectly")
    # quasi-complete (tied at the boundary) and reversed separation have no slope either
    assert slope_problem([0, 0, 1, 1], [0.1, 0.4, 0.4, 0.9]) == SEPARATION_WARNING
    assert slope_problem([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == REVERSED_SEPARATION_WARNING
    # overlapping classes: a finite slope and no warning
    assert slope_problem([0, 1, 0, 1], [0.2, 0.3, 0.6, 0.9]) is None
    assert np.isfinite(calibration_slope_intercept([0, 1, 0, 1], [0.2, 0.3, 0.6, 0.9])[0])


def test_undefined_slope_is_null_in_json(tmp_path):
    ev = SimpleNamespace(bootstrap=0, confidence=0.95, subgroups=[], plots=False)
    result = assess(CLF, np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]),
                    threshold=0.5, ev=ev, seed=0)
    write_json(tmp_path / "m.json", result)
    text = (tmp_path / "m.json").read_text()
    calibration = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))[
        "calibration"]
    assert calibration["calibration_slope"] is None
    assert calibration["warning"] == SEPARATION_WARNING


# --------------------------------------------------------------------------- subgroup order
def test_natural_order_of_subgroup_levels():
    assert sorted([">=60", "50-59", "<40", "40-49"], key=natural_key) == \
        ["<40", "40-49", "50-59", ">=60"]
    assert sorted(["stage 10", "stage 2", "stage 1"], key=natural_key) == \
        ["stage 1", "stage 2", "stage 10"]
    assert sorted([10, 9, 2.5], key=natural_key) == [2.5, 9, 10]
    assert sorted(["b", "a", "10", "9"], key=natural_key) == ["9", "10", "a", "b"]


def test_subgroup_tables_list_levels_in_natural_or_category_order():
    rng = np.random.default_rng(0)
    n = 200
    y, score = rng.integers(0, 2, n), rng.random(n)
    labels = pd.Series(rng.choice(["<45", "45-54", "55-64", ">=65"], n))
    table = subgroup_metrics(CLF, y, score, labels, threshold=0.5, n_resamples=5)
    assert table["subgroup"].tolist() == ["<45", "45-54", "55-64", ">=65"]
    bands = age_bands(pd.Series(rng.integers(30, 80, n)))
    assert subgroup_metrics(CLF, y, score, bands, threshold=0.5, n_resamples=5)[
        "subgroup"].tolist() == ["<45", "45-54", "55-64", ">=65"]
    ordered = pd.Series(pd.Categorical(rng.choice(["high", "low", "mid"], n),
                                       categories=["low", "mid", "high"], ordered=True))
    assert subgroup_metrics(CLF, y, score, ordered, threshold=0.5, n_resamples=5)[
        "subgroup"].tolist() == ["low", "mid", "high"]


# --------------------------------------------------------------------------- through the CLI
def test_cli_youden_subgroups_follow_predictions_csv(cli, runs_dir):
    result = cli("train", CONFIGS / "heart_disease_logreg.yaml", "--runs-dir", runs_dir,
                 "--set", "evaluation.threshold_method=youden",
                 "--set", "evaluation.subgroups=[sex, age_band]",
                 "--set", "evaluation.bootstrap=50")
    assert result.exit_code == 0, result.stderr
    run = Path(result.last_line)
    predictions = pd.read_csv(run / "predictions.csv")
    assert predictions.groupby("fold")["threshold"].first().nunique() > 1  # differ by fold
    assert (predictions["predicted_class"]
            == (predictions["score"] >= predictions["threshold"]).astype(int)).all()

    dataset = load_dataset(validate_config_data({
        "task": "heart-disease", "data": {"type": "uci-heart-disease", "sites": ["cleveland"]}}))
    frame = subgroup_frame(dataset, predictions["id"])
    columns = {"sex": frame["sex"].to_numpy(),
               "age_band": age_bands(frame["age"]).astype(str).to_numpy()}
    truth, predicted = predictions["truth"].to_numpy(), predictions["predicted_class"].to_numpy()
    table = pd.read_csv(run / "subgroups.csv")
    for row in table.itertuples():
        values = columns[row.variable]
        mask = values == (float(row.subgroup) if row.variable == "sex" else row.subgroup)
        assert mask.sum() == row.n
        expected = _by_hand(truth[mask], predicted[mask])
        assert row.sensitivity == pytest.approx(expected["sensitivity"], abs=1e-12), row
        assert row.specificity == pytest.approx(expected["specificity"], abs=1e-12), row
    bands = table[table["variable"] == "age_band"]["subgroup"].tolist()
    assert bands == ["<45", "45-54", "55-64", ">=65"]
    pooled = read_metrics(run)["metrics"]
    assert pooled["sensitivity"] == pytest.approx(_by_hand(truth, predicted)["sensitivity"])
    assert "classified at their own fold's threshold" in (run / "report.md").read_text()

    # evaluate re-scores the same rows at the same per-fold thresholds, and reports the
    # threshold predict uses (the model card's), not the mean of the folds'
    result = cli("evaluate", run, "--json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    card = json.loads((run / "model" / "card.json").read_text())
    assert payload["threshold"] == card["threshold"]
    again = pd.read_csv(Path(payload["evaluation_dir"]) / "subgroups.csv")
    np.testing.assert_array_equal(again["sensitivity"], table["sensitivity"])


def test_cli_separated_run_warns_and_writes_the_exact_decision_curve(cli, runs_dir, tmp_path):
    rng = np.random.default_rng(0)
    x = np.r_[rng.uniform(0, 4, 60), rng.uniform(6, 10, 60)]  # a wide gap: separable
    pd.DataFrame({"x": x, "noise": rng.normal(size=120),
                  "y": np.r_[np.zeros(60, int), np.ones(60, int)]}).to_csv(
        tmp_path / "sep.csv", index=False)
    # 100 fully grown trees: every score is a vote share k/100, tied with the DCA grid
    config = write_config(tmp_path, "task: tabular-classification\n"
                          "data: {type: csv, path: sep.csv, target: y}\n"
                          "split: {method: kfold, n_splits: 3}\n"
                          "model: {type: random-forest, n_estimators: 100, "
                          "min_samples_leaf: 1}\n"
                          "evaluation: {bootstrap: 50}\n")
    result = cli("train", config, "--runs-dir", runs_dir)
    assert result.exit_code == 0, result.stderr
    run = Path(result.last_line)

    text = (run / "metrics.json").read_text()
    calibration = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))[
        "calibration"]
    assert calibration["calibration_slope"] is None
    assert calibration["warning"] == SEPARATION_WARNING
    assert "calibration slope undefined" in (run / "log.txt").read_text()
    assert "calibration slope undefined" in (run / "report.md").read_text()

    predictions = pd.read_csv(run / "predictions.csv")
    grid = default_thresholds()
    assert predictions["score"].isin(np.arange(101) / 100).all()
    assert predictions["score"].isin(grid).sum() > 0  # some scores equal a grid threshold
    curve = pd.read_csv(run / "decision_curve.csv")
    assert curve["threshold"].tolist() == grid.tolist()
    # net_benefit itself is checked against dcurves above; here the run's file must be it
    theirs = net_benefit(predictions["truth"].to_numpy(), predictions["score"].to_numpy(), grid)
    np.testing.assert_allclose(curve["model"].to_numpy(), theirs, rtol=0, atol=1e-12)
