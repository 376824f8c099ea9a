"""One fact, one place: every reader uses the single definition (issue 11, part 5)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import medml_cli

PACKAGE = Path(medml_cli.__file__).parent


def _module_constants(name: str) -> dict[str, list[str]]:
    """Module-level names assigned ``name`` anywhere in medml_cli, by file."""
    found: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, ast.AnnAssign) and node.value else [])
            for target in targets:
                names = [t.id for t in ast.walk(target) if isinstance(t, ast.Name)]
                if name in names:
                    found.setdefault(name, []).append(str(path.relative_to(PACKAGE)))
    return found


@pytest.mark.parametrize("name", ["DEFAULT_HU_WINDOW", "AIR_HU", "IMAGE_SUFFIXES",
                                  "ARRAY_SUFFIXES", "DICOM_SUFFIX", "VOLUME_SUFFIXES",
                                  "TABLE_SUFFIXES", "PARQUET_SUFFIXES", "CLASSIFICATION_METRICS",
                                  "REGRESSION_METRICS", "LOWER_IS_BETTER", "MAX_ROTATE_DEGREES",
                                  "MAX_INTENSITY_JITTER"])
def test_each_fact_is_assigned_once(name):
    assert len(_module_constants(name).get(name, [])) == 1, _module_constants(name)


def test_hu_window_is_the_default_everywhere():
    from medml_cli.data.formats import hu
    from medml_cli.data.image_base import HU_WINDOW_FIELD
    from medml_cli.models.keras.input_pipeline import DEFAULT_INTENSITY
    from medml_cli.schemas import DEFAULT_HU_WINDOW

    assert DEFAULT_HU_WINDOW == (-1000.0, 400.0)
    assert (hu.DEFAULT_HU_MIN, hu.DEFAULT_HU_MAX) == DEFAULT_HU_WINDOW
    assert tuple(HU_WINDOW_FIELD.default_factory()) == DEFAULT_HU_WINDOW
    assert DEFAULT_INTENSITY == ("hu", *DEFAULT_HU_WINDOW)


def test_predict_reads_every_image_suffix_the_image_folder_reader_accepts():
    from medml_cli.data.formats import image_files
    from medml_cli.workflows import predict_image

    assert predict_image.IMAGE_SUFFIXES is image_files.IMAGE_SUFFIXES


def test_dicom_folders_skip_every_known_non_dicom_file():
    from medml_cli.data.formats.dicom import DICOM_SUFFIX, NON_DICOM_SUFFIXES
    from medml_cli.data.formats.image_files import IMAGE_SUFFIXES
    from medml_cli.data.formats.nifti import VOLUME_SUFFIXES
    from medml_cli.data.formats.npz import ARRAY_SUFFIXES
    from medml_cli.data.formats.table import TEXT_TABLE_SUFFIXES

    assert IMAGE_SUFFIXES | ARRAY_SUFFIXES | TEXT_TABLE_SUFFIXES <= NON_DICOM_SUFFIXES
    assert {Path(f"x{s}").suffix for s in VOLUME_SUFFIXES} <= NON_DICOM_SUFFIXES
    assert DICOM_SUFFIX not in NON_DICOM_SUFFIXES


def test_table_suffixes_and_format():
    from medml_cli.data.formats.table import TABLE_SUFFIXES, table_format

    assert TABLE_SUFFIXES == {".csv", ".tsv", ".txt", ".parquet", ".pq"}
    assert [table_format(Path(f"t{s}")) for s in (".csv", ".TSV", ".txt", ".PQ", ".parquet")] \
        == ["csv", "csv", "csv", "parquet", "parquet"]


def test_augmentation_bounds_match_the_config():
    from medml_cli.models.cnn import AugmentConfig
    from medml_cli.models.keras.input_pipeline import (
        MAX_INTENSITY_JITTER,
        MAX_ROTATE_DEGREES,
        check_augment,
    )

    def upper(field: str) -> float:
        return next(m.le for m in AugmentConfig.model_fields[field].metadata if hasattr(m, "le"))

    assert upper("rotate_degrees") == MAX_ROTATE_DEGREES
    assert upper("intensity_jitter") == MAX_INTENSITY_JITTER
    check_augment({"rotate_degrees": MAX_ROTATE_DEGREES, "intensity_jitter": MAX_INTENSITY_JITTER})
    for bad in ({"rotate_degrees": MAX_ROTATE_DEGREES + 1},
                {"intensity_jitter": MAX_INTENSITY_JITTER + 0.1}):
        with pytest.raises(ValueError):
            check_augment(bad)


def test_metric_names_and_directions_come_from_tasks():
    from medml_cli.cli.runs import LIST_METRICS
    from medml_cli.evaluation import bootstrap
    from medml_cli.tasks import base

    assert bootstrap.CLASSIFICATION_METRICS is base.CLASSIFICATION_METRICS
    assert bootstrap.REGRESSION_METRICS is base.REGRESSION_METRICS
    assert set(LIST_METRICS) <= {*base.CLASSIFICATION_METRICS, *base.REGRESSION_METRICS}
    # a per-horizon name takes its base metric's direction wherever runs are ranked
    assert not base.higher_is_better("brier@365") and base.higher_is_better("auroc")
