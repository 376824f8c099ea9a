"""Loads the built-in plug-ins: the packages whose modules register models, datasets and tasks.

:mod:`medml_cli.registry` holds the registries and imports nothing of medml but its errors;
this module fills them. Third-party plug-ins (Python entry points, group ``medml.plugins``)
will be loaded here too.
"""

from __future__ import annotations


def load_builtins() -> None:
    """Import the packages whose modules register models, datasets and tasks.

    Cheap: none of them imports TensorFlow at module level.
    """
    import medml_cli.data.sources  # noqa: F401
    import medml_cli.models  # noqa: F401
    import medml_cli.tasks  # noqa: F401
