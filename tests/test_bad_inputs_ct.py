"""Catalogue cases for CT inputs (see tests/test_bad_inputs.py for the shared checks):
malformed DICOM headers, non-CT objects, Enhanced CT mixed with slices, bad NIfTI sources."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.imaging.test_dicom_series import write_slice
from tests.test_bad_inputs import Case, run_case

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
SERIES = ("task: lung-ct\nmodel: {type: cnn2d}\n"
          "data: {type: dicom-series, root: series, labels: l.csv, image_size: [16, 16]}\n")
VOLUMES = ("task: lung-ct\nmodel: {type: cnn3d}\ndata: {type: nifti-volumes, root: vols, "
           "labels: l.csv, volume_shape: [8, 8, 8]}\n")
LABELS = "file,label\n0.dcm,0\n1.dcm,1\n2.dcm,1\n"

CT_CASES = [
    Case("DICOM slice with NumberOfFrames '1A'", ["train", "exp.yaml"],
         ["'2.dcm'", "NumberOfFrames (0028,0008)", "'1A'", "Fix:"],
         files={"exp.yaml": SERIES, "l.csv": LABELS}),
    Case("DICOM slice with RescaleSlope 'abc'", ["train", "exp.yaml"],
         ["'2.dcm'", "RescaleSlope (0028,1053)", "'abc'", "HU"],
         files={"exp.yaml": SERIES, "l.csv": LABELS}),
    Case("DICOM slice with RescaleSlope 0", ["train", "exp.yaml"],
         ["'2.dcm'", "RescaleSlope 0"], files={"exp.yaml": SERIES, "l.csv": LABELS}),
    Case("DICOM MR slice in a CT series", ["train", "exp.yaml"],
         ["'2.dcm'", "modality MR", "data.allow_modalities: [MR]"],
         files={"exp.yaml": SERIES, "l.csv": LABELS}),
    Case("DICOM palette-colour slice", ["train", "exp.yaml"],
         ["examples_palette.dcm", "modality US", "not CT"],
         files={"exp.yaml": SERIES, "l.csv": LABELS}),
    Case("DICOM RT dose grid in a series", ["train", "exp.yaml"],
         ["rtdose.dcm", "modality RTDOSE"], files={"exp.yaml": SERIES, "l.csv": LABELS}),
    Case("DICOM pydicom badVR sample", ["train", "exp.yaml"],
         ["badVR.dcm", "RTDOSE"], files={"exp.yaml": SERIES, "l.csv": LABELS}),
    Case("DICOM truncated MR sample allowed", ["train", "exp.yaml"],
         ["MR_truncated.dcm", "could not be decoded", "truncated"],
         files={"exp.yaml": SERIES.replace("image_size", "allow_modalities: [MR], image_size"),
                "l.csv": LABELS}),
    Case("DICOM allow_modalities not a code", ["train", "exp.yaml"],
         ["allow_modalities", "modality code"],
         files={"exp.yaml": SERIES.replace("image_size", "allow_modalities: ['M R'], "
                                                         "image_size"), "l.csv": LABELS}),
    Case("NIfTI source without label column", ["train", "exp.yaml"],
         ["l.csv", "`label`", "file"],
         files={"exp.yaml": VOLUMES, "l.csv": "file,y\na.nii.gz,0\n"}),
    Case("NIfTI source listing a missing volume", ["train", "exp.yaml"],
         ["'b.nii.gz'", "not in"],
         files={"exp.yaml": VOLUMES, "l.csv": "file,label\na.nii.gz,0\nb.nii.gz,1\n"}),
    Case("NIfTI source with a corrupt volume", ["train", "exp.yaml"],
         ["a.nii.gz", "SimpleITK could not read"],
         files={"exp.yaml": VOLUMES, "l.csv": "file,label\na.nii.gz,0\n"}),
    Case("NIfTI source with a 4-D volume", ["train", "exp.yaml"],
         ["a.nii.gz", "4-D", "split it"],
         files={"exp.yaml": VOLUMES, "l.csv": "file,label\na.nii.gz,0\n"}),
    Case("NIfTI source listing a file outside root", ["train", "exp.yaml"],
         ["outside data.root"],
         files={"exp.yaml": VOLUMES, "l.csv": "file,label\n../l.csv,0\n"}),
]


def _write_special(tmp_path: Path, case: Case) -> None:
    if case.name.startswith("DICOM"):
        (tmp_path / "series").mkdir()
        for i in range(3):
            write_slice(tmp_path / "series" / f"{i}.dcm", i)
        target = tmp_path / "series" / "2.dcm"
        ds = pydicom.dcmread(target)
        if "NumberOfFrames" in case.name:
            from tests.test_ct_inputs import set_raw

            set_raw(ds, "NumberOfFrames", "1A")
        if "'abc'" in case.name:
            from tests.test_ct_inputs import set_raw

            set_raw(ds, "RescaleSlope", "abc")
        if "RescaleSlope 0" in case.name:
            ds.RescaleSlope = 0
        if "MR slice" in case.name:
            ds.Modality = "MR"
        ds.save_as(target)
        for word, sample in (("palette", "examples_palette.dcm"), ("dose", "rtdose.dcm"),
                             ("badVR", "badVR.dcm"), ("truncated", "MR_truncated.dcm")):
            if word in case.name:
                if not (PYDICOM_FILES / sample).is_file():
                    pytest.skip(f"pydicom sample {sample} not installed")
                shutil.copy(PYDICOM_FILES / sample, tmp_path / "series" / sample)
    if case.name.startswith("NIfTI"):
        import SimpleITK as sitk

        (tmp_path / "vols").mkdir()
        if "corrupt" in case.name:
            (tmp_path / "vols" / "a.nii.gz").write_bytes(b"\x1f\x8b" + bytes(40))
        elif "4-D" in case.name:
            image = sitk.GetImageFromArray(np.zeros((3, 4, 5, 6), np.float32), isVector=False)
            sitk.WriteImage(image, str(tmp_path / "vols" / "a.nii.gz"))
        else:
            image = sitk.GetImageFromArray(np.full((8, 8, 8), -1000.0, np.float32))
            sitk.WriteImage(image, str(tmp_path / "vols" / "a.nii.gz"))


@pytest.mark.parametrize("case", CT_CASES, ids=lambda c: c.name)
def test_bad_ct_input(tmp_path, monkeypatch, case):
    run_case(case, tmp_path, monkeypatch, _write_special)
