"""Config loading, overrides, validation messages and the JSON schema."""

from __future__ import annotations

import json
import textwrap

import pytest
import yaml

from medml_cli.config.loader import config_to_yaml, load_experiment_config
from medml_cli.config.overrides import apply_overrides, parse_override
from medml_cli.errors import ConfigError
from tests.conftest import CONFIGS, write_config

GOOD = """\
task: heart-disease
model:
  type: random-forest
  n_estimators: 50
"""

# (snippet, text the message must contain): each is a distinct way to get a config wrong.
BAD_CONFIGS = [
    ("", "empty"),
    ("- task: heart-disease\n", "top level is a list"),
    ("task: heart-disease\nmodel: {type: svm\n", "line 2"),
    ("task: heart-disease\ntask: diabetes\n", "duplicate key 'task'"),
    ("task: heart-disease\nmodel:\n  type: random-forest\n  n_estimator: 5\n",
     "model.n_estimator: unknown key for model type 'random-forest' (given 5); did you mean "
     "'n_estimators'?"),
    ("task: heart-disease\nmodle: {type: svm}\n",
     "modle: unknown key (given {'type': 'svm'}); did you mean 'model'?"),
    ("task: heart-disease\nmodel: {type: random-forest, n_estimators: many}\n",
     "model.n_estimators"),
    ("task: heart-disease\nmodel: {type: random-forest, n_estimators: -3}\n",
     "model.n_estimators: Input should be greater than or equal to 1; got -3"),
    ("task: heart-disease\nsplit: {method: holdout, test_size: 1.5}\n", "split.test_size"),
    ("task: heart-disease\nsplit: {method: bootstrap}\n", "split.method"),
    ("task: heart-diseas\n", "task: 'heart-diseas' is not a task; did you mean 'heart-disease'"),
    ("task: heart-disease\nmodel: {type: rf}\n", "did you mean 'random-forest'?"),
    ("task: heart-disease\ndata: {type: uci-heart}\n",
     "data.type: 'uci-heart' is not a dataset type; did you mean 'uci-heart-disease'?"),
    ("task: diabetes\nmodel: {type: svm}\n",
     "model.type: 'svm' is a binary-classification / multiclass model but task 'diabetes' is "
     "regression"),
    ("task: heart-disease\nmodel: {type: ridge}\n",
     "model.type: 'ridge' is a regression model but task 'heart-disease'"),
    ("task: heart-disease\ndata: {type: uci-heart-disease, sites: [zurich]}\n", "data.sites.0"),
    ("task: heart-disease\ndata: {type: uci-heart-disease, features: [cholesterol]}\n",
     "data.features"),
    ("task: heart-disease\nseed: -1\n", "seed"),
    ("task: heart-disease\nevaluation: {threshold: 2}\n", "evaluation.threshold"),
    ("task: tabular-classification\ndata: {type: csv, target: y}\n",
     "data.path: required but missing"),
    ("task: heart-disease\nmodel: {type: svm, kernel: cubic}\n", "model.kernel"),
    ("task: diabetes\nmodel: {type: random-forest, class_weight: balanced}\n",
     "model.class_weight: only applies to classification"),
    ("task: heart-disease\nname: 'has spaces'\n", "name"),
    ("task: heart-disease\nmodel: {n_estimators: 10, type: gradient-boosting}\n",
     "model.n_estimators: unknown key for model type 'gradient-boosting'"),
    ("task: heart-disease\ndata: {type: diabetes}\n",
     "data.type: 'diabetes' is regression data"),
]


@pytest.mark.parametrize("snippet,expected", BAD_CONFIGS)
def test_bad_config_exits_2_naming_the_field(tmp_path, cli, runs_dir, snippet, expected):
    config = write_config(tmp_path, snippet)
    result = cli("train", config, "--runs-dir", runs_dir)
    assert result.exit_code == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert " ".join(expected.split()) in message
    assert str(config) in message  # names the file
    assert "Traceback" not in result.stderr
    assert not runs_dir.exists() or not any(runs_dir.iterdir())  # nothing was started


