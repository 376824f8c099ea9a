"""The ``medml`` Typer app: train, evaluate, predict, config and the listings; registers the
``sweep`` command (:mod:`medml_cli.cli.sweep`) and the ``runs`` group (:mod:`medml_cli.cli.runs`).

Heavy libraries (pandas, scikit-learn, TensorFlow) are imported inside the commands, so
``medml --help`` stays fast. Results go to stdout; messages, tables and progress to stderr.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from medml_cli.cli.common import State, _escape, _state, error_boundary, stderr, stdout

app = typer.Typer(
    name="medml",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    help="Reproducible medical machine-learning experiments from one YAML file.",
)
config_app = typer.Typer(no_args_is_help=True, help="Validate, show and describe configs.")
models_app = typer.Typer(no_args_is_help=True, help="The registered models.")
tasks_app = typer.Typer(no_args_is_help=True, help="The registered tasks.")
data_app = typer.Typer(no_args_is_help=True, help="The registered data sources.")
app.add_typer(config_app, name="config")
app.add_typer(models_app, name="models")
app.add_typer(tasks_app, name="tasks")
app.add_typer(data_app, name="data")


def _register_sweeps() -> None:
    from medml_cli.cli.runs import runs_app
    from medml_cli.cli.sweep import sweep_command

    app.command("sweep")(sweep_command)
    app.add_typer(runs_app, name="runs")


_register_sweeps()


def _print_version(value: bool) -> None:
    # eager: runs while the options are parsed, before click asks for a command
    if value:
        from medml_cli import __version__

        print(f"medml {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_callback(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print results.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.",
                                          callback=_print_version, is_eager=True)] = False,
) -> None:
    """Reproducible medical machine-learning experiments from one YAML file."""
    ctx.obj = State(debug=debug, quiet=quiet)


# --------------------------------------------------------------------------- train
@app.command()
def train(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Argument(help="Experiment YAML file.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override: a.b=value (YAML).")]
    = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run folders go.")]
    = Path("runs"),
    resume: Annotated[Path | None, typer.Option(
        "--resume", help="Continue an interrupted CNN run from its last checkpoint.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Run name (default: from config).")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print metrics as JSON.")] = False,
) -> None:
    """Train and evaluate one experiment; prints the run directory as the last line."""
    state = _state(ctx)
    with error_boundary(state):
        import re

        from medml_cli.config.loader import load_experiment_config
        from medml_cli.config.sections import NAME_PATTERN
        from medml_cli.errors import ConfigError
        from medml_cli.runs.directory import read_status
        from medml_cli.workflows.train import run_experiment

        # fullmatch: with re.match, '$' also matches before a final newline ('ab\n')
        if name is not None and not re.fullmatch(NAME_PATTERN, name):
            raise ConfigError("--name", [f"{name!r}: use letters, digits, '-', '_' or '.', "
                                         "starting with a letter or digit (at most 64 "
                                         "characters; no spaces or control characters)"])
        if resume is not None:
            from medml_cli.runs.directory import resumable_run

            if config is not None or set_:
                raise ConfigError("--resume", ["give either CONFIG or --resume RUN_DIR; a "
                                               "resumed run keeps its own config.yaml"])
            run_path = resumable_run(resume)
            cfg = load_experiment_config(run_path / "config.yaml")
            runs_dir = run_path.parent
            name = read_status(run_path).get("name") or cfg.run_name
        elif config is None:
            raise ConfigError("train", ["give a config file: medml train CONFIG.yaml"])
        else:
            cfg = load_experiment_config(config, set_ or [])
        with _progress(state) as progress:
            result = run_experiment(cfg, runs_dir=runs_dir, name=name, config_path=config,
                                    overrides=set_ or [], progress=progress, resume=resume)
    if as_json:
        print(json.dumps({"run_dir": str(result.path), **_jsonable(result.metrics)}))
        return
    if not state.quiet:
        _print_metrics(result.metrics, title=f"held-out metrics: {result.path.name}")
    print(result.path)


@contextlib.contextmanager
def _progress(state: State) -> Iterator[Any]:
    if state.quiet or not stderr.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=stderr, transient=True) as progress:
        task_id = progress.add_task("training", total=1)

        def update(done: int, total: int, label: str) -> None:
            progress.update(task_id, completed=done, total=total, description=label)

        yield update


def _jsonable(data: Any) -> Any:
    from medml_cli.jsonio import _clean

    return _clean(data)


def _print_metrics(metrics: dict[str, Any], title: str) -> None:
    from medml_cli.evaluation.report import _fmt

    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("model", justify="right")
    intervals = metrics.get("intervals") or {}
    if intervals:
        table.add_column("95% CI", justify="right")
    baseline = metrics.get("baseline") or {}
    if baseline:
        table.add_column("baseline", justify="right")
    references = metrics.get("reference") or {}
    for name in references:
        table.add_column(name, justify="right")
    for metric, value in metrics["metrics"].items():
        row = [metric, _fmt(value)]
        if intervals:
            ci = intervals.get(metric)
            row.append(f"{_fmt(ci[0])}–{_fmt(ci[1])}" if ci else "")
        if baseline:
            row.append(_fmt(baseline.get(metric)))
        row.extend(_fmt(reference.get(metric)) for reference in references.values())
        table.add_row(*row)
    n = metrics.get("n", {})
    caption = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in n.items())
    if metrics.get("synthetic"):
        caption += "  [bold yellow]SYNTHETIC DATA[/]"
    table.caption = caption
    stderr.print(table)


# --------------------------------------------------------------------------- evaluate
class UpdateMethod(str, Enum):
    """``evaluate --update``: the choices of ``medml_cli.workflows.update.UPDATE_METHODS``
    (spelled out here so that ``--help`` imports nothing heavy)."""

    intercept = "intercept"
    recalibrate = "recalibrate"
    refit = "refit"


@app.command()
def evaluate(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="A completed run directory.")],
    data: Annotated[Path | None, typer.Option("--data", help="Data config (.yaml) or table "
                                                            "(.csv/.parquet) to score.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override data.* or "
                                                                 "evaluation.* keys.")] = None,
    fail_under: Annotated[list[str] | None, typer.Option(
        "--fail-under", help="Gate: metric=value; exit 1 if the metric is worse than value "
        "(below it, or above it for lower-is-better metrics such as brier, rmse).")] = None,
    update: Annotated[UpdateMethod | None, typer.Option(
        "--update", help="With --data: update the model for the new site (intercept: "
        "recalibration-in-the-large; recalibrate: intercept and slope; refit: the run's "
        "model config on the site's data), cross-validated within the site, and save it "
        "as a new run beside this one.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print metrics as JSON.")] = False,
) -> None:
    """Score a run on its held-out data or on new data, into a new folder of the run."""
    state = _state(ctx)
    with error_boundary(state):
        from medml_cli.evaluation.gates import check_gates, parse_gates
        from medml_cli.plugins import load_plugins
        from medml_cli.workflows.evaluate import evaluate_run

        load_plugins()  # gates accept the metric names of every registered problem type
        gates = parse_gates(fail_under or [])
        result = evaluate_run(run_dir, data=data, overrides=set_ or [],
                              update=update.value if update is not None else None)
        outcomes = check_gates(result.metrics, gates)
    intervals = result.metrics.get("intervals") or {}
    if as_json:
        print(json.dumps({"evaluation_dir": str(result.path), **_jsonable(result.metrics),
                          "gates": _jsonable([o.as_json(intervals.get(o.gate.metric))
                                              for o in outcomes])}))
    for alert in result.alerts:  # data-quality warnings are shown even with --quiet
        stderr.print(f"[bold yellow]warning:[/] {_escape(alert)}")
    if (result.metrics.get("update") or {}).get("run_dir"):  # a result too, even with --quiet
        stderr.print(f"updated model saved as run: {_escape(result.metrics['update']['run_dir'])}")
    if not as_json:
        if not state.quiet:
            for note in result.warnings:
                stderr.print(f"note: {_escape(note)}")
            _print_metrics(result.metrics, title=f"evaluation: {result.path.name}")
            if result.metrics.get("update"):
                _print_update(result.metrics)
        print(result.path)
    failed = [o for o in outcomes if not o.passed]
    if failed:
        lines = "; ".join(o.gate.explain(o.value, intervals.get(o.gate.metric)) for o in failed)
        stderr.print(f"[bold red]failed:[/] {len(failed)} metric gate(s) not met: "
                     f"{_escape(lines)}")
        raise typer.Exit(1)


def _print_update(metrics: dict[str, Any]) -> None:
    """evaluate --update: the cross-validated updated metrics beside the original's."""
    update = metrics["update"]
    calibration = ("calibration_intercept", "calibration_slope")
    table = {
        "metrics": {**update["updated"]["metrics"],
                    **{k: update["updated"]["calibration"].get(k) for k in calibration}},
        "intervals": update["updated"]["intervals"],
        "reference": {"original": {**update["original"]["metrics"],
                                   **{k: update["original"]["calibration"].get(k)
                                      for k in calibration}}},
        "n": metrics.get("n", {}),
    }
    _print_metrics(table, title=f"updated by {update['method']} ({update['folds']}-fold "
                                "cross-validated within the site) vs original")


