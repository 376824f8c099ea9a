"""What a run records about the machine and software, for reproducing it later."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from medml_cli.runs.records import EnvironmentRecord

_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")

PACKAGES = (
    "medml", "scikit-learn", "numpy", "pandas", "scipy", "skops", "pydantic", "pyyaml",
    "typer", "rich", "matplotlib", "tensorflow", "keras", "pydicom", "simpleitk", "dask",
)


def package_version(name: str) -> str | None:
    """``importlib.metadata.version(name)`` without parsing the whole metadata file.

    ``version()`` hands METADATA to the e-mail parser, long description included (tens of
    milliseconds for the 16 packages); the version is a header, and headers end at the first
    blank line. Same distribution lookup, same value.
    """
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    lines = text.replace("\r\n", "\n").split("\n")
    for i, line in enumerate(lines):
        if not line:
            break
        key, sep, value = line.partition(":")
        if sep and key.lower() == "version":
            folded = i + 1 < len(lines) and lines[i + 1][:1] in (" ", "\t")
            if not folded and "\r" not in value:
                return value.lstrip(" \t")  # as the e-mail parser gives it
            break
    return dist.version  # an unusual file: let importlib parse it


#: The module each recorded distribution installs, where the names differ.
_MODULES = {"medml": "medml_cli", "scikit-learn": "sklearn", "pyyaml": "yaml",
            "simpleitk": "SimpleITK"}
#: Versions of distributions whose module this process had already imported when asked.
_LOADED_VERSIONS: dict[str, str | None] = {}


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed versions of ``names`` (default: the packages a run depends on; None when
    absent).

    A package this process has imported is looked up once: the code that runs is the code
    that was imported, whatever is installed since, so its version cannot change (and the
    lookups are a few milliseconds of every run). Packages not imported yet are looked up
    each time.
    """
    versions = {}
    for name in names:
        if name in _LOADED_VERSIONS:
            versions[name] = _LOADED_VERSIONS[name]
            continue
        versions[name] = package_version(name)
        if _MODULES.get(name, name) in sys.modules:
            _LOADED_VERSIONS[name] = versions[name]
    return versions


def _find_git_dir(folder: Path) -> tuple[Path, Path] | None:
    """(work tree, git dir) of the checkout holding ``folder``, found without running git."""
    for top in (folder, *folder.parents):
        dot_git = top / ".git"
        if dot_git.is_dir():
            return top, dot_git
        if dot_git.is_file():  # a worktree or submodule: "gitdir: <path>"
            try:
                text = dot_git.read_text(errors="replace").strip()
            except OSError:
                return None
            if not text.startswith("gitdir:"):
                return None
            git_dir = Path(text[len("gitdir:"):].strip())
            git_dir = git_dir if git_dir.is_absolute() else (top / git_dir)
            return (top, git_dir.resolve()) if git_dir.is_dir() else None
    return None


def _read_ref(git_dir: Path, common_dir: Path, ref: str) -> str | None:
    for base in (git_dir, common_dir):
        loose = base / ref
        if loose.is_file():
            value = loose.read_text(errors="replace").strip()
            return value if _SHA.fullmatch(value) else None
    packed = common_dir / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(errors="replace").splitlines():
            sha, _, name = line.partition(" ")
            if name.strip() == ref and _SHA.fullmatch(sha):
                return sha
    return None


def _head_commit(git_dir: Path, common_dir: Path) -> str | None:
    """The commit HEAD points at, read from the files (symbolic ref, loose or packed ref)."""
    try:
        head = (git_dir / "HEAD").read_text(errors="replace").strip()
        for _ in range(5):  # a symbolic ref may point at another symbolic ref
            if _SHA.fullmatch(head):
                return head
            if not head.startswith("ref:"):
                return None
            ref = head[len("ref:"):].strip()
            value = _read_ref(git_dir, common_dir, ref)
            if value is None:
                return None
            head = value
    except OSError:
        return None
    return None


def _neutral_git_dir(git_dir: Path, common_dir: Path, scratch: Path) -> Path:
    """A stand-in git dir with the repository's objects, refs and a copy of its index but
    none of its configuration, so no command it names (fsmonitor, filters, hooks) can run."""
    import shutil

    neutral = scratch / "git"
    neutral.mkdir()
    for name in ("objects", "refs", "packed-refs"):
        if (common_dir / name).exists():
            (neutral / name).symlink_to(common_dir / name)
    shutil.copyfile(git_dir / "HEAD", neutral / "HEAD")
    for index in git_dir.glob("*index*"):  # index and split-index parts (sharedindex.*)
        if index.is_file():
            shutil.copyfile(index, neutral / index.name)
    lines = ["[core]", "\trepositoryformatversion = 0", "\tfsmonitor = false",
             "\thooksPath = /dev/null"]
    object_format = _config_value(common_dir / "config", "extensions", "objectformat")
    if object_format in {"sha1", "sha256"}:  # the only setting needed to read the objects
        lines = ["[core]", "\trepositoryformatversion = 1", *lines[2:],
                 "[extensions]", f"\tobjectformat = {object_format}"]
    (neutral / "config").write_text("\n".join(lines) + "\n")
    return neutral


