"""model/card.md for every run (Mitchell et al. 2019), its typed data in card.json's
``reporting`` block, and ``medml runs show RUN --card``: sections present for every problem
type and data kind, figures equal to metrics.json's and provenance to environment.json's,
the manifest covering card.md, old runs rendered on the fly, and bad input refused."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import CONFIGS, read_metrics, run_cli

SECTIONS = ("## Model details", "## Intended use", "## Factors", "## Metrics",
            "## Evaluation data", "## Training data", "## Quantitative analyses",
            "## Threshold", "## Caveats and recommendations", "## Provenance")
TINY_CNN = ["--set", "data.n_patients=10", "--set", "data.samples_per_patient=4",
            "--set", "data.size=16", "--set", "model.filters=[4,8]",
            "--set", "model.dense_units=8", "--set", "model.epochs=2",
            "--set", "evaluation.bootstrap=50", "--set", "evaluation.explain_n=2",
            "--set", "evaluation.plots=false"]
QUICK = ["--set", "evaluation.bootstrap=100"]


def _train(runs: Path, config: str | Path, *extra: str) -> Path:
    result = run_cli("train", config if isinstance(config, Path) else CONFIGS / config,
                     "--runs-dir", runs, *extra)
    assert result.exit_code == 0, result.stderr
    return Path(result.last_line)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("card-runs")


@pytest.fixture(scope="module")
def binary_run(runs) -> Path:
    return _train(runs, "heart_disease_logreg.yaml", *QUICK, "--set",
                  "evaluation.subgroups=[sex]")


def _card(run: Path) -> str:
    return (run / "model" / "card.md").read_text(encoding="utf-8")


def _table_row(card: str, metric: str) -> list[str]:
    """The cells of the overall metrics table's row for ``metric`` (the first table with
    a `| metric | model | ... CI` header)."""
    table = card.split("| metric | model |", 1)[1].split("\n\n", 1)[0]
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == metric:
            return cells
    raise AssertionError(f"{metric} not in the card's metrics table")


def _number(text: str) -> float:
    return float(text.replace("−", "-"))


def _assert_figures_match(run: Path) -> None:
    """Every metric and CI in card.md equals metrics.json's (to the 3 decimals shown)."""
    card, metrics = _card(run), read_metrics(run)
    for name, value in metrics["metrics"].items():
        cells = _table_row(card, name)
        if value is None:
            assert cells[1] == "n/a"
            continue
        assert _number(cells[1]) == pytest.approx(value, abs=5e-4), name
        ci = metrics["intervals"].get(name)
        if ci and None not in ci:
            low, high = (_number(x) for x in cells[2].split("–"))
            assert (low, high) == pytest.approx(ci, abs=5e-4), name


def _assert_provenance_matches(run: Path) -> None:
    card = _card(run)
    environment = json.loads((run / "environment.json").read_text())
    for name, digest in environment["data_sha256"].items():
        assert f"data {name} sha256: {digest}" in card
    if environment.get("git_commit"):
        assert environment["git_commit"] in card
    config_digest = hashlib.sha256((run / "config.yaml").read_bytes()).hexdigest()
    assert f"config.yaml sha256: {config_digest}" in card


def _assert_complete(run: Path) -> dict:
    card = _card(run)
    positions = [card.index(s) for s in SECTIONS]
    assert positions == sorted(positions), "sections out of Mitchell et al.'s order"
    assert "Mitchell" in card and "10.1145/3287560.3287596" in card
    _assert_figures_match(run)
    _assert_provenance_matches(run)
    reporting = json.loads((run / "model" / "card.json").read_text())["reporting"]
    assert reporting["metrics"]["primary_metric"] == read_metrics(run)["primary_metric"]
    return reporting


# --------------------------------------------------------------------------- every kind
def test_binary_run_card(binary_run):
    reporting = _assert_complete(binary_run)
    card, metrics = _card(binary_run), read_metrics(binary_run)
    assert "SYNTHETIC" not in card.split("## Model details")[0]
    # threshold and how it was chosen, calibration, subgroups, data and intended use
    assert f"Threshold: {metrics['threshold']:.3f} (method: fixed)" in card
    slope = metrics["calibration"]["calibration_slope"]
    assert f"Calibration slope {slope:.3f}" in card
    assert reporting["factors"]["subgroup_variables"] == ["sex"]
    groups = {(r["variable"], str(r["subgroup"])): r for r in metrics["subgroups"]}
    assert {(r["variable"], r["label"]) for r in reporting["metrics"]["subgroups"]} \
        == set(groups)
    assert "| variable | subgroup | n | events |" in card
    assert "Licence: CC BY 4.0" in card and "Not validated for clinical decisions" in card
    assert "external validity) is unknown" in card  # one site: cleveland
    assert reporting["training_data"]["rows"] == metrics["n"]["samples"]


def test_regression_run_card(runs):
    run = _train(runs, "diabetes_ridge.yaml", *QUICK)
    reporting = _assert_complete(run)
    assert reporting["threshold"] is None and "Not applicable" in _card(run)


