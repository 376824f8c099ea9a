"""What every command module shares: the consoles, the per-invocation State, the error boundary
(medml's errors to exit codes and one clean message) and value formatting."""

from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import typer
from rich.console import Console

stderr = Console(stderr=True, highlight=False, soft_wrap=True)
stdout = Console(highlight=False, soft_wrap=True)


@dataclass
class State:
    """Global command-line flags (--debug, --quiet) shared by every command."""

    debug: bool = False
    quiet: bool = False


def _state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


@contextlib.contextmanager
def error_boundary(state: State) -> Iterator[None]:
    """Map medml's errors to exit codes and one clean message; tracebacks only with --debug."""
    from medml_cli.errors import MedmlError

    try:
        yield
    except typer.Exit:
        raise
    except MedmlError as exc:
        if state.debug:
            traceback.print_exc()
        label = "error" if exc.exit_code == 2 else "failed"
        stderr.print(f"[bold red]{label}:[/] {_escape(str(exc))}", markup=True, highlight=False)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt as exc:
        from medml_cli.errors import Terminated

        if isinstance(exc, Terminated):
            stderr.print("terminated (SIGTERM); nothing was completed.")
            raise typer.Exit(Terminated.exit_code) from None
        stderr.print("interrupted (Ctrl-C); nothing was completed.")
        raise typer.Exit(130) from None
    except Exception as exc:  # an internal error: still one paragraph, exit 1
        if state.debug:
            traceback.print_exc()
        stderr.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {_escape(str(exc))}\n"
            "This is a bug in medml or an unexpected input. Re-run with --debug for the "
            "traceback and report it.",
            markup=True,
        )
        raise typer.Exit(1) from None


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _param(value: Any) -> str:
    """A swept value as written: 0.1 not 0.100000."""
    return f"{value:g}" if isinstance(value, float) else _fmt(value)


def _ci(ci: Any) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return ""
    return f"{_fmt(ci[0])}–{_fmt(ci[1])}"


def _results_console() -> Console:
    """stdout console; wide when piped so tables are not cut to 80 columns."""
    return Console(highlight=False, soft_wrap=False,
                   width=None if sys.stdout.isatty() else 240)
