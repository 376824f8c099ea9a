"""Loads the plug-ins: the built-in packages whose modules register models, datasets, tasks
and networks, then the third-party ones installed through Python entry points.

:mod:`medml_cli.registry` holds the registries and imports nothing of medml but its errors;
this module fills them. A distribution adds to medml by declaring, in its pyproject.toml::

    [project.entry-points."medml.plugins"]
    mymodel = "my_package.medml_models"

where the value names a module whose import registers what it adds. A plug-in that fails
to import is reported with a warning naming its distribution and the error, and medml keeps
working without it.
"""

from __future__ import annotations

import importlib
import warnings
from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "medml.plugins"

_loaded: dict[str, str] = {}
_done = False


class PluginWarning(UserWarning):
    """An installed medml plug-in could not be loaded."""


def load_builtins() -> None:
    """Import the packages whose modules register models, datasets, tasks and networks.

    Cheap: none of them imports TensorFlow at module level.
    """
    import medml_cli.data.sources  # noqa: F401
    import medml_cli.models  # noqa: F401
    import medml_cli.problems  # noqa: F401
    import medml_cli.tasks  # noqa: F401


def load_plugins() -> dict[str, str]:
    """Load the built-ins, then every ``medml.plugins`` entry point (once per process).

    Returns ``{entry point name: distribution}`` of the plug-ins that loaded. Only the
    entry point's module is imported (``ep.value`` may not name an attribute), so loading
    stays as cheap as the plug-ins' own imports.
    """
    global _done
    load_builtins()
    if _done:
        return dict(_loaded)
    _done = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep.dist, "name", None) or "an unknown distribution"
        try:
            importlib.import_module(ep.module)
        except Exception as exc:  # noqa: BLE001 - a broken plug-in must not break medml
            warnings.warn(
                f"medml plug-in '{ep.name}' ({ep.value}) of distribution '{dist}' could not "
                f"be loaded and is ignored: {type(exc).__name__}: {exc}. Fix or uninstall "
                f"it (pip uninstall {dist}).",
                PluginWarning, stacklevel=2,
            )
            continue
        _loaded[ep.name] = dist
    return dict(_loaded)
