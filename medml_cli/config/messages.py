"""pydantic validation errors as medml's one-line-per-problem messages (field path, value given,
what was expected, did-you-mean, YAML line)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from medml_cli.registry import DATASETS, MODELS, did_you_mean


def _section_class(root: type, loc: tuple, data: dict) -> type | None:
    """The pydantic class that owns the field at ``loc`` (for did-you-mean on keys)."""
    cls: type | None = root
    value: Any = data
    for part in loc:
        if cls is None:
            return None
        if part in ("model", "data") and cls is root:
            registry = MODELS if part == "model" else DATASETS
            value = value.get(part) if isinstance(value, dict) else None
            type_name = value.get("type") if isinstance(value, dict) else None
            cls = registry.entry(type_name).config if type_name in registry else None
            continue
        field = getattr(cls, "model_fields", {}).get(part)
        if field is None:
            return None
        annotation = field.annotation
        cls = annotation if isinstance(annotation, type) and hasattr(annotation,
                                                                     "model_fields") else None
        value = value.get(part) if isinstance(value, dict) else None
    return cls


def _clean_loc(loc: tuple, data: dict) -> tuple:
    """Drop the discriminator tag pydantic inserts: ('model', 'svm', 'C') -> ('model', 'C')."""
    if len(loc) >= 2 and loc[0] in ("model", "data"):
        registry = MODELS if loc[0] == "model" else DATASETS
        if isinstance(loc[1], str) and loc[1] in registry:
            return (loc[0], *loc[2:])
    # function-after validators on the whole model put nothing in loc
    return tuple(p for p in loc if not (isinstance(p, str) and p.startswith("function-")))


def _fmt_value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def format_validation_error(
    exc: ValidationError,
    data: dict,
    lines: dict[tuple, int],
    overrides: dict[tuple, str],
    root: type,
) -> list[str]:
    """A pydantic ValidationError as plain messages naming the config line or --set override."""
    problems: list[str] = []
    errors = exc.errors(include_url=False)
    task_invalid = any(tuple(e["loc"]) == ("task",) for e in errors)
    for err in errors:
        loc = _clean_loc(tuple(err["loc"]), data)
        if task_invalid and err["type"] == "missing" and loc in (("data",), ("model",)):
            continue  # a preset would have filled these in; the task error says it all
        path = ".".join(str(p) for p in loc) or "(top level)"
        kind = err["type"]
        value = err.get("input")
        if kind == "extra_forbidden":
            owner = _section_class(root, loc[:-1], data)
            valid = list(getattr(owner, "model_fields", {})) if owner else []
            what = "unknown key"
            if loc and loc[0] in ("model", "data") and len(loc) == 2:
                type_name = (data.get(loc[0]) or {}).get("type")
                what = f"unknown key for {loc[0]} type '{type_name}'"
            text = f"{path}: {what} (given {_fmt_value(value)})"
            text += did_you_mean(str(loc[-1]), valid)
            if valid:
                text += f" (valid keys: {', '.join(valid)})"
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            registry = MODELS if loc and loc[0] == "model" else DATASETS
            tag = err.get("ctx", {}).get("tag")
            if kind == "union_tag_not_found":
                text = f"{path}.type: missing; set one of: {', '.join(registry.names())}"
            else:
                text = (f"{path}.type: '{tag}' is not a {registry.kind} "
                        f"type{did_you_mean(str(tag), registry.names())} "
                        f"(valid: {', '.join(registry.names())}; see `{registry.list_command}`)")
            loc = (*loc, "type")
        elif kind == "missing":
            owner = _section_class(root, loc[:-1], data)
            field = getattr(owner, "model_fields", {}).get(loc[-1]) if owner and loc else None
            desc = f" ({field.description})" if field is not None and field.description else ""
            text = f"{path}: required but missing{desc}"
        elif kind == "bool_for_number":
            loc = (*loc, err["ctx"]["field"])
            text = f"{'.'.join(map(str, loc))}: {err['msg'].split(': ', 1)[1]}"
        elif kind == "value_error" and not loc:
            # cross-field checks: each line already names its own field path
            message = str(err.get("ctx", {}).get("error", err["msg"]))
            for part in message.splitlines():
                field_path = tuple(part.split(":", 1)[0].split("."))
                line = lines.get(field_path)
                problems.append(part + (f" [line {line}]" if line else ""))
            continue
        elif kind == "value_error":
            message = str(err.get("ctx", {}).get("error", err["msg"]))
            text = f"{path}: {message} (got {_fmt_value(value)})"
        else:
            text = f"{path}: {err['msg'].rstrip('.')}; got {_fmt_value(value)}"
        line = lines.get(loc) or (lines.get(loc[:-1]) if loc else None)
        related = [v for k, v in overrides.items()
                   if loc[: len(k)] == k or (loc and k[: len(loc)] == loc)]
        if related:
            source = overrides.get(loc) or related[0]
            text += f" [from --set {source}]"
        elif line:
            text += f" [line {line}]"
        problems.append(text)
    return problems
