"""Reading DICOM CT series: ordering, HU, geometry, no patient data, and clear errors."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from medml_cli.data.formats.dicom import read_dicom_file, read_dicom_series, read_slice_labels
from medml_cli.errors import DataError

PHI = ("SECRET123", "Test^Patient", "19700101", "Springfield")
SERIES_UID = generate_uid()


def write_slice(
    path: Path,
    index: int,
    *,
    shape: tuple[int, int] = (32, 32),
    z: float | None = None,
    series_uid: str = SERIES_UID,
) -> None:
    """One CT slice whose stored value is 1024 + 100 * index + column (HU 100*index + col)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = series_uid
    ds.Modality = "CT"
    ds.PatientName = "Test^Patient"
    ds.PatientID = "SECRET123"
    ds.PatientBirthDate = "19700101"
    ds.PatientAddress = "Springfield"
    ds.InstanceNumber = index + 1
    # Slices 2.5 mm apart going down the patient (z decreasing with instance number).
    ds.ImagePositionPatient = [-100.0, -120.0, 50.0 - 2.5 * index if z is None else z]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.7, 0.8]
    ds.SliceThickness = 2.5
    ds.RescaleSlope = 1
    ds.RescaleIntercept = -1024
    ds.Rows, ds.Columns = shape
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    pixels = np.zeros(shape, dtype=np.int16) + 1024 + 100 * index
    pixels += np.arange(shape[1], dtype=np.int16)[None, :]
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture
def series(tmp_path: Path) -> Path:
    folder = tmp_path / "series"
    folder.mkdir()
    order = list(range(6))
    random.Random(3).shuffle(order)  # file names say nothing about position
    for name_number, index in enumerate(order):
        write_slice(folder / f"IM{name_number:04d}.dcm", index)
    return folder


def test_series_is_ordered_by_position_with_hu_and_spacing(series: Path) -> None:
    volume = read_dicom_series(series)
    assert volume.hu.shape == (6, 32, 32)
    assert volume.hu.dtype == np.float32
    # Ascending along the normal: the last-written index (lowest z) comes first.
    assert volume.slice_positions == pytest.approx([37.5, 40.0, 42.5, 45.0, 47.5, 50.0])
    assert np.all(np.diff(volume.slice_positions) > 0)
    # HU = stored - 1024 = 100 * index + column; index 5 is the lowest slice.
    expected_index = [5, 4, 3, 2, 1, 0]
    for k, index in enumerate(expected_index):
        np.testing.assert_array_equal(volume.hu[k, 0], 100.0 * index + np.arange(32))
    assert volume.spacing == pytest.approx((2.5, 0.7, 0.8))
    assert volume.origin == pytest.approx((37.5, -120.0, -100.0))
    assert len(volume.files) == len(set(volume.files)) == 6
    assert all(not f.startswith("/") for f in volume.files)


def test_no_patient_data_in_the_result(series: Path) -> None:
    volume = read_dicom_series(series)
    text = repr(volume) + repr(vars(volume)) + str(volume.files) + str(volume.sop_instance_uids)
    for value in PHI:
        assert value not in text
    _, meta = read_dicom_file(series / volume.files[0])
    for value in PHI:
        assert value not in repr(meta)
    assert not any("patient" in key.lower() for key in meta)


def test_single_file(series: Path) -> None:
    hu, meta = read_dicom_file(series / "IM0000.dcm")
    assert hu.shape == (32, 32) and hu.dtype == np.float32
    assert meta["pixel_spacing"] == [0.7, 0.8]
    assert meta["rescale_intercept"] == -1024


def test_non_image_files_are_skipped(series: Path) -> None:
    (series / "notes.txt").write_text("not a slice")
    (series / "DICOMDIR").write_bytes(b"anything")
    (series / ".DS_Store").write_bytes(b"\x00\x01")
    volume = read_dicom_series(series)
    assert volume.hu.shape[0] == 6
    assert set(volume.skipped) == {"notes.txt", "DICOMDIR"}


def test_falls_back_to_instance_number(tmp_path: Path) -> None:
    from pydicom import dcmread

    for i in (2, 0, 1):
        write_slice(tmp_path / f"s{i}.dcm", i)
        ds = dcmread(tmp_path / f"s{i}.dcm")
        del ds.ImagePositionPatient
        ds.save_as(tmp_path / f"s{i}.dcm")
    volume = read_dicom_series(tmp_path)
    assert volume.files == ["s0.dcm", "s1.dcm", "s2.dcm"]
    assert volume.spacing[0] == pytest.approx(2.5)  # from SliceThickness


