"""What a run records about the machine and software, for reproducing it later."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "medml", "scikit-learn", "numpy", "pandas", "scipy", "skops", "pydantic", "pyyaml",
    "typer", "rich", "matplotlib", "tensorflow", "keras", "pydicom", "simpleitk", "dask",
)


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(folder: Path) -> dict[str, Any] | None:
    """Commit and dirty flag of the git checkout holding ``folder``, if any."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


def capture_environment(data_files: dict[str, str], config_path: Path | None) -> dict[str, Any]:
    import medml_cli

    package_dir = Path(medml_cli.__file__).resolve().parent
    medml_git = git_commit(package_dir)
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "packages": package_versions(),
        "git_commit": medml_git["commit"] if medml_git else None,
        "git_dirty": medml_git["dirty"] if medml_git else None,
        "config_git": git_commit(config_path.resolve().parent) if config_path else None,
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "data_sha256": data_files,
    }
