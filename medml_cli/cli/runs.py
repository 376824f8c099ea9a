"""``medml runs list|show|compare``: the run index as tables (stdout) or JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from medml_cli.cli.common import _ci, _fmt, _param, _results_console, _state, error_boundary, stderr

runs_app = typer.Typer(no_args_is_help=True,
                       help="Find, inspect and compare runs (including sweep trials).")

#: Metrics the table shows besides each listed run's primary metric (the full set is in
#: --json / --csv): names of every problem type, so mixed listings line up.
LIST_METRICS = ("auroc", "auprc", "accuracy", "brier", "r2", "rmse", "mae")


def table_metrics(frame: Any, sort: str | None = None) -> list[str]:
    """The metric columns of the ``runs list`` table: the primary metric of every listed run
    (auroc, macro_auroc, r2, ... as its metrics.json names it), then LIST_METRICS, then the
    --sort column; only those some run has a value for."""
    primary = [m for m in dict.fromkeys(frame["primary_metric"].dropna()) if isinstance(m, str)] \
        if "primary_metric" in frame.columns else []
    metrics = [m for m in dict.fromkeys([*primary, *LIST_METRICS])
               if m in frame.columns and frame[m].notna().any()]
    sort_key = (sort or "").lstrip("+-")
    if sort_key and sort_key in frame.columns and sort_key not in metrics \
            and sort_key not in ("run", "state", "task", "model", "seed", "started"):
        metrics.append(sort_key)
    return metrics


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
    metrics = table_metrics(frame, sort)
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
    card: Annotated[bool, typer.Option(
        "--card", help="Print the run's model card (model/card.md; with --json, its data).")]
    = False,
) -> None:
    """Show one run: status, metrics with CIs, config and environment; or its model card."""
    with error_boundary(_state(ctx)):
        from medml_cli.runs.index import resolve_run, show_run

        path = resolve_run(run, runs_dir)
        info = show_run(path)  # a broken run is refused here, card or not
        if card:
            from medml_cli.runs.model_card import read_model_card

            text, report, rendered_now = read_model_card(path)
    if card:
        if rendered_now:
            stderr.print(f"{info['run']} was written before medml wrote model cards: this card "
                         "was rendered now from its records.", markup=False, highlight=False)
        if as_json:
            print(json.dumps({"run": info["run"], "rendered_now": rendered_now,
                              "card": report.model_dump(mode="json")}, indent=2))
        else:
            sys.stdout.write(text)
        return
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
        table.caption = ", ".join(f"{k}: {v}" for k, v in info["n"].items()
                                  if not isinstance(v, (dict, list)))
        out.print(table)
    if info.get("per_class"):
        from rich.markup import escape

        table = Table(title="per class (one vs rest)", title_justify="left")
        for column in ("class", "auroc", "sensitivity", "ppv", "n"):
            table.add_column(column, justify="left" if column == "class" else "right")
        for name, scores in info["per_class"].items():
            table.add_row(escape(str(name)), *(_fmt(scores.get(k))
                                               for k in ("auroc", "sensitivity", "ppv", "n")))
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


@runs_app.command("export")
def runs_export(
    ctx: typer.Context,
    runs: Annotated[list[str], typer.Argument(
        help="Completed runs (folders or names under --runs-dir) and sweep folders.")],
    mlflow: Annotated[bool, typer.Option(
        "--mlflow", help="Export to MLflow (the only target so far; required).")] = False,
    tracking_uri: Annotated[str | None, typer.Option(
        "--tracking-uri", help="MLflow tracking URI; default $MLFLOW_TRACKING_URI, else "
                               "sqlite:///mlflow.db in the current folder.")] = None,
    experiment: Annotated[str | None, typer.Option(
        "--experiment", help="MLflow experiment; default each run's task name.")] = None,
    with_predictions: Annotated[bool, typer.Option(
        "--with-predictions", help="Also upload predictions.csv (one row per patient; off "
                                   "by default).")] = False,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder of runs.")] = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON records.")] = False,
) -> None:
    """Export runs, and sweeps with their trials, to an experiment tracker (MLflow)."""
    with error_boundary(_state(ctx)):
        from medml_cli.errors import MedmlUsageError
        from medml_cli.export.mlflow import export_to_mlflow

        if not mlflow:
            raise MedmlUsageError("say where to export: --mlflow (the only target so far), "
                                  "e.g. medml runs export RUN --mlflow")
        results = export_to_mlflow(runs, runs_dir=runs_dir, uri=tracking_uri,
                                   experiment=experiment, with_predictions=with_predictions)
    if as_json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
        return
    out = _results_console()
    owner = ""  # the indent of the run an evaluation belongs to (a trial is under its sweep)
    for result in results:
        what = {"created": "exported as", "replaced": "exported (replacing an unfinished "
                "export) as", "skipped": "already exported as",
                "updated": "already exported, brought up to date, as"}[result.action]
        line = (f"{result.run} -> {what} MLflow run {result.mlflow_run_id} "
                f"(experiment {result.experiment})" + (f": {result.url}" if result.url else ""))
        if result.kind != "evaluation":
            owner = "  " if result.kind == "trial" else ""
        out.print((owner + "  " if result.kind == "evaluation" else owner) + line,
                  markup=False)
        for note in result.notes:
            out.print(f"    note: {note}", markup=False)