def test_corrupt_file_is_named(series: Path) -> None:
    good = (series / "IM0001.dcm").read_bytes()
    (series / "IM0001.dcm").write_bytes(good[: len(good) // 2])  # truncated download
    with pytest.raises(DataError, match="IM0001.dcm"):
        read_dicom_series(series)


def test_non_dicom_file_is_named(series: Path) -> None:
    (series / "scan.dcm").write_bytes(b"<html>404 not found</html>" * 20)
    with pytest.raises(DataError, match=r"'scan\.dcm' is not a DICOM file"):
        read_dicom_series(series)


def test_mixed_shapes_name_both(series: Path) -> None:
    write_slice(series / "zz_scout.dcm", 9, shape=(16, 24), z=10.0)
    with pytest.raises(DataError, match="differ in shape") as info:
        read_dicom_series(series)
    assert "32x32" in str(info.value) and "16x24" in str(info.value)
    assert "zz_scout.dcm" in str(info.value)


def test_duplicate_positions(series: Path) -> None:
    write_slice(series / "copy.dcm", 0)
    with pytest.raises(DataError, match="same slice position"):
        read_dicom_series(series)


def test_mixed_series(series: Path) -> None:
    write_slice(series / "other.dcm", 0, z=-40.0, series_uid=generate_uid())
    with pytest.raises(DataError, match="mixes 2 series"):
        read_dicom_series(series)


def test_empty_and_missing_folders(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="holds no DICOM files"):
        read_dicom_series(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        read_dicom_series(tmp_path / "nope")
    (tmp_path / "sub").mkdir()
    with pytest.raises(DataError, match="sub-folders"):
        read_dicom_series(tmp_path)


def test_slice_labels_from_csv(tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text("file,label\na.dcm,1\nb.dcm,0\n")
    assert read_slice_labels(csv) == {"a.dcm": 1, "b.dcm": 0}
    csv.write_text("SOPInstanceUID,label\n1.2.3,true\n1.2.4,0\n")
    assert read_slice_labels(csv) == {"1.2.3": 1, "1.2.4": 0}
    csv.write_text("file,label\na.dcm,2\n")
    with pytest.raises(DataError, match="0/1"):
        read_slice_labels(csv)
    csv.write_text("name,label\na.dcm,1\n")
    with pytest.raises(DataError, match="no file or sop_instance_uid column"):
        read_slice_labels(csv)


# --- the real, de-identified TCIA sample (skipped when ../shared/data is absent) ---------


def test_real_sample_series(lung_sample: Path) -> None:
    volume = read_dicom_series(lung_sample / "Lung_Dx-A0002_CT_B40f")
    assert volume.hu.shape == (30, 512, 512)
    positions = np.asarray(volume.slice_positions)
    assert np.all(np.diff(positions) > 0)
    assert positions[0] == pytest.approx(80.0) and positions[-1] == pytest.approx(312.0)
    assert volume.spacing == pytest.approx((8.0, 0.646484375, 0.646484375))
    corners = volume.hu[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert np.median(corners) < -900  # air outside the body
    assert volume.hu.max() > 500  # bone


def test_real_sample_labels_map_onto_series(lung_sample: Path) -> None:
    volume = read_dicom_series(lung_sample / "Lung_Dx-A0002_CT_B40f")
    by_file = read_slice_labels(lung_sample / "slice_labels.csv")
    by_uid = read_slice_labels(lung_sample / "slice_labels.csv", key="sop_instance_uid")
    assert sum(by_file.values()) == 10 and len(by_file) == 30
    assert set(by_file) == set(volume.files)
    assert set(by_uid) == set(volume.sop_instance_uids)
    labels = np.array([by_file[f] for f in volume.files])
    assert labels.tolist() == [by_uid[u] for u in volume.sop_instance_uids]
    # The boxed slices 1-09 ... 1-18 are contiguous, z 176 ... 248 mm.
    boxed = np.asarray(volume.slice_positions)[labels == 1]
    assert boxed.min() == pytest.approx(176.0) and boxed.max() == pytest.approx(248.0)
    assert np.all(np.diff(np.flatnonzero(labels)) == 1)