def test_multiclass_run_card_has_per_class_figures(runs):
    run = _train(runs, "heart_disease_severity.yaml", *QUICK)
    reporting = _assert_complete(run)
    card, per_class = _card(run), read_metrics(run)["per_class"]
    assert "| class | n | events |" in card
    for name, scores in per_class.items():
        row = next(r for r in reporting["metrics"]["per_class"] if r["label"] == name)
        assert row["n"] == scores["n"] and row["values"]["auroc"] == pytest.approx(
            scores["auroc"])
        if scores["n"] < 30:
            assert f"Class {name}: only {scores['n']} patients" in card
    assert "most probable class" in card


def test_survival_run_card_has_c_index_and_horizons(runs):
    run = _train(runs, "lung_cancer_survival_cox.yaml", *QUICK)
    reporting = _assert_complete(run)
    survival = read_metrics(run)["survival"]
    assert reporting["metrics"]["horizons"] == survival["horizons"]
    card = _card(run)
    assert "| c_index |" in card and "Horizons:" in card
    assert any(f"| auroc@{h:g} |" in card for h in survival["horizons"])


def test_leave_group_out_card_has_a_per_site_table(runs):
    run = _train(runs, "heart_disease_internal_external.yaml", *QUICK)
    reporting = _assert_complete(run)
    groups = read_metrics(run)["internal_external"]["groups"]
    card = _card(run)
    assert "| site | n | events |" in card
    for group in groups:
        assert re.search(rf"\| {group['group']} \| {group['samples']} \| {group['events']} \| "
                         rf"{group['auroc']:.3f} ", card), group["group"]
    assert [s["label"] for s in reporting["metrics"]["sites"]] == [g["group"] for g in groups]
    assert "prediction interval" in card
    assert "external validity) is unknown" not in card  # validated across sites


def test_tuned_run_card_names_the_chosen_values_and_the_optimism(runs):
    run = _train(runs, "heart_disease_tuned.yaml", *QUICK, "--set", "tune.trials=2",
                 "--set", "tune.inner_splits=2", "--set", "split.n_splits=2",
                 "--set", "evaluation.plots=false")
    reporting = _assert_complete(run)
    tuning = read_metrics(run)["tuning"]
    assert reporting["details"]["tuned_parameters"] == tuning["final"]["params"]
    assert f"optimistic by {tuning['mean_optimism']:.3f}" in _card(run)


@pytest.mark.slow
@pytest.mark.tensorflow
def test_cnn_run_card_says_synthetic(runs):
    run = _train(runs, "lung_ct_cnn2d.yaml", *TINY_CNN)
    reporting = _assert_complete(run)
    card = _card(run)
    assert card.split("\n", 3)[2].startswith("> **SYNTHETIC DATA")  # banner under the title
    assert reporting["training_data"]["synthetic"] is True
    assert "SYNTHETIC: generated data" in card and "real patients" in card
    reference = read_metrics(run)["reference"]["voxel-logistic-regression"]["auroc"]
    assert "| baseline | voxel-logistic-regression |" in card
    assert f"| auroc | {read_metrics(run)['metrics']['auroc']:.3f} |" in card
    assert f"{reference:.3f} |" in _table_row(card, "auroc")[-1] + " |"
    record = json.loads((run / "model" / "card.json").read_text())
    low, high = record["intensity"][1:]
    assert f"Input: images of shape {tuple(record['input_shape'])}, intensity HU window " \
           f"{low:g} to {high:g}" in card
    assert reporting["details"]["input_shape"] == record["input_shape"]


# --------------------------------------------------------------------------- runs show --card
def test_runs_show_card_prints_it_and_json_gives_the_record(binary_run):
    shown = run_cli("runs", "show", binary_run, "--card")
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout == _card(binary_run) and "rendered now" not in shown.stderr
    as_json = run_cli("runs", "show", binary_run, "--card", "--json")
    assert as_json.exit_code == 0, as_json.stderr
    payload = json.loads(as_json.stdout)
    stored = json.loads((binary_run / "model" / "card.json").read_text())["reporting"]
    assert payload["card"] == stored and payload["rendered_now"] is False


def test_an_old_run_without_card_md_still_shows_a_card(binary_run, tmp_path):
    from medml_cli.runs.artifacts import MANIFEST, write_model_json

    old = tmp_path / binary_run.name
    shutil.copytree(binary_run, old)
    model = old / "model"
    (model / "card.md").unlink()
    card = json.loads((model / "card.json").read_text())
    del card["reporting"]
    manifest = json.loads((model / MANIFEST).read_text())
    del manifest["files"]["card.md"]
    (model / MANIFEST).write_text(json.dumps(manifest))
    write_model_json(model, "card.json", card)  # as an earlier medml left it
    shown = run_cli("runs", "show", old, "--card")
    assert shown.exit_code == 0, shown.stderr
    assert "rendered now from its records" in shown.stderr
    for section in SECTIONS:
        assert section in shown.stdout
    auroc = read_metrics(old)["metrics"]["auroc"]
    assert f"| auroc | {auroc:.3f} |" in shown.stdout
    assert "source: not recorded" in shown.stdout  # only the loaded data knew it


