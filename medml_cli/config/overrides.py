"""``--set key.path=value`` overrides: parsing them and applying them to a config mapping."""

from __future__ import annotations

import copy
import re
from typing import Any

import yaml

from medml_cli.config.yaml_io import (
    YamlTooLargeError,
    load_yaml_value,
)
from medml_cli.errors import ConfigError

CONFIG_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def parse_override(text: str) -> tuple[list[str], Any]:
    """'model.n_estimators=500' -> (['model', 'n_estimators'], 500); values parse as YAML."""
    if "=" not in text:
        raise ConfigError("--set", [f"'{text}': expected KEY.PATH=VALUE, e.g. "
                                    "model.n_estimators=500"])
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(CONFIG_KEY.match(p) for p in parts):
        raise ConfigError("--set", [f"'{text}': '{key}' is not a dotted path of keys"])
    try:
        value = load_yaml_value(raw) if raw.strip() else None
    except YamlTooLargeError as exc:
        raise ConfigError("--set", [f"'{text[:80]}': refused: {exc}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError("--set", [f"'{text}': the value is not valid YAML ({exc})"]) from None
    return parts, value


class NotASectionError(ValueError):
    """A dotted path runs through a plain value (``seed.x`` when ``seed`` is a number)."""

    def __init__(self, path: str, value: Any, key: str) -> None:
        self.path, self.value, self.key = path, value, key
        super().__init__(f"'{path}' holds a value ({value!r}), not a section, so it has no "
                         f"key '{key}'")


def set_by_path(data: dict[str, Any], parts: list[str], value: Any) -> None:
    """``data[a][b][c] = value`` for parts [a, b, c], creating sections that are missing."""
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise NotASectionError(".".join(parts[: depth + 1]), child, parts[depth + 1])
        node = child
    node[parts[-1]] = value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> tuple[dict, dict]:
    """Apply ``--set`` overrides to a copy; returns the new mapping and path -> override text."""
    data = copy.deepcopy(data)
    applied: dict[tuple, str] = {}
    for text in overrides:
        parts, value = parse_override(text)
        try:
            set_by_path(data, parts, value)
        except NotASectionError as exc:
            raise ConfigError("--set", [f"'{text}': {exc}"]) from None
        applied[tuple(parts)] = text
    return data, applied
