"""The config entry points: read YAML, apply `--set` overrides, validate; YAML and schema out.

One entry point, :func:`load_experiment_config`: read YAML safely (duplicate keys rejected),
apply overrides, validate with pydantic (unknown keys are errors), then run the cross-field
checks. Every problem becomes one line of a :class:`ConfigError` that names the field path,
the value given, what was expected and, when one is close, the valid name meant.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from medml_cli.config.messages import format_validation_error
from medml_cli.config.overrides import apply_overrides
from medml_cli.config.sections import experiment_config_class
from medml_cli.config.yaml_io import (
    MAX_YAML_BYTES,
    YamlTooLargeError,
    dump_yaml,
    load_yaml,
)
from medml_cli.errors import ConfigError


# --------------------------------------------------------------------------- YAML
def _line_map(node: yaml.Node | None, prefix: tuple = ()) -> dict[tuple, int]:
    """Field path -> 1-based line, for pointing errors at the YAML."""
    lines: dict[tuple, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, key_node.value)
            lines[path] = key_node.start_mark.line + 1
            lines.update(_line_map(value_node, path))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = (*prefix, index)
            lines[path] = item.start_mark.line + 1
            lines.update(_line_map(item, path))
    return lines


def parse_yaml_text(text: str, source: str) -> tuple[dict[str, Any], dict[tuple, int]]:
    """Parse a config's text into a mapping and its line map, with clear errors."""
    try:
        data, node = load_yaml(text)
    except YamlTooLargeError as exc:
        raise ConfigError(source, [f"refused: {exc}. Write the values out, or split the "
                                   "experiment into several configs or a sweep"]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown line"
        what = exc.problem or str(exc)
        if exc.context and exc.context_mark is not None:
            what += f" ({exc.context} that starts at line {exc.context_mark.line + 1})"
        raise ConfigError(source, [f"YAML syntax error at {where}: {what}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"YAML error: {exc}"]) from None
    if data is None:
        raise ConfigError(source, [
            "the config is empty; expected a mapping with at least `task:` "
            "(e.g. `task: heart-disease`) — see configs/ for examples"
        ])
    if not isinstance(data, dict):
        raise ConfigError(source, [
            f"the top level is a {type(data).__name__}, expected a mapping of keys such as "
            "`task:`, `data:`, `model:`"
        ])
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise ConfigError(source, [f"top-level key {bad_keys[0]!r} is not a string"])
    return data, _line_map(node)


def read_config_file(path: Path) -> tuple[dict[str, Any], dict[tuple, int]]:
    """Read a YAML config file into a mapping plus the line number of each key."""
    source = str(path)
    if not path.exists():
        raise ConfigError(source, ["file not found; check the path"])
    if path.is_dir():
        raise ConfigError(source, ["this is a folder; give a YAML config file"])
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # /dev/zero or a FIFO would be read forever
            raise ConfigError(source, ["not a regular file (a device, FIFO or socket); give "
                                       "a YAML config file"])
        if info.st_size > MAX_YAML_BYTES:
            raise ConfigError(source, [f"the file is {info.st_size:,} bytes; configs are "
                                       f"limited to {MAX_YAML_BYTES:,}. Is this the config?"])
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, [f"cannot read the file: {exc}"]) from None
    return parse_yaml_text(text, source)


# --------------------------------------------------------------------------- entry points
def validate_config_data(
    data: dict[str, Any],
    *,
    source: str = "<config>",
    lines: dict[tuple, int] | None = None,
    overrides: dict[tuple, str] | None = None,
    base_dir: Path | None = None,
) -> Any:
    """Validate a config mapping; raises ConfigError with one line per problem."""
    root = experiment_config_class()
    try:
        return root.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(
            source, format_validation_error(exc, data, lines or {}, overrides or {}, root)
        ) from None


def load_experiment_config(path: str | Path, overrides: list[str] | None = None) -> Any:
    """Read, override and validate an experiment config file."""
    path = Path(path)
    data, lines = read_config_file(path)
    data, applied = apply_overrides(data, overrides or [])
    return validate_config_data(
        data, source=str(path), lines=lines, overrides=applied,
        base_dir=path.resolve().parent,
    )


def config_to_yaml(cfg: Any) -> str:
    """The fully resolved config as YAML (defaults filled in, paths absolute)."""
    data = cfg.model_dump(mode="json")
    if data.get("card") is None:  # left out, so configs without it keep their hash
        data.pop("card", None)
    order = ["name", "seed", "task", "data", "split", "model", "evaluation"]
    data = {k: data[k] for k in [*order, *(k for k in data if k not in order)] if k in data}
    return dump_yaml(data)


def config_json_schema() -> dict[str, Any]:
    """The JSON schema of the full experiment config, built from the registries."""
    schema = experiment_config_class().model_json_schema()
    schema["title"] = "medml experiment config"
    return schema
