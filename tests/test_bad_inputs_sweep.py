"""Bad-input catalogue for sweep folders: a damaged ``sweep.json`` (or trial config) passed to
``medml sweep --resume`` exits 2 with one message naming the file, the field and the fix; no
traceback, nothing run, nothing that looks complete."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.test_bad_inputs import Case, assert_clean_failure

SWEEP = """\
task: diabetes
model: {type: ridge}
evaluation: {bootstrap: 0, plots: false}
sweep:
  name: catalogue
  seeds: [0, 1]
"""
RESUME = ["sweep", "--resume", "sweep"]
#: the end of every damaged-manifest message: what to do about it
FIX = ["restore it", "start the sweep again with `medml sweep"]


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real sweep folder whose two trials are still to run (each timed out at once)."""
    folder = tmp_path_factory.mktemp("catalogue")
    (folder / "s.yaml").write_text(SWEEP)
    result = run_cli("--quiet", "sweep", folder / "s.yaml", "--runs-dir", folder / "runs",
                     "--timeout", "0.001")
    assert result.exit_code == 1, result.stderr
    return Path(result.last_line)


# whole-file damage: the file as written
FILE_CASES = [
    Case("empty object", RESUME, ["sweep/sweep.json is not a valid sweep manifest",
                                  "format: Field required", "name: Field required", *FIX],
         files={"sweep/sweep.json": "{}"}),
    Case("garbled json", RESUME, ["sweep.json is not a valid sweep manifest",
                                  "cannot be read as JSON", *FIX],
         files={"sweep/sweep.json": '{"format": 1, "trials": [{"id": '}),
    Case("empty file", RESUME, ["cannot be read as JSON", *FIX],
         files={"sweep/sweep.json": ""}),
    Case("binary bytes", RESUME, ["cannot be read as JSON", *FIX],
         files={"sweep/sweep.json": b"\x89PNG\r\n\x1a\n\xff\xfe\x00"}),
    Case("top level is a list", RESUME, ["the top level is a list, not an object", *FIX],
         files={"sweep/sweep.json": "[]"}),
    Case("top level is a number", RESUME, ["the top level is a number, not an object"],
         files={"sweep/sweep.json": "3"}),
]

Mutation = Callable[[dict], None]


def _trial(**fields) -> Mutation:
    def mutate(data: dict) -> None:
        for key, value in fields.items():
            if value is ...:
                del data["trials"][0][key]
            else:
                data["trials"][0][key] = value
    return mutate


def _top(**fields) -> Mutation:
    def mutate(data: dict) -> None:
        for key, value in fields.items():
            if value is ...:
                del data[key]
            else:
                data[key] = value
    return mutate


def _duplicate(data: dict) -> None:
    data["trials"][1]["id"] = data["trials"][0]["id"]


# field-level damage: (case, how to change the real manifest)
FIELD_CASES: list[tuple[Case, Mutation]] = [
    (Case("no trials key", RESUME, ["trials: Field required", *FIX]), _top(trials=...)),
    (Case("trials not a list", RESUME, ["trials: Input should be a valid list"]),
     _top(trials={"a": 1})),
    (Case("no trials", RESUME, ["trials: List should have at least 1 item"]), _top(trials=[])),
    (Case("trial not an object", RESUME, ["trials[0]: Input should be a valid dictionary"]),
     lambda d: d["trials"].__setitem__(0, "abc")),
    (Case("unknown format", RESUME, ["format: Input should be 1", "got 2"]), _top(format=2)),
    (Case("name with a slash", RESUME, ["name: String should match pattern"]),
     _top(name="../x")),
    (Case("metric not a string", RESUME, ["metric: Input should be a valid string"]),
     _top(metric=3)),
    (Case("sessions missing", RESUME, ["sessions: Field required"]), _top(sessions=...)),
    (Case("trial id missing", RESUME, ["trials[0].id: Field required"]), _trial(id=...)),
    (Case("trial id a path", RESUME, ["trials[0].id: String should match pattern",
                                      "'../../etc'"]), _trial(id="../../etc")),
    (Case("duplicate trial ids", RESUME, ["trials[1].id", "appears twice"]), _duplicate),
    (Case("unknown status", RESUME, ["trials[0].status: Input should be 'pending'",
                                     "got 'done'"]), _trial(status="done")),
    (Case("seed not a number", RESUME, ["trials[0].seed: Input should be a valid integer"]),
     _trial(seed="zero")),
    (Case("seed a boolean", RESUME, ["trials[0].seed: Input should be a valid integer"]),
     _trial(seed=True)),
    (Case("params not an object", RESUME, ["trials[0].params"]), _trial(params=[1, 2])),
    (Case("config outside the folder", RESUME, ["trials[0].config", "not a file under "
                                                "configs/"]),
     _trial(config="../../../etc/passwd")),
    (Case("config an absolute path", RESUME, ["trials[0].config", "'/etc/passwd'"]),
     _trial(config="/etc/passwd")),
    (Case("config not a string", RESUME, ["trials[0].config: Input should be a valid "
                                          "string"]), _trial(config=None)),
    (Case("run_dir outside the folder", RESUME, ["trials[0].run_dir", "not a folder under "
                                                 "trials/"]), _trial(run_dir="../..")),
    (Case("attempts not a list", RESUME, ["trials[0].attempts: Input should be a valid list"]),
     _trial(attempts={})),
    (Case("attempt run_dir outside", RESUME, ["trials[0].attempts.run_dir", "'/tmp'"]),
     _trial(attempts=[{"status": "failed", "run_dir": "/tmp"}])),
    (Case("metrics not an object", RESUME, ["trials[0].metrics"]), _trial(metrics="good")),
    (Case("interval of one number", RESUME, ["trials[0].intervals.r2",
                                             "List should have at least 2 items"]),
     _trial(intervals={"r2": [0.4]})),
    (Case("pid a string", RESUME, ["trials[0].pid: Input should be a valid integer"]),
     _trial(pid="1234")),
]