def _config_value(path: Path, section: str, key: str) -> str | None:
    """One plain ``key = value`` of a git config file, parsed as text (never run by git)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            current = line.strip("[]").strip().lower()
        elif current == section and "=" in line:
            name, _, value = line.partition("=")
            if name.strip().lower() == key:
                return value.strip().lower()
    return None


class _GitState:
    """The commit of a checkout, and ``git status`` running on it in the background (it takes
    a few milliseconds of a process that needs no Python: a run reads its data meanwhile)."""

    def __init__(self, commit: str, process: subprocess.Popen | None, scratch: Any,
                 deadline: float) -> None:
        self.commit, self._process, self._scratch = commit, process, scratch
        self._deadline = deadline

    def result(self) -> dict[str, Any]:
        """``{"commit", "dirty"}``; dirty is None when git could not tell (no git, a
        timeout, an error)."""
        dirty: bool | None = None
        if self._process is not None:
            try:
                out, _ = self._process.communicate(
                    timeout=max(0.0, self._deadline - time.monotonic()))
                if self._process.returncode == 0:
                    dirty = bool(out.strip())
            except (OSError, subprocess.SubprocessError):
                dirty = None  # commit still known; cleanliness could not be checked
        self.close()
        return {"commit": self.commit, "dirty": dirty}

    def close(self) -> None:
        """Stop git if it still runs and remove the stand-in git dir."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None


def _start_git(folder: Path) -> _GitState | None:
    """Read the commit of the checkout holding ``folder`` and start ``git status`` on it;
    None outside a git checkout. See :func:`git_commit` for why git runs this way."""
    import tempfile

    found = _find_git_dir(Path(folder).resolve())
    if found is None:
        return None
    work_tree, git_dir = found
    common_dir = git_dir
    if (git_dir / "commondir").is_file():  # linked worktrees share objects and refs
        try:
            relative = (git_dir / "commondir").read_text(errors="replace").strip()
        except OSError:
            return None
        common_dir = (git_dir / relative).resolve()
    commit = _head_commit(git_dir, common_dir)
    if commit is None:
        return None
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_OPTIONAL_LOCKS="0",
               GIT_TERMINAL_PROMPT="0", GIT_ATTR_NOSYSTEM="1")
    deadline = time.monotonic() + 5.0
    scratch = tempfile.TemporaryDirectory(prefix="medml-git-")
    try:
        neutral = _neutral_git_dir(git_dir, common_dir, Path(scratch.name))
        process = subprocess.Popen(
            ["git", f"--git-dir={neutral}", f"--work-tree={work_tree}",
             "-c", "core.fsmonitor=false", "-c", f"core.hooksPath={os.devnull}",
             "status", "--porcelain", "--untracked-files=no", "--ignore-submodules"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
            cwd=scratch.name, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        scratch.cleanup()
        return _GitState(commit, None, None, deadline)
    return _GitState(commit, process, scratch, deadline)


def git_commit(folder: Path) -> dict[str, Any] | None:
    """Commit and dirty flag of the git checkout holding ``folder``, if any.

    The folder may come from someone else's archive, and a repository's own config can name
    commands that git runs (core.fsmonitor, clean/smudge filters, hooks...). So the commit is
    read from the files, and ``git status`` runs against a stand-in git dir that has the
    repository's objects and index but no configuration of its own, with the user's global
    and system configs switched off too.
    """
    state = _start_git(folder)
    return state.result() if state is not None else None


class EnvironmentCapture:
    """The environment record of a run, started early: made before a run loads its data,
    its git checks run meanwhile; :meth:`record` waits for them. Use it as a context manager
    (or call :meth:`close`), so a run that fails before recording leaves no git behind."""

    def __init__(self, config_path: Path | None) -> None:
        import medml_cli

        self._medml = _start_git(Path(medml_cli.__file__).resolve().parent)
        self._config = _start_git(config_path.resolve().parent) if config_path else None

    def record(self, data_files: dict[str, str]) -> EnvironmentRecord:
        """Python, platform, packages, git state and data files (written with
        :func:`medml_cli.runs.records.write_environment`)."""
        medml_git = self._medml.result() if self._medml else None
        return EnvironmentRecord(
            python=sys.version.split()[0],
            implementation=platform.python_implementation(),
            platform=platform.platform(),
            machine=platform.machine(),
            cpu_count=os.cpu_count(),
            packages=package_versions(),
            git_commit=medml_git["commit"] if medml_git else None,
            git_dirty=medml_git["dirty"] if medml_git else None,
            config_git=self._config.result() if self._config else None,
            command=[Path(sys.argv[0]).name, *sys.argv[1:]],
            data_sha256=dict(data_files),
        )

    def close(self) -> None:
        """Stop whatever git check still runs."""
        for state in (self._medml, self._config):
            if state is not None:
                state.close()

    def __enter__(self) -> EnvironmentCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def capture_environment(data_files: dict[str, str],
                        config_path: Path | None) -> EnvironmentRecord:
    """The environment record of a run: Python, platform, packages, git state and data files
    (written with :func:`medml_cli.runs.records.write_environment`)."""
    with EnvironmentCapture(config_path) as capture:
        return capture.record(data_files)
