"""The shipped task presets, one file each; importing this package registers them all.

A new preset is one new file here that calls :func:`medml_cli.tasks.base.register_task`;
the file is named after the task (``heart_disease.py`` registers ``heart-disease``).
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
