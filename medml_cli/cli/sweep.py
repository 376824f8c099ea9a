"""``medml sweep``, registered in :mod:`medml_cli.cli.commands` as the `sweep` command.

Results (the sweep folder, the trial table) go to stdout; progress, the leaderboard and messages
to stderr, as for every medml command.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from medml_cli.cli.common import _ci, _fmt, _param, _results_console, _state, error_boundary, stderr


class Executor(str, Enum):
    """Where sweep trials run: local processes or a Dask cluster."""

    local = "local"
    dask = "dask"


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "(base config)"


def sweep_command(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Argument(
        help="Sweep YAML: an experiment config plus a `sweep:` block.")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override: a.b=value (YAML), also sweep.* keys.")] = None,
    executor: Annotated[Executor, typer.Option(
        "--executor", help="local: a process per trial from a thread pool; dask: a Dask "
                           "cluster.")] = Executor.local,
    workers: Annotated[int, typer.Option(
        "--workers", min=1, help="Trials at once (local) or LocalCluster workers (dask).")] = 1,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", help="Dask scheduler address (tcp://host:8786) or scheduler file; "
                            "default: start a LocalCluster.")] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where the sweep folder goes.")]
    = Path("runs"),
    resume: Annotated[Path | None, typer.Option(
        "--resume", help="Continue a sweep folder: re-run its unfinished trials.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="List the trials; run nothing, create nothing.")] = False,
    fail_fast: Annotated[bool, typer.Option(
        "--fail-fast", help="Start no more trials after the first failure.")] = False,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", min=0.001, help="Seconds per trial before it is killed (failed).")] = None,
    fresh: Annotated[bool, typer.Option(
        "--fresh-processes", help="Start every trial in a fresh interpreter instead of "
                                  "forking it from a warm one (also: MEDML_SWEEP_FRESH=1)."
    )] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run a sweep of trials (grid / random search x seeds); prints the sweep folder last."""
    state = _state(ctx)
    with error_boundary(state):
        from medml_cli.errors import ConfigError
        from medml_cli.sweep.expand import describe_trials, expand_sweep
        from medml_cli.sweep.runner import run_sweep

        if resume is not None and (config is not None or set_):
            raise ConfigError("--resume", ["give either a sweep FILE or --resume SWEEP_DIR; a "
                                           "resumed sweep keeps its own trials"])
        if resume is None and config is None:
            raise ConfigError("sweep", ["give a sweep file: medml sweep SWEEP.yaml"])
        if scheduler is not None and executor is not Executor.dask:
            raise ConfigError("--scheduler", ["only applies with --executor dask"])
        sweep = expand_sweep(config, set_ or []) if config is not None else None
        if dry_run:
            if sweep is None:
                raise ConfigError("--dry-run", ["needs a sweep FILE, not --resume"])
            trials = describe_trials(sweep)
            if as_json:
                print(json.dumps({"name": sweep.name, "metric": sweep.metric,
                                  "task": sweep.task, "duplicates_removed": sweep.duplicates,
                                  "trials": trials}, default=str))
            else:
                _print_trials(trials)
                if not state.quiet:
                    stderr.print(f"{len(trials)} trials ({sweep.duplicates} duplicates "
                                 f"removed); dry run: nothing was run or written.")
            return
        try:
            with _SweepProgress(state, stderr) as progress:
                result = run_sweep(sweep, runs_dir=runs_dir, executor=executor.value,
                                   workers=workers, scheduler=scheduler, resume=resume,
                                   fail_fast=fail_fast, timeout=timeout, progress=progress,
                                   warm=False if fresh else None)
        except KeyboardInterrupt as exc:
            # SIGTERM arrives as errors.Terminated (a KeyboardInterrupt with exit_code 143)
            code = getattr(exc, "exit_code", 130)
            where = getattr(exc, "sweep_path", None)
            stderr.print(("terminated (SIGTERM)" if code == 143 else "interrupted (Ctrl-C)") + (
                "; the running trials were stopped and finished ones are kept. Continue "
                f"with: medml sweep --resume {where}" if where else ""))
            raise typer.Exit(code) from None
    counts = result.counts
    total = len(result.manifest["trials"])
    if as_json:
        from medml_cli.jsonio import _clean

        print(json.dumps(_clean({
            "sweep_dir": str(result.path), "name": result.manifest["name"],
            "metric": result.manifest["metric"], "all_succeeded": result.all_succeeded,
            "counts": counts, "leaderboard": result.leaderboard,
            "trials": [{k: t.get(k) for k in ("id", "params", "seed", "status", "run_dir",
                                              "error", "worker", "metrics", "intervals")}
                       for t in result.manifest["trials"]]})))
    else:
        if not state.quiet:
            _print_leaderboard(result.manifest, result.leaderboard, stderr)
        print(result.path)
    if not result.all_succeeded:
        bad = [t for t in result.manifest["trials"] if t["status"] != "completed"]
        failed = [t for t in bad if t["status"] == "failed"]
        lines = "; ".join(f"{t['id']} ({_params_text(t['params'])}, seed {t['seed']}): "
                          f"{(t.get('error') or t['status']).rstrip('.')}" for t in failed[:3])
        more = f" (+{len(failed) - 3} more)" if len(failed) > 3 else ""
        stderr.print(f"[bold red]failed:[/] {total - counts['completed']} of {total} trials did "
                     f"not complete ({counts['failed']} failed, {counts['pending']} not run, "
                     f"{counts['interrupted']} interrupted)" + (f": {lines}{more}" if lines
                                                                else "")
                     + f". Re-run them with: medml sweep --resume {result.path}",
                     markup=True, highlight=False)
        raise typer.Exit(1)


