"""``medml sweep`` and ``medml runs list|show|compare``.

Registered in :mod:`medml_cli.cli` with::

    app.command("sweep")(sweep_command)
    app.add_typer(runs_app, name="runs")

Results (the sweep folder, run tables) go to stdout; progress, the leaderboard and messages
to stderr, as for every medml command.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table


class Executor(str, Enum):
    local = "local"
    dask = "dask"


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


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "(base config)"


# --------------------------------------------------------------------------- sweep
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
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run a sweep of trials (grid / random search x seeds); prints the sweep folder last."""
    from medml_cli.cli import _state, error_boundary, stderr

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
                                   fail_fast=fail_fast, timeout=timeout, progress=progress)
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


# --------------------------------------------------------------------------- runs
runs_app = typer.Typer(no_args_is_help=True,
                       help="Find, inspect and compare runs (including sweep trials).")

LIST_METRICS = ("auroc", "auprc", "accuracy", "brier", "r2", "rmse", "mae")


def _parse_filters(specs: list[str]) -> dict[str, str]:
    from medml_cli.errors import MedmlUsageError

    filters: dict[str, str] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or not key.strip():
            raise MedmlUsageError(f"--filter {spec}: expected KEY=VALUE, e.g. model=svm, "
                                  "state=failed or since=2026-11-01")
        filters[key.strip()] = value.strip()
    return filters


