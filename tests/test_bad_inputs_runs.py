"""The bad-input catalogue, continued: broken run folders.

Each case damages one file of a copy of a completed run (or of a run made to look
interrupted, for ``--resume``) and checks that evaluate / predict / train --resume exit 2 with
one clean message naming the file and the fix, never a traceback; ``runs list`` lists the
other runs and marks the damaged one ``broken``; ``runs show`` on it exits 2 naming the file.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import test_bad_inputs as catalogue
from tests.conftest import run_cli
from tests.test_bad_inputs import Case, assert_clean_failure, assert_no_complete_run

# the catalogue's fixtures (a completed diabetes run, a good input table), found by name
tabular_run = catalogue.tabular_run
diabetes_input = catalogue.diabetes_input

NOWHERE = Path("/nonexistent")
FIX = "train again with the run's config.yaml"


@dataclass
class RunCase(Case):
    """A case on a run copy: ``files`` are written into it (relative paths), ``remove``
    deleted from it; ``RUN`` and ``INPUT`` in ``args`` stand for the copy and a good input."""

    remove: list[str] = field(default_factory=list)


def _status(**fields) -> str:
    return json.dumps(fields)


RUN_CASES = [
    RunCase("predictions.csv missing", ["evaluate", "RUN"],
            ["predictions.csv", "is missing", FIX], remove=["predictions.csv"]),
    RunCase("predictions.csv garbled", ["evaluate", "RUN"],
            ["predictions.csv", "cannot be parsed as CSV", FIX],
            files={"predictions.csv": b'id,truth\n"unterminated\x00\xff'}),
    RunCase("predictions.csv without scores", ["evaluate", "RUN"],
            ["predictions.csv", "lacks the column(s) prediction", FIX],
            files={"predictions.csv": "id,truth\n1,0.5\n"}),
    RunCase("predictions.csv with text scores", ["evaluate", "RUN"],
            ["predictions.csv", "column 'prediction'", "line 3"],
            files={"predictions.csv": "id,truth,prediction\n1,10,5\n2,20,abc\n"}),
    RunCase("schema.json garbled", ["predict", "RUN", "--input", "INPUT"],
            ["schema.json", "changed after training"],
            files={"model/schema.json": '{"columns": '}),
    RunCase("card.json not an object", ["evaluate", "RUN"],
            ["card.json", "changed after training"], files={"model/card.json": "[1, 2]"}),
    RunCase("config.yaml garbled", ["evaluate", "RUN"],
            ["config.yaml", "YAML syntax error", "restore the original file"],
            files={"config.yaml": "task: [diabetes\n"}),
    RunCase("config.yaml not a mapping", ["evaluate", "RUN"],
            ["config.yaml", "top level is a list", "restore the original file"],
            files={"config.yaml": "- diabetes\n"}),
    RunCase("status.json not an object (evaluate)", ["evaluate", "RUN"],
            ["status.json", "holds a JSON array", FIX], files={"status.json": "[1]"}),
    RunCase("status.json not an object (predict)", ["predict", "RUN", "--input", "INPUT"],
            ["status.json", "holds a JSON array", FIX], files={"status.json": "[1]"}),
    RunCase("status.json garbled", ["predict", "RUN", "--input", "INPUT"],
            ["status.json", "not valid JSON", FIX], files={"status.json": '{"state": '}),
    RunCase("status.json without a state", ["evaluate", "RUN"],
            ["status.json", "no `state` string", FIX],
            files={"status.json": _status(state=["completed"])}),
    RunCase("model/ missing", ["predict", "RUN", "--input", "INPUT"],
            ["incomplete", "missing model", "Train again"], remove=["model"]),
    RunCase("model file missing", ["predict", "RUN", "--input", "INPUT"],
            ["model.skops is missing", "Re-run `medml train`"], remove=["model/model.skops"]),
    RunCase("manifest.json missing", ["predict", "RUN", "--input", "INPUT"],
            ["manifest.json", "is missing", "medml train"], remove=["model/manifest.json"]),
    RunCase("environment.json garbled", ["evaluate", "RUN"],
            ["environment.json", "not valid JSON", FIX],
            files={"environment.json": "{"}),
]


def _damage(run: Path, case: RunCase) -> None:
    for name in case.remove:
        target = run / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    for name, content in case.files.items():
        path = run / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)


@pytest.mark.parametrize("case", RUN_CASES, ids=lambda c: c.name)
def test_broken_run_is_refused_cleanly(tabular_run, diabetes_input, tmp_path, case):
    run = tmp_path / "runs" / tabular_run.name
    shutil.copytree(tabular_run, run)
    _damage(run, case)
    args = [str(run) if a == "RUN" else str(diabetes_input) if a == "INPUT" else a
            for a in case.args]
    result = run_cli(*args)
    assert_clean_failure(result, case.code, case.expect, NOWHERE)
    assert not list((run / "evaluations").glob("[!.]*")) if (run / "evaluations").exists() \
        else True


# --------------------------------------------------------------------------- --resume
def _interrupted(tabular_run: Path, tmp_path: Path) -> Path:
    """A copy made to look like a killed CNN run: status interrupted and a checkpoint."""
    run = tmp_path / "runs" / (tabular_run.name + "-interrupted")
    shutil.copytree(tabular_run, run)
    (run / "metrics.json").unlink()
    (run / "status.json").write_text(_status(state="interrupted", name="x"))
    checkpoints = run / "checkpoints"
    checkpoints.mkdir()
    with zipfile.ZipFile(checkpoints / "last.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    (checkpoints / "train_state.json").write_text(json.dumps({"epoch": 1, "history": {}}))
    return run


RESUME_CASES = [
    RunCase("resume: status.json not an object", ["train", "--resume", "RUN"],
            ["status.json", "holds a JSON array"], files={"status.json": "[]"}),
    RunCase("resume: config.yaml garbled", ["train", "--resume", "RUN"],
            ["config.yaml", "YAML syntax error", "cannot be used"],
            files={"config.yaml": "task: [x\n"}),
    RunCase("resume: config.yaml missing", ["train", "--resume", "RUN"],
            ["config.yaml", "is missing"], remove=["config.yaml"]),
    RunCase("resume: train_state.json garbled", ["train", "--resume", "RUN"],
            ["train_state.json", "not valid JSON", "delete"],
            files={"checkpoints/train_state.json": '{"epoch": '}),
    RunCase("resume: train_state.json with a bad epoch", ["train", "--resume", "RUN"],
            ["train_state.json", "invalid epoch", "delete"],
            files={"checkpoints/train_state.json": '{"epoch": "three"}'}),
    RunCase("resume: last.keras truncated", ["train", "--resume", "RUN"],
            ["last.keras", "not a Keras archive"],
            files={"checkpoints/last.keras": b"PK\x03\x04trunc"}),
]


@pytest.mark.parametrize("case", RESUME_CASES, ids=lambda c: c.name)
def test_broken_run_cannot_be_resumed(tabular_run, tmp_path, case):
    run = _interrupted(tabular_run, tmp_path)
    _damage(run, case)
    result = run_cli(*[str(run) if a == "RUN" else a for a in case.args])
    assert_clean_failure(result, case.code, case.expect, NOWHERE)
    # left as it was, not renamed -failed: still there to be repaired and resumed
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [run.name]
    assert not (run / "metrics.json").exists()


# --------------------------------------------------------------------------- runs list/show
BROKEN_RECORDS = {
    "metrics garbled": {"metrics.json": '{"metrics": {"r2": 0.5'},
    "metrics not an object": {"metrics.json": "[0.5]"},
    "metrics values not a mapping": {"metrics.json": '{"metrics": [1, 2]}'},
    "status not an object": {"status.json": '"completed"'},
    "status state not a string": {"status.json": '{"state": 1}'},
    "config garbled": {"config.yaml": "seed: [1\n"},
}


def test_runs_list_marks_broken_runs_and_lists_the_rest(tabular_run, tmp_path):
    runs = tmp_path / "runs"
    good = runs / tabular_run.name
    shutil.copytree(tabular_run, good)
    for i, (label, files) in enumerate(BROKEN_RECORDS.items()):
        run = runs / f"{tabular_run.name}-b{i}"
        shutil.copytree(tabular_run, run)
        _damage(run, RunCase(label, [], [], files=files))
    result = run_cli("runs", "list", "--runs-dir", runs, "--json")
    assert result.exit_code == 0, result.stderr
    rows = {r["run"]: r for r in json.loads(result.stdout)}
    assert len(rows) == 1 + len(BROKEN_RECORDS)
    assert rows[good.name]["state"] == "completed" and rows[good.name]["reason"] is None
    for i, files in enumerate(BROKEN_RECORDS.values()):
        row = rows[f"{tabular_run.name}-b{i}"]
        assert row["state"] == "broken"
        assert next(iter(files)) in row["reason"]
    table = run_cli("runs", "list", "--runs-dir", runs)
    assert table.exit_code == 0 and "Traceback" not in table.stderr
    assert sum("│ broken " in line for line in table.stdout.splitlines()) == len(
        BROKEN_RECORDS)
    assert "broken:" in table.stderr and "metrics.json" in table.stderr
    only = run_cli("runs", "list", "--runs-dir", runs, "--filter", "state=broken", "--csv")
    assert only.exit_code == 0 and len(only.stdout.strip().splitlines()) == 1 + len(
        BROKEN_RECORDS)


@pytest.mark.parametrize("label", list(BROKEN_RECORDS))
def test_runs_show_on_a_broken_run_names_the_file(tabular_run, tmp_path, label):
    run = tmp_path / "runs" / tabular_run.name
    shutil.copytree(tabular_run, run)
    files = BROKEN_RECORDS[label]
    _damage(run, RunCase(label, [], [], files=files))
    result = run_cli("runs", "show", run)
    assert_clean_failure(result, 2, ["is broken", next(iter(files)), "Fix:"], NOWHERE)
    other = tmp_path / "runs" / "other"
    shutil.copytree(tabular_run, other)
    result = run_cli("runs", "compare", run, other)
    assert_clean_failure(result, 2, ["is broken", next(iter(files))], NOWHERE)


def test_runs_show_on_garbled_environment(tabular_run, tmp_path):
    run = tmp_path / tabular_run.name
    shutil.copytree(tabular_run, run)
    (run / "environment.json").write_text("[")
    result = run_cli("runs", "show", run)
    assert_clean_failure(result, 2, ["environment.json", "not valid JSON"], NOWHERE)
    assert_no_complete_run(NOWHERE)
