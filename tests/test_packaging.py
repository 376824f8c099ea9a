"""What a wheel ships: every folder of modules is a package (a folder without __init__.py
works in an editable checkout but is silently left out of `pip install .`)."""

from __future__ import annotations

from pathlib import Path

import setuptools

from tests.conftest import REPO


def test_every_module_folder_is_a_package():
    packages = set(setuptools.find_packages(str(REPO), include=["medml_cli*"]))
    folders = {".".join(p.relative_to(REPO).parts) for p in
               {m.parent for m in (REPO / "medml_cli").rglob("*.py")}}
    assert folders <= packages, sorted(folders - packages)


def test_bundled_data_is_declared_as_package_data():
    text = (REPO / "pyproject.toml").read_text()
    bundled = REPO / "medml_cli" / "data" / "bundled"
    assert any(bundled.rglob("*.data")) and '"data/bundled/**/*"' in text
    assert Path(bundled / "uci_heart_disease" / "PROVENANCE.md").is_file()