@runs_app.command("list")
def runs_list(
    ctx: typer.Context,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder of runs.")] = Path("runs"),
    filter_: Annotated[list[str] | None, typer.Option(
        "--filter", help="KEY=VALUE (wildcards allowed): task, model, data, state, name, "
                         "seed, sweep, since/until/date=YYYY-MM-DD.")] = None,
    sort: Annotated[str | None, typer.Option(
        "--sort", help="A metric (best first) or column; prefix - / + to force the order.")]
    = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Show the first N.")]
    = None,
    no_sweeps: Annotated[bool, typer.Option("--no-sweeps", help="Leave out sweep trials.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON records.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """List runs with their state, task, model, seed and metrics."""
    from rich.markup import escape

    from medml_cli.cli import _state, error_boundary, stderr

    with error_boundary(_state(ctx)):
        from medml_cli.errors import MedmlUsageError
        from medml_cli.runs.index import list_runs

        if as_json and as_csv:
            raise MedmlUsageError("give --json or --csv, not both")
        frame = list_runs(runs_dir, filters=_parse_filters(filter_ or []), sort=sort,
                          include_sweeps=not no_sweeps)
        if limit is not None:
            frame = frame.head(limit)
    if as_json:
        print(json.dumps(json.loads(frame.to_json(orient="records")), indent=2))
        return
    if as_csv:
        sys.stdout.write(frame.to_csv(index=False))
        return
    if frame.empty:
        stderr.print(f"no runs in {runs_dir}" + (" match the filters" if filter_ else ""))
        return
    metrics = [m for m in LIST_METRICS if m in frame.columns and frame[m].notna().any()]
    sort_key = (sort or "").lstrip("+-")
    if sort_key and sort_key in frame.columns and sort_key not in metrics \
            and sort_key not in ("run", "state", "task", "model", "seed", "started"):
        metrics.append(sort_key)
    table = Table(title=f"{len(frame)} run(s) in {runs_dir}", title_justify="left")
    for column in ("run", "state", "task", "model", "seed", "started", *metrics):
        table.add_column(column, no_wrap=column == "run",
                         justify="right" if column in metrics or column == "seed" else "left")
    colours = {"completed": "green", "failed": "red", "interrupted": "yellow",
               "running": "cyan", "broken": "magenta"}
    for row in frame.to_dict(orient="records"):
        state = row["state"]
        started = (row["started"] or "")[:19].replace("T", " ") if isinstance(
            row["started"], str) else ""
        # names come from files on disk: escaped, so a '[' in them is not read as markup
        table.add_row(escape(row["run"]), f"[{colours.get(state, 'white')}]{state}[/]",
                      escape(_fmt(row["task"])), escape(_fmt(row["model"])), _fmt(row["seed"]),
                      started, *(_fmt(row[m]) for m in metrics))
    _results_console().print(table)
    # why each broken run is broken: on stderr, so stdout stays the table
    for row in frame.to_dict(orient="records"):
        if row["state"] == "broken":
            stderr.print(f"broken: {row['run']}: {row['reason']}", markup=False,
                         highlight=False)


@runs_app.command("show")
def runs_show(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="Run folder, or its name (or a unique part, "
                                            "e.g. t-<trial id>) under --runs-dir.")],
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder of runs.")] = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show one run: status, metrics with CIs, config and environment."""
    from medml_cli.cli import _state, error_boundary

    with error_boundary(_state(ctx)):
        from medml_cli.runs.index import resolve_run, show_run

        info = show_run(resolve_run(run, runs_dir))
    if as_json:
        from medml_cli.jsonio import _clean

        print(json.dumps(_clean(info), indent=2, default=str))
        return
    _print_run(info)


def _print_run(info: dict[str, Any]) -> None:
    import yaml

    out = _results_console()
    status = info["status"]
    out.print(f"[bold]{info['run']}[/]  ({info['state']})")
    out.print(f"path: {info['path']}")
    if info.get("sweep"):
        out.print(f"sweep: {info['sweep']}")
    out.print(f"started: {status.get('started', '—')}   ended: {status.get('ended', '—')}")
    if status.get("error"):
        out.print(f"[red]error:[/] {status['error']}", markup=True)
    if info["metrics"]:
        table = Table(title="held-out metrics", title_justify="left")
        table.add_column("metric")
        table.add_column("value", justify="right")
        table.add_column("95% CI", justify="right")
        table.add_column("baseline", justify="right")
        for metric, value in info["metrics"].items():
            table.add_row(metric, _fmt(value), _ci(info["intervals"].get(metric)),
                          _fmt(info["baseline"].get(metric)))
        table.caption = ", ".join(f"{k}: {v}" for k, v in info["n"].items())
        out.print(table)
    env = info["environment"]
    table = Table(title="environment", title_justify="left", show_header=False)
    table.add_column("key")
    table.add_column("value")
    table.add_row("python", _fmt(env.get("python")))
    for name, version in env.get("packages", {}).items():
        table.add_row(name, version)
    commit = env.get("git_commit")
    table.add_row("git commit", f"{commit}{' (dirty)' if env.get('git_dirty') else ''}"
                  if commit else "—")
    for name, digest in env.get("data_sha256", {}).items():
        table.add_row(f"data {name}", f"sha256 {digest}")
    out.print(table)
    out.print("[bold]config[/] (resolved)")
    out.print(yaml.safe_dump(info["config"], sort_keys=False).rstrip(), markup=False)


@runs_app.command("compare")
def runs_compare(
    ctx: typer.Context,
    runs: Annotated[list[str], typer.Argument(help="Two or more runs (folders or names).")],
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder of runs.")] = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Compare runs: the config keys that differ, and every metric with its CI."""
    from medml_cli.cli import _state, error_boundary

    with error_boundary(_state(ctx)):
        from medml_cli.runs.index import compare_runs, metric_table_json, resolve_run

        paths = [resolve_run(r, runs_dir) for r in runs]
        config_diff, metric_table = compare_runs(paths)
    if as_json:
        from medml_cli.jsonio import _clean

        print(json.dumps(_clean({
            "runs": [str(p) for p in paths],
            "config_diff": {key: dict(row) for key, row in config_diff.iterrows()},
            "metrics": metric_table_json(metric_table)}), indent=2, default=str))
        return
    out = _results_console()
    labels = list(config_diff.columns)
    table = Table(title="config keys that differ", title_justify="left")
    table.add_column("key")
    for label in labels:
        table.add_column(label)
    for key, row in config_diff.iterrows():
        table.add_row(str(key), *(json.dumps(v) if isinstance(v, (list, dict)) else _param(v)
                                  for v in row))
    if config_diff.empty:
        table.caption = "the resolved configs are identical"
    out.print(table)
    table = Table(title="metrics (95% CI)", title_justify="left")
    table.add_column("metric")
    for label in labels:
        table.add_column(label, justify="right")
    for metric in metric_table.index:
        cells = []
        for label in labels:
            value = metric_table.loc[metric, (label, "value")]
            ci = [metric_table.loc[metric, (label, "ci_low")],
                  metric_table.loc[metric, (label, "ci_high")]]
            text = _ci(ci if ci[0] == ci[0] else None)
            cells.append(_fmt(value) + (f" ({text})" if text else ""))
        table.add_row(str(metric), *cells)
    out.print(table)