class _SweepProgress:
    """A rich progress bar on stderr, only on a terminal and without --quiet."""

    def __init__(self, state: Any, console: Console) -> None:
        self.enabled = not state.quiet and console.is_terminal
        self.console = console
        self.bar: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("{task.description}"),
                            console=self.console, transient=True)
        self.bar.start()
        task_id = self.bar.add_task("", total=None)

        def update(done: int, total: int, label: str) -> None:
            self.bar.update(task_id, completed=done, total=total, description=label)

        return update

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()


def _print_trials(trials: list[dict[str, Any]]) -> None:
    keys: list[str] = []
    for trial in trials:
        keys += [k for k in trial["params"] if k not in keys]
    table = Table(title=f"{len(trials)} trials", title_justify="left")
    table.add_column("id", no_wrap=True)
    for key in keys:
        table.add_column(key)
    table.add_column("seed", justify="right")
    table.add_column("dropped")
    for trial in trials:
        table.add_row(trial["id"], *(_param(trial["params"].get(k)) if k in trial["params"]
                                     else "" for k in keys),
                      str(trial["seed"]), ", ".join(trial["dropped"]))
    _results_console().print(table)


def _print_leaderboard(manifest: dict[str, Any], board: dict[str, Any],
                       console: Console) -> None:
    metric = board["metric"]
    direction = "higher" if board["higher_is_better"] else "lower"
    counts = manifest.get("counts") or {}
    if not board["top"]:
        console.print(f"no completed trial has {metric}; see the sweep's summary.csv and logs/")
        return
    keys: list[str] = []
    for row in board["top"]:
        keys += [k for k in row["params"] if k not in keys]
    table = Table(title=f"sweep {manifest['name']}: top trials by {metric} ({direction} is "
                        f"better)", title_justify="left")
    for column in ("#", "trial", *keys, "seed", metric):
        table.add_column(column, justify="right" if column in ("#", "seed", metric) else "left")
    with_ci = any(row["ci"] for row in board["top"])
    if with_ci:
        table.add_column("95% CI", justify="right")
    for rank, row in enumerate(board["top"], 1):
        cells = [str(rank), row["id"], *(_param(row["params"].get(k)) if k in row["params"]
                                         else "" for k in keys), str(row["seed"]),
                 _fmt(row["value"])]
        if with_ci:
            cells.append(_ci(row["ci"]))
        table.add_row(*cells)
    table.caption = ", ".join(f"{k}: {v}" for k, v in counts.items() if v)
    console.print(table)
    if board.get("note"):
        console.print(board["note"])
    groups = [g for g in board["per_params"] if g["n"] > 1]
    if groups:
        table = Table(title=f"{metric} across seeds (mean ± SD) per parameter set",
                      title_justify="left")
        for column in ("#", *keys, "seeds", "mean ± SD"):
            table.add_column(column, justify="left" if column in keys else "right")
        for rank, group in enumerate(groups[:10], 1):
            sd = f" ± {_fmt(group['sd'])}" if group["sd"] is not None else ""
            table.add_row(str(rank), *(_param(group["params"].get(k))
                                       if k in group["params"] else "" for k in keys),
                          str(group["n"]), f"{_fmt(group['mean'])}{sd}")
        console.print(table)