# --------------------------------------------------------------------------- predict
@app.command()
def predict(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="A completed run directory, or an ONNX "
                                                 "bundle exported from one.")],
    input_path: Annotated[Path, typer.Option("--input", "-i", help="Table (.csv/.parquet) to "
                                                                   "predict for.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write the "
                                                "CSV (default or '-': stdout). An existing "
                                                "file, the input or a path inside a run "
                                                "folder needs --overwrite.")]
    = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Allow --output to replace "
                                                                "an existing file.")] = False,
    allow_modality: Annotated[list[str] | None, typer.Option(
        "--allow-modality", help="Let a CT model score DICOM of this modality too (e.g. MR; "
                                 "repeatable); recorded as a warning.")] = None,
) -> None:
    """Predict with a run's model: id, probability and class (or the predicted value)."""
    state = _state(ctx)
    with error_boundary(state):
        from medml_cli.csvio import csv_text
        from medml_cli.runs.outputs import check_output
        from medml_cli.workflows.predict import predict_with_run

        # checked before any work, so a refused path costs nothing and loses nothing
        target = check_output(output, inputs=[input_path], overwrite=overwrite)
        result = predict_with_run(run_dir, input_path,
                                  allow_modalities=allow_modality or ())
        for warning in result.warnings:
            stderr.print(f"warning: {_escape(warning)}")
        text = csv_text(result.frame)
        target.write(text)
        if target.path is not None and not state.quiet:
            stderr.print(f"wrote {len(result.frame)} predictions to {target.display}")


