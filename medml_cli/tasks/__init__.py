"""Task presets and generic tasks; importing this package registers them all (one file per
preset in :mod:`medml_cli.tasks.presets`)."""

from medml_cli.tasks import presets  # noqa: F401
from medml_cli.tasks.base import TaskSpec

__all__ = ["TaskSpec"]