def test_validate_and_show_resolve_defaults(tmp_path, cli):
    config = write_config(tmp_path, GOOD)
    assert cli("config", "validate", config).exit_code == 0
    shown = cli("config", "show", config, "--set", "model.max_depth=4")
    assert shown.exit_code == 0
    resolved = yaml.safe_load(shown.stdout)
    assert resolved["data"] == {"type": "uci-heart-disease", "sites": ["cleveland"],
                                "features": None, "exclude": [],
                                "missing": "impute"}
    assert resolved["model"]["max_depth"] == 4
    assert resolved["split"]["n_splits"] == 5
    assert resolved["seed"] == 42


def test_resolved_config_round_trips(tmp_path):
    cfg = load_experiment_config(write_config(tmp_path, GOOD), ["seed=7"])
    again = load_experiment_config(write_config(tmp_path, config_to_yaml(cfg), "again.yaml"))
    assert again.model_dump() == cfg.model_dump()


def test_overrides_parse_values_as_yaml():
    assert parse_override("model.n_estimators=500") == (["model", "n_estimators"], 500)
    assert parse_override("data.sites=[hungarian, va]") == (["data", "sites"],
                                                           ["hungarian", "va"])
    assert parse_override("name=abc") == (["name"], "abc")
    data, applied = apply_overrides({"model": {"type": "svm"}}, ["model.C=0.5"])
    assert data["model"]["C"] == 0.5 and ("model", "C") in applied


def test_override_of_unknown_path_is_an_error(tmp_path, cli):
    config = write_config(tmp_path, GOOD)
    result = cli("config", "validate", config, "--set", "model.n_estimator=10")
    assert result.exit_code == 2
    assert "did you mean 'n_estimators'" in result.stderr
    assert "--set model.n_estimator=10" in result.stderr
    result = cli("config", "validate", config, "--set", "seed.value=1")
    assert result.exit_code == 2 and "seed" in result.stderr
    result = cli("config", "validate", config, "--set", "model.type.x=1")
    assert result.exit_code == 2 and "not a section" in result.stderr
    result = cli("config", "validate", config, "--set", "no-equals-sign")
    assert result.exit_code == 2 and "KEY.PATH=VALUE" in result.stderr


def test_yaml_syntax_error_reports_line(tmp_path):
    config = write_config(tmp_path, "task: heart-disease\nmodel:\n  type: [svm\n")
    with pytest.raises(ConfigError, match=r"line \d+"):
        load_experiment_config(config)


def test_errors_point_at_the_yaml_line(tmp_path):
    config = write_config(tmp_path, GOOD + "  max_depht: 3\n")
    with pytest.raises(ConfigError) as info:
        load_experiment_config(config)
    assert "[line 5]" in str(info.value)


def test_missing_config_file(cli, tmp_path):
    result = cli("train", tmp_path / "nope.yaml")
    assert result.exit_code == 2 and "file not found" in result.stderr


def test_yaml_tags_cannot_build_python_objects(tmp_path):
    config = write_config(tmp_path, "task: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError):
        load_experiment_config(config)


def test_relative_data_path_resolves_against_config_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    config = write_config(
        tmp_path / "sub",
        "task: tabular-classification\ndata: {type: csv, path: ../table.csv, target: y}\n",
    )
    cfg = load_experiment_config(config)
    assert cfg.data.path == (tmp_path / "table.csv").resolve()


def test_schema_lists_models_and_datasets(cli):
    result = cli("config", "schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    text = json.dumps(schema)
    for name in ("random-forest", "svm", "ridge", "uci-heart-disease", "diabetes", "csv"):
        assert name in text
    assert schema["title"] == "medml experiment config"


@pytest.mark.parametrize("config", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_validates(config):
    cfg = load_experiment_config(config)
    assert cfg.task


def test_debug_shows_traceback_only_when_asked(tmp_path, cli):
    config = write_config(tmp_path, textwrap.dedent("task: nope\n"))
    assert "Traceback" not in cli("config", "validate", config).stderr
    assert "Traceback" in cli("--debug", "config", "validate", config).stderr