# --------------------------------------------------------------------------- export
@app.command()
def export(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="A completed run directory.")],
    format_: Annotated[str, typer.Option("--format", "-f", help="Export format: onnx.")]
    = "onnx",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Folder for the "
                                                "bundle (default: RUN/exports/onnx).")]
    = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing bundle "
                                                                "in --output.")] = False,
) -> None:
    """Export a run's model (preprocessing included) as an ONNX bundle, after checking that
    ONNX Runtime reproduces medml's predictions; prints the bundle's path last."""
    state = _state(ctx)
    with error_boundary(state):
        from medml_cli.export.onnx import export_run

        result = export_run(run_dir, format_, output, overwrite=overwrite)
        for note in result.notes:
            stderr.print(f"warning: {_escape(note)}")
        parity = result.parity
        if not state.quiet:
            stderr.print(f"parity: max |ONNX Runtime - medml| = {parity['max_abs_diff']:.3g} "
                         f"on {parity['rows']} rows (tolerance {parity['tolerance']:g})")
        stdout.print(str(result.path), soft_wrap=True, highlight=False)


# --------------------------------------------------------------------------- config
@config_app.command("validate")
def config_validate(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="Experiment YAML file.")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override: a.b=value.")] = None,
) -> None:
    """Check a config; exit 0 if valid, 2 with the problems if not."""
    with error_boundary(_state(ctx)):
        from medml_cli.config.loader import load_experiment_config

        cfg = load_experiment_config(config, set_ or [])
    print(f"{config}: valid ({cfg.task}, model {cfg.model.type}, data {cfg.data.type})")