def _copy(sweep_folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "sweep"
    shutil.copytree(sweep_folder, target)
    return target


def _check(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, content in case.files.items():
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    monkeypatch.chdir(tmp_path)
    before = {p.name for p in (tmp_path / "sweep" / "trials").iterdir()}
    result = run_cli(*case.args)
    assert_clean_failure(result, case.code, case.expect, tmp_path / "sweep" / "trials")
    assert {p.name for p in (tmp_path / "sweep" / "trials").iterdir()} == before  # none ran
    assert not (tmp_path / "sweep" / "sweep.lock").read_text()  # and the lock was let go


@pytest.mark.parametrize("case", FILE_CASES, ids=lambda c: c.name)
def test_damaged_manifest_file(sweep_folder, tmp_path, monkeypatch, case: Case) -> None:
    _copy(sweep_folder, tmp_path)
    _check(case, tmp_path, monkeypatch)


@pytest.mark.parametrize("case, mutate", FIELD_CASES, ids=[c.name for c, _ in FIELD_CASES])
def test_damaged_manifest_field(sweep_folder, tmp_path, monkeypatch, case: Case,
                                mutate: Mutation) -> None:
    folder = _copy(sweep_folder, tmp_path)
    data = json.loads((folder / "sweep.json").read_text())
    mutate(data)
    case.files = {"sweep/sweep.json": json.dumps(data)}
    _check(case, tmp_path, monkeypatch)


def _config_of(folder: Path) -> Path:
    return folder / json.loads((folder / "sweep.json").read_text())["trials"][0]["config"]


@pytest.mark.parametrize("damage, expect", [
    ("missing", ["is missing, so trial", "cannot be re-run", *FIX]),
    ("edited", ["was changed after the sweep was made", "sha256", "Restore the file"]),
    ("binary", ["cannot be read", *FIX]),
    ("folder", ["cannot be read", "Is a directory"]),
])
def test_damaged_trial_config(sweep_folder, tmp_path, monkeypatch, damage: str,
                              expect: list[str]) -> None:
    config = _config_of(_copy(sweep_folder, tmp_path))
    name = config.relative_to(tmp_path)
    if damage == "missing":
        config.unlink()
    elif damage == "edited":
        config.write_text(config.read_text().replace("alpha: 1.0", "alpha: 2.0"))
        assert "alpha: 2.0" in config.read_text()
    elif damage == "binary":
        config.write_bytes(b"\xff\xfe\x00\x89")
    else:
        config.unlink()
        config.mkdir()
    _check(Case(f"trial config {damage}", RESUME, [str(name), *expect]), tmp_path, monkeypatch)


def test_sweep_json_is_a_folder(sweep_folder, tmp_path, monkeypatch) -> None:
    folder = _copy(sweep_folder, tmp_path)
    (folder / "sweep.json").unlink()
    (folder / "sweep.json").mkdir()
    monkeypatch.chdir(tmp_path)
    result = run_cli(*RESUME)
    assert_clean_failure(result, 2, ["sweep.json is not a valid sweep manifest",
                                     "it is a folder, not a file", *FIX], folder / "trials")
