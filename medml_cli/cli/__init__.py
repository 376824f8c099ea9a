"""The ``medml`` command line: parse, call one library function, render.

One module per command group: ``commands`` (the Typer app; train, evaluate, predict, config and the
listings), ``sweep``, ``runs``, and ``common`` (consoles, State, the error boundary) which they
share. Heavy libraries are imported inside the commands, so ``medml --help`` stays fast.
"""

from medml_cli.cli.commands import app, main

__all__ = ["app", "main"]
