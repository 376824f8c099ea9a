"""Model families; importing this package registers each of them in ``MODELS``."""

import importlib
import pkgutil

# One module per family: a new model is one new file in this folder. Keras models import
# TensorFlow inside their builders only, so this loop stays cheap.
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in {"base", "preprocessing", "imputation", "keras",
                            "survival_output"}:
        importlib.import_module(f"{__name__}.{_module.name}")
