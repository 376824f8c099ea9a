"""Experiment configs: YAML loading (``yaml_io``), ``--set`` overrides (``overrides``), the
sections and cross-field checks (``sections``), validation messages (``messages``) and the
entry points (``loader``).

One entry point, :func:`load_experiment_config`: read YAML safely (duplicate keys rejected),
apply overrides, validate with pydantic (unknown keys are errors), then run the cross-field
checks. Every problem becomes one line of a :class:`ConfigError` that names the field path,
the value given, what was expected and, when one is close, the valid name meant.
"""

from medml_cli.config.loader import (
    config_json_schema,
    config_to_yaml,
    load_experiment_config,
    parse_yaml_text,
    read_config_file,
    validate_config_data,
)
from medml_cli.config.messages import format_validation_error
from medml_cli.config.overrides import (
    CONFIG_KEY,
    NotASectionError,
    apply_overrides,
    parse_override,
    set_by_path,
)
from medml_cli.config.sections import (
    NAME_PATTERN,
    EvaluationConfig,
    ExperimentConfigBase,
    SplitConfig,
    cross_field_problems,
    experiment_config_class,
)

__all__ = [
    "CONFIG_KEY",
    "NAME_PATTERN",
    "EvaluationConfig",
    "ExperimentConfigBase",
    "NotASectionError",
    "SplitConfig",
    "apply_overrides",
    "config_json_schema",
    "config_to_yaml",
    "cross_field_problems",
    "experiment_config_class",
    "format_validation_error",
    "load_experiment_config",
    "parse_override",
    "parse_yaml_text",
    "read_config_file",
    "set_by_path",
    "validate_config_data",
]