def test_a_broken_run_exits_2(binary_run, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(binary_run, broken)
    (broken / "metrics.json").write_text("{not json")
    result = run_cli("runs", "show", broken, "--card")
    assert result.exit_code == 2
    assert "metrics.json" in result.stderr and "Traceback" not in result.stderr


def test_a_tampered_card_md_is_detected(binary_run, tmp_path):
    tampered = tmp_path / "tampered"
    shutil.copytree(binary_run, tampered)
    path = tampered / "model" / "card.md"
    path.write_text(path.read_text().replace("Not validated", "Validated"))
    result = run_cli("runs", "show", tampered, "--card")
    assert result.exit_code == 2
    assert "card.md" in result.stderr and "changed" in result.stderr


# --------------------------------------------------------------------------- integrity, config
def test_predict_and_evaluate_on_a_fresh_run_give_no_integrity_warnings(binary_run, tmp_path):
    manifest = json.loads((binary_run / "model" / "manifest.json").read_text())
    digest = hashlib.sha256((binary_run / "model" / "card.md").read_bytes()).hexdigest()
    assert manifest["files"]["card.md"] == digest
    from medml_cli.data.sources.uci_heart import load_frame

    rows = tmp_path / "rows.csv"
    load_frame(["hungarian"]).head(20).drop(columns=["site", "num", "disease"]).to_csv(
        rows, index=False)
    predicted = run_cli("predict", binary_run, "--input", rows)
    assert predicted.exit_code == 0, predicted.stderr
    assert "checksum" not in predicted.stderr.lower() and "manifest" not in predicted.stderr
    evaluated = run_cli("evaluate", binary_run)
    assert evaluated.exit_code == 0, evaluated.stderr
    assert "checksum" not in evaluated.stderr.lower() and "manifest" not in evaluated.stderr


def test_card_section_in_the_config_is_used(runs, tmp_path):
    config = tmp_path / "exp.yaml"
    config.write_text((CONFIGS / "diabetes_ridge.yaml").read_text() + """
card:
  intended_use: Teaching example for a statistics course
  intended_users: Students
  out_of_scope: [Any clinical use]
  caveats: [Outcome measured at one time point only]
""")
    run = _train(runs, config, *QUICK)
    card = _card(run)
    assert "Primary intended use: Teaching example for a statistics course" in card
    assert "Out of scope: Any clinical use" in card and "Out of scope: Diagnosis" not in card
    assert "- Outcome measured at one time point only" in card
    assert "medml's default wording" not in card


def test_unknown_key_in_card_section_exits_2(tmp_path, runs_dir):
    config = tmp_path / "exp.yaml"
    config.write_text((CONFIGS / "diabetes_ridge.yaml").read_text()
                      + "card:\n  intended_uses: x\n")
    result = run_cli("train", config, "--runs-dir", runs_dir)
    assert result.exit_code == 2
    assert "card.intended_uses" in result.stderr and "intended_use" in result.stderr
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_a_config_without_card_keeps_its_resolved_yaml(binary_run):
    """No `card:` section: the resolved config.yaml does not gain a `card: null` line, so
    sweep trial ids (a hash of it) stay what they were."""
    assert "card:" not in (binary_run / "config.yaml").read_text()


def test_a_run_saved_by_evaluate_update_has_its_own_card(binary_run, tmp_path):
    site = tmp_path / "hungarian.yaml"
    site.write_text("data: {type: uci-heart-disease, sites: [hungarian]}\n")
    result = run_cli("evaluate", binary_run, "--data", site, "--update", "intercept",
                     "--set", "evaluation.bootstrap=50")
    assert result.exit_code == 0, result.stderr
    evaluation = Path(result.last_line)
    updated = Path(read_metrics(evaluation)["update"]["run_dir"])
    reporting = _assert_complete(updated)
    assert reporting["details"]["parent_run"] == binary_run.name
    assert f"Updated from run `{binary_run.name}`" in _card(updated)
    assert "hungarian" in _card(updated)


@pytest.mark.parametrize("config", ["heart_disease_internal_external.yaml",
                                    "heart_disease_external.yaml",
                                    "heart_disease_severity.yaml",
                                    "lung_cancer_survival_cox.yaml"])
def test_a_run_without_bootstrap_gets_its_card(runs, config):
    # no bootstrap: no CIs, and the leave-group-out measures that need bootstrap standard
    # errors are left unpooled (None); the card must still be written, not fail the run
    run = _train(runs, config, "--set", "evaluation.bootstrap=0")
    _assert_complete(run)
    assert "| auroc |" in _card(run) or "| macro_auroc |" in _card(run) \
        or "| c_index |" in _card(run)
