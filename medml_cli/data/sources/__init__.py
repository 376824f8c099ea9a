"""Data sources; importing this package registers each of them in ``DATASETS``."""

import importlib
import pkgutil

# One module per source: a new dataset is one new file in this folder.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
