"""Data sources; importing this package registers each of them in ``DATASETS``."""

import importlib
import pkgutil

from medml_cli.data.base import LoadedDataset

# One module per source: a new dataset is one new file in this folder.
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in {"base", "bundled"}:
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["LoadedDataset"]
