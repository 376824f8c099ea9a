"""Reading and writing YAML for configs, bounded and with YAML 1.2 scalars.

PyYAML implements YAML 1.1, where ``yes``/``no``/``on``/``off`` are booleans, ``010`` is the
octal number 8 and ``1:30`` is 90. In a medical config those are answers, codes and times,
so a class label ``yes`` became ``True`` and an id ``007`` became ``7``. Here only
``true``/``false`` are booleans, integers are plain decimal (``0x`` hex allowed), numbers with
leading zeros stay text, and dates stay text.

Aliases share one object when constructed, but anything that walks the document (the line
map, validation, a deep copy) sees every copy: nine levels of nine aliases is a billion nodes
from a 1 kB file. Documents are measured as they would expand and refused above a bound.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

#: Largest config medml reads, in bytes and in nodes once aliases are expanded.
MAX_YAML_BYTES = 2_000_000
MAX_YAML_NODES = 200_000


class YamlTooLargeError(ValueError):
    """The document is larger, deeper or expands further than any config needs."""


class Yaml12Resolver(BaseResolver):
    """Implicit types of the YAML 1.2 core schema, minus leading-zero integers."""


_IMPLICIT = [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+)$",
     "-+0123456789"),
    ("tag:yaml.org,2002:float",
     r"^(?:[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*|[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+"
     r"|\.[0-9]+[eE][-+]?[0-9]+)|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
     "-+0123456789."),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", "<"),
]
for _tag, _pattern, _first in _IMPLICIT:
    Yaml12Resolver.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


class _Constructor(SafeConstructor):
    """Safe constructor that refuses duplicate keys instead of keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` then a key of base's is an override, not a duplicate
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, f"unhashable key {key!r}", key_node.start_mark) from None
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}' (first given on line {first + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


class ConfigLoader(Reader, Scanner, Parser, Composer, _Constructor, Yaml12Resolver):
    """A safe loader (no Python tags) with YAML 1.2 scalars and no duplicate keys."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _Constructor.__init__(self)
        Yaml12Resolver.__init__(self)


def expanded_size(node: yaml.Node | None, limit: int = MAX_YAML_NODES) -> int:
    """Number of nodes the document has once every alias is expanded (stops past ``limit``)."""
    sizes: dict[int, int] = {}

    def size(item: yaml.Node) -> int:
        known = sizes.get(id(item))
        if known is not None:
            return known
        total = 1
        if isinstance(item, yaml.MappingNode):
            for key, value in item.value:
                total += size(key) + size(value)
                if total > limit:
                    break
        elif isinstance(item, yaml.SequenceNode):
            for child in item.value:
                total += size(child)
                if total > limit:
                    break
        sizes[id(item)] = total
        return total

    return size(node) if node is not None else 0


def load_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """Parse one document into (data, node); raises yaml.YAMLError or YamlTooLargeError."""
    if len(text) > MAX_YAML_BYTES:
        raise YamlTooLargeError(f"the document is {len(text):,} characters long; configs are "
                                f"limited to {MAX_YAML_BYTES:,}")
    loader = ConfigLoader(text)
    try:
        try:
            node = loader.get_single_node()
            if expanded_size(node) > MAX_YAML_NODES:
                raise YamlTooLargeError(
                    f"the document expands to more than {MAX_YAML_NODES:,} values once its "
                    "aliases (*name) are followed; an alias chain like this is how a "
                    "'billion laughs' file exhausts memory")
            data = loader.construct_document(node) if node is not None else None
        except RecursionError:
            raise YamlTooLargeError("the document is nested too deeply") from None
    finally:
        loader.dispose()
    return data, node


def load_yaml_value(text: str) -> Any:
    """One value (a ``--set`` right-hand side, a run's config.yaml) with the same rules."""
    return load_yaml(text)[0]


def _resolve_12(value: str) -> str | None:
    """The tag YAML 1.2 would give a plain scalar, if it is not a string."""
    for tag, regexp in Yaml12Resolver.yaml_implicit_resolvers.get(value[:1], []):
        if regexp.match(value):
            return tag
    return None


class _Dumper(yaml.SafeDumper):
    """Quotes every string that either YAML 1.1 or 1.2 would read back as something else,
    so files medml writes mean the same to medml and to other tools."""

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        tag = super().resolve(kind, value, implicit)
        if kind is yaml.ScalarNode and implicit[0] and tag == "tag:yaml.org,2002:str":
            return _resolve_12(value) or tag
        return tag


def dump_yaml(data: Any) -> str:
    """Dump data as YAML with keys in their given order and Unicode kept."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True)


#: PyYAML's safe loader, in libyaml's C version when PyYAML was built with it (the wheels
#: are): the same documents, types and errors, about six times faster.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_written_yaml(text: str) -> Any:
    """Load YAML that medml wrote itself (a run's config.yaml, a sweep's sweep.yaml) as
    ``yaml.safe_load`` does; raises ``yaml.YAMLError`` the same way."""
    return yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader
