"""The base of every file-based data source's config: a path resolved against the config
file's folder."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationInfo, model_validator

from medml_cli.schemas import StrictModel


def resolve_config_path(value: str | Path, info: ValidationInfo) -> Path:
    """Relative paths in a config resolve against the config file's own folder."""
    path = Path(value).expanduser()
    base = (info.context or {}).get("base_dir") if info.context else None
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path.resolve() if path.is_absolute() or base is not None else path


class FileDataConfig(StrictModel):
    """Base of data sections that name files: every Path field (and Path | None) resolves
    against the config file's folder."""

    @model_validator(mode="before")
    @classmethod
    def _resolve_paths(cls, data: object, info: ValidationInfo) -> object:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name, field in cls.model_fields.items():
            value = data.get(name)
            if "Path" in str(field.annotation) and isinstance(value, (str, Path)) and str(value):
                data[name] = resolve_config_path(value, info)
        return data