@config_app.command("show")
def config_show(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="Experiment YAML file.")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override: a.b=value.")] = None,
) -> None:
    """Print the fully resolved config (defaults and overrides applied) as YAML."""
    with error_boundary(_state(ctx)):
        from medml_cli.config.loader import config_to_yaml, load_experiment_config

        text = config_to_yaml(load_experiment_config(config, set_ or []))
    sys.stdout.write(text)


@config_app.command("schema")
def config_schema(ctx: typer.Context) -> None:
    """Print the JSON schema of experiment configs (for editors)."""
    with error_boundary(_state(ctx)):
        from medml_cli.config.loader import config_json_schema

        schema = config_json_schema()
    print(json.dumps(schema, indent=2))


# --------------------------------------------------------------------------- listings
def _registry_table(registry: Any, pattern: str, with_fields: bool) -> Table:
    table = Table(show_lines=False)
    table.add_column("name", style="bold")
    table.add_column("summary")
    table.add_column("tags")
    if with_fields:
        table.add_column("config fields")
    for entry in registry.entries(pattern):
        row = [entry.name, entry.summary, ", ".join(sorted(entry.tags))]
        if with_fields:
            fields = [f for f in getattr(entry.config, "model_fields", {}) if f != "type"]
            row.append(", ".join(fields))
        table.add_row(*row)
    return table


def _list(ctx: typer.Context, kind: str, pattern: str, as_json: bool) -> None:
    with error_boundary(_state(ctx)):
        from medml_cli import registry as reg
        from medml_cli.plugins import load_plugins

        load_plugins()
        registry = {"models": reg.MODELS, "tasks": reg.TASKS, "data": reg.DATASETS}[kind]
        entries = registry.entries(pattern)
        if as_json:
            print(json.dumps([{"name": e.name, "summary": e.summary, "tags": sorted(e.tags),
                               "fields": [f for f in getattr(e.config, "model_fields", {})
                                          if f != "type"]} for e in entries], indent=2))
            return
        if not entries:
            stderr.print(f"no {kind} match '{pattern}'")
            raise typer.Exit(1)
        stdout.print(_registry_table(registry, pattern, with_fields=kind != "tasks"))


@models_app.command("list")
def models_list(
    ctx: typer.Context,
    pattern: Annotated[str, typer.Argument(help="Wildcard, e.g. '*forest*'.")] = "*",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List models: name, summary, the problems they solve, their hyperparameters."""
    _list(ctx, "models", pattern, as_json)


@tasks_app.command("list")
def tasks_list(
    ctx: typer.Context,
    pattern: Annotated[str, typer.Argument(help="Wildcard.")] = "*",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List tasks (presets and generic tasks)."""
    _list(ctx, "tasks", pattern, as_json)


@data_app.command("list")
def data_list(
    ctx: typer.Context,
    pattern: Annotated[str, typer.Argument(help="Wildcard.")] = "*",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List data sources (built-in datasets and file formats)."""
    _list(ctx, "data", pattern, as_json)


def _on_sigterm(signum: int, frame: Any) -> None:
    from medml_cli.errors import Terminated

    # one exception per process: a second SIGTERM must not break the clean-up of the first
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


def main() -> None:
    """Console-script entry point."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    app()


if __name__ == "__main__":
    main()
