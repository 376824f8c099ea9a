"""How tabular models register: a config class, the problems they solve, one builder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from medml_cli.registry import MODELS

PROBLEMS = ("binary-classification", "regression")


def register_model(
    name: str,
    *,
    config: type,
    summary: str,
    problems: tuple[str, ...],
    data_kind: str = "tabular",
) -> Callable[[Any], Any]:
    """Register a builder ``build(cfg, *, problem, schema, seed) -> estimator``."""
    unknown = set(problems) - set(PROBLEMS)
    if unknown:
        raise ValueError(f"unknown problem kinds {unknown}")
    return MODELS.register(name, config=config, summary=summary, tags={*problems, data_kind})


