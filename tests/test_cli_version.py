"""`medml --version` answers on its own, like every tool's."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

from tests.conftest import run_cli


def test_version_flag_without_a_command():
    import medml_cli

    result = run_cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"medml {medml_cli.__version__}"
    assert metadata.version("medml") == medml_cli.__version__  # the packaging agrees


def test_version_through_the_installed_entry_point():
    proc = subprocess.run([sys.executable, "-m", "medml_cli", "--version"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("medml ")
    assert "Missing command" not in proc.stderr
