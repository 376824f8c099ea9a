"""One small generic registry, used for models, datasets, tasks and CNN networks.

Names are explicit kebab-case strings; registering a name twice is an error, and an unknown
name raises :class:`UnknownNameError` with did-you-mean suggestions.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from medml_cli.errors import UnknownNameError

T = TypeVar("T")


def _natural_key(name: str) -> list[Any]:
    """Sort 'resnet18' before 'resnet101'."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def suggest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Closest valid names to ``name`` (case-insensitive), best first."""
    candidates = list(candidates)
    lowered = {c.lower(): c for c in candidates}
    key = str(name).lower()
    matches = difflib.get_close_matches(key, list(lowered), n=n, cutoff=0.6)
    # initials ('rf' -> 'random-forest'), parts ('forest' -> 'random-forest') and the
    # reverse ('C_value' -> 'C', 'age_group' -> 'age')
    key_parts = [p for p in re.split(r"[-_.]", key) if p]
    for low in lowered:
        parts = re.split(r"[-_]", low)
        initials = "".join(p[0] for p in parts if p)
        if (len(key) >= 2 and (key == initials or key in parts)) or (
                len(key_parts) > 1 and low in key_parts):
            if low not in matches:
                matches.append(low)
    return [lowered[m] for m in matches[:n]]


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """'; did you mean 'x'?' or '' when nothing is close."""
    close = suggest(name, candidates)
    if not close:
        return ""
    return "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered object with its name, summary, config class and tags."""

    name: str
    obj: T
    summary: str = ""
    config: type | None = None
    tags: frozenset[str] = field(default_factory=frozenset)
    #: What a kind of plug-in declares beyond name, config and tags (read-only): a model's
    #: ``trusted_types``, a network's ``dims``.
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


class Registry(Generic[T]):
    """A named collection of builders (or objects) with optional config classes."""

    def __init__(self, kind: str, list_command: str) -> None:
        self.kind = kind
        self.list_command = list_command
        self._entries: dict[str, Entry[T]] = {}

    def register(
        self,
        name: str,
        *,
        config: type | None = None,
        summary: str = "",
        tags: Iterable[str] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> Callable[[T], T]:
        """Decorator: ``@MODELS.register("random-forest", config=..., tags=...)``."""

        def decorator(obj: T) -> T:
            self.add(name, obj, config=config, summary=summary, tags=tags, extra=extra)
            return obj

        return decorator

    def add(
        self,
        name: str,
        obj: T,
        *,
        config: type | None = None,
        summary: str = "",
        tags: Iterable[str] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Register ``obj`` under ``name``; a name taken twice is an error."""
        if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name):
            raise ValueError(f"{self.kind} name {name!r} must be lower-case kebab-case")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, obj, summary, config, frozenset(tags),
                                    MappingProxyType(dict(extra or {})))

    def unregister(self, name: str) -> None:
        """Remove ``name`` (if registered)."""
        self._entries.pop(name, None)

    def entry(self, name: str) -> Entry[T]:
        """The entry registered as ``name``, or an error suggesting close names."""
        try:
            return self._entries[name]
        except KeyError:
            hint = did_you_mean(name, self._entries)
            raise UnknownNameError(
                f"unknown {self.kind} '{name}'{hint} "
                f"Run `{self.list_command}` to see the {self.kind}s medml knows."
            ) from None

    def get(self, name: str) -> T:
        """The object registered as ``name``."""
        return self.entry(name).obj

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the registered builder with the given arguments."""
        builder = self.get(name)
        if not callable(builder):
            raise TypeError(f"{self.kind} {name!r} is not a builder")
        return builder(*args, **kwargs)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def names(self, pattern: str = "*", exclude: Iterable[str] = ()) -> list[str]:
        """Registered names matching a wildcard pattern, naturally sorted."""
        exclude = list(exclude)
        chosen = [
            n
            for n in self._entries
            if fnmatch.fnmatch(n, pattern) and not any(fnmatch.fnmatch(n, e) for e in exclude)
        ]
        return sorted(chosen, key=_natural_key)

    def entries(self, pattern: str = "*") -> list[Entry[T]]:
        """Entries whose names match the wildcard ``pattern``, in natural order."""
        return [self._entries[n] for n in self.names(pattern)]

    def config_classes(self) -> list[type]:
        """Distinct config classes, in name order (a class may serve several names)."""
        seen: list[type] = []
        for entry in self.entries():
            if entry.config is not None and entry.config not in seen:
                seen.append(entry.config)
        return seen


#: Model builders; tags are the problem kinds a model supports and the data kind it needs.
MODELS: Registry[Any] = Registry("model", "medml models list")
#: Dataset loaders; tags say the data kind ("tabular", "image").
DATASETS: Registry[Any] = Registry("dataset", "medml data list")
#: Task presets and generic tasks (TaskSpec objects).
TASKS: Registry[Any] = Registry("task", "medml tasks list")
#: CNN architectures (feature-stack builders); ``extra["dims"]`` is 2 or 3. Each is also a
#: model of the same name in ``MODELS`` (see :func:`medml_cli.models.cnn.register_network`).
NETWORKS: Registry[Any] = Registry("network", "medml models list")
#: Problem types (binary, multiclass, regression, ...): what differs between outcome shapes
#: (see :mod:`medml_cli.problems`).
PROBLEMS: Registry[Any] = Registry("problem type", "medml tasks list")


def model_trusted_types() -> frozenset[str]:
    """The union of the skops types the registered models declare (``trusted_types``)."""
    return frozenset(t for entry in MODELS.entries() for t in entry.extra.get("trusted_types", ()))

