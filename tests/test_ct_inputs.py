"""Real-world CT inputs through the CLI: malformed headers, non-CT objects, NIfTI volumes and
Enhanced (multi-frame) CT, tested on files medml did not write (pydicom's sample files and
the real TCIA series in ../shared/data)."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import Tag
from pydicom.uid import EnhancedCTImageStorage, ExplicitVRLittleEndian, generate_uid

from tests.conftest import CONFIGS, run_cli

pytestmark = pytest.mark.tensorflow

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
TINY_2D = ["--set", "data.n_patients=10", "--set", "data.samples_per_patient=4",
           "--set", "data.size=16", "--set", "model.filters=[4]", "--set", "model.dense_units=4",
           "--set", "model.epochs=1", "--set", "evaluation.bootstrap=50",
           "--set", "evaluation.explain=none"]


def sample(name: str) -> Path:
    """A pydicom sample file, from the installed package only (never downloaded)."""
    path = PYDICOM_FILES / name
    if not path.is_file():
        pytest.skip(f"pydicom sample {name} is not installed with this pydicom")
    return path


def tcia_series(shared_data: Path) -> Path:
    folder = shared_data / "lung-pet-ct-dx-sample" / "Lung_Dx-A0002_CT_B40f"
    if not folder.is_dir():
        pytest.skip(f"the TCIA series is not in {shared_data}")
    return folder


def set_raw(ds: Dataset, keyword: str, raw: str | bytes, vr: str | None = None) -> None:
    """Store ``raw`` as the tag's bytes, bypassing pydicom's validation (as a broken writer
    would)."""
    tag = tag_for_keyword(keyword)
    data = raw if isinstance(raw, bytes) else raw.encode("latin-1")
    if len(data) % 2:
        data += b" "
    ds[tag] = RawDataElement(Tag(tag), vr or dictionary_VR(tag), len(data), data, 0, False,
                             True)


def ct_copies(folder: Path, n: int, *, series_uid: str | None = None,
              intercepts: list[float] | None = None) -> list[Path]:
    """``n`` slices made from pydicom's CT_small.dcm, 5 mm apart, in one new series."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    paths = []
    for i in range(n):
        ds = pydicom.dcmread(sample("CT_small.dcm"))
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SeriesInstanceUID = series_uid
        ds.InstanceNumber = i + 1
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y, z + 5.0 * i]
        if intercepts:
            ds.RescaleIntercept = intercepts[i]
        path = folder / f"{i}.dcm"
        ds.save_as(path)
        paths.append(path)
    return paths


def write_enhanced(slices: list[Path], out: Path, *, seed: int = 0,
                   per_frame_rescale: bool = False) -> None:
    """An Enhanced CT file holding every slice, frames in shuffled order."""
    sources = [pydicom.dcmread(p) for p in slices]
    order = list(range(len(sources)))
    random.Random(seed).shuffle(order)
    first = sources[0]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = EnhancedCTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = EnhancedCTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CT"
    for keyword in ("Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit",
                    "PixelRepresentation", "SamplesPerPixel", "PhotometricInterpretation"):
        setattr(ds, keyword, getattr(first, keyword))
    ds.NumberOfFrames = len(sources)
    orientation, measures = Dataset(), Dataset()
    orientation.ImageOrientationPatient = first.ImageOrientationPatient
    measures.PixelSpacing = first.PixelSpacing
    measures.SliceThickness = first.SliceThickness
    shared = Dataset()
    shared.PlaneOrientationSequence = [orientation]
    shared.PixelMeasuresSequence = [measures]

    def rescale(src: Dataset) -> Dataset:
        item = Dataset()
        item.RescaleSlope, item.RescaleIntercept = src.RescaleSlope, src.RescaleIntercept
        item.RescaleType = "HU"
        return item

    if not per_frame_rescale:
        shared.PixelValueTransformationSequence = [rescale(first)]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames = []
    for k in order:
        item, position = Dataset(), Dataset()
        position.ImagePositionPatient = sources[k].ImagePositionPatient
        item.PlanePositionSequence = [position]
        if per_frame_rescale:
            item.PixelValueTransformationSequence = [rescale(sources[k])]
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = frames
    dtype = np.int16 if first.PixelRepresentation else np.uint16
    ds.PixelData = b"".join(sources[k].pixel_array.astype(dtype).tobytes() for k in order)
    ds.save_as(out, enforce_file_format=True)


@pytest.fixture(scope="module")
def cnn2d_run(tmp_path_factory) -> Path:
    """ONE tiny 2D CNN trained on the (HU) phantom, reused by every predict test."""
    runs = tmp_path_factory.mktemp("runs")
    result = run_cli("train", CONFIGS / "lung_ct_cnn2d.yaml", "--runs-dir", runs, *TINY_2D)
    assert result.exit_code == 0, result.stderr
    return Path(result.last_line)


def predict(run: Path, target: Path, *extra: str):
    return run_cli("predict", run, "--input", target, *extra)


def assert_clean(result, code: int, *expect: str) -> None:
    assert result.exit_code == code, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    message = " ".join(result.stderr.split())
    for text in expect:
        assert text in message, f"{text!r} not in {message!r}"


# --------------------------------------------------------------------------- 1 malformed headers
GARBAGE = ["1A", "abc", "", "1\\2\\x"]
#: needed to decode or to get HU; absent is fine (a default), present and unreadable is not
IF_PRESENT = ("NumberOfFrames", "RescaleSlope", "RescaleIntercept")
#: needed to decode the pixels or to know the image is grayscale CT
REQUIRED = ("Rows", "Columns", "BitsStored", "SamplesPerPixel", "PhotometricInterpretation")
#: geometry not needed to score an image (a series falls back to InstanceNumber order)
NOT_NEEDED = ("PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient",
              "SliceThickness", "InstanceNumber")
TAGS = (*IF_PRESENT, *REQUIRED, *NOT_NEEDED, "Modality")


def expected_exit(keyword: str, raw: str) -> int:
    if keyword in NOT_NEEDED:
        return 0
    if keyword in IF_PRESENT or keyword == "Modality":  # '' = absent (Modality: SOP class CT)
        return 0 if raw == "" else 2
    return 2


def corrupted(src: Path, dst: Path, keyword: str, raw: str) -> Path:
    ds = pydicom.dcmread(src)
    binary = dictionary_VR(tag_for_keyword(keyword)) == "US"
    # binary tags get the text bytes under their own VR: wrong lengths and values, as broken
    # writers produce (badVR.dcm is one)
    set_raw(ds, keyword, raw, "US" if binary else None)
    ds.save_as(dst)
    return dst


def test_pydicom_badvr_sample_is_a_clean_error(cnn2d_run):
    """The reported crash: NumberOfFrames '1A' ended in an internal error (exit 1)."""
    result = predict(cnn2d_run, sample("badVR.dcm"), "--allow-modality", "RTDOSE")
    assert_clean(result, 2, "badVR.dcm", "NumberOfFrames (0028,0008)", "'1A'")


@pytest.mark.parametrize("raw", GARBAGE, ids=repr)
@pytest.mark.parametrize("keyword", TAGS)
def test_corrupt_tag_through_predict(cnn2d_run, tmp_path, keyword, raw):
    target = corrupted(sample("CT_small.dcm"), tmp_path / "slice.dcm", keyword, raw)
    result = predict(cnn2d_run, target)
    code = expected_exit(keyword, raw)
    assert_clean(result, code, *(["slice.dcm"] if code else []))
    if code == 0:
        assert len(pd.read_csv(io.StringIO(result.stdout))) == 1
    elif keyword in IF_PRESENT:
        assert keyword in result.stderr and "unreadable value" in " ".join(result.stderr.split())


def _series_config(tmp_path: Path, keyword: str | None = None, raw: str = "",
                   extra: str = "") -> Path:
    """6 patients x 2 CT_small slices; ``keyword`` corrupted in one file of patient 0."""
    rows = ["file,label"]
    for patient in range(6):
        paths = ct_copies(tmp_path / "series" / f"p{patient}", 2)
        rows += [f"p{patient}/{p.name},{i}" for i, p in enumerate(paths)]
    if keyword:
        target = tmp_path / "series" / "p0" / "1.dcm"
        corrupted(target, target, keyword, raw)
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    config = tmp_path / "exp.yaml"
    config.write_text(
        "task: lung-ct\n"
        "data: {type: dicom-series, root: series, labels: labels.csv, image_size: [16, 16]"
        f"{extra}}}\n"
        "split: {test_size: 0.34, val_size: 0.34}\n"
        "model: {type: cnn2d, filters: [4], dense_units: 4, epochs: 1}\n"
        "evaluation: {bootstrap: 20, explain: none}\n")
    return config


TRAIN_CASES = [
    pytest.param(k, raw, marks=[pytest.mark.slow] if expected_exit(k, raw) == 0 else [],
                 id=f"{k}-{raw!r}")
    for k in TAGS for raw in ("1A", "")
]


@pytest.mark.parametrize(("keyword", "raw"), TRAIN_CASES)
def test_corrupt_tag_through_training(tmp_path, keyword, raw):
    config = _series_config(tmp_path, keyword, raw)
    result = run_cli("train", config, "--runs-dir", tmp_path / "runs")
    code = expected_exit(keyword, raw)
    assert_clean(result, code, *(["1.dcm"] if code else []))


# --------------------------------------------------------------------------- 2 non-CT objects
@pytest.mark.parametrize(("name", "found"), [
    ("MR_small.dcm", "modality MR"),
    ("rtdose.dcm", "modality RTDOSE"),
    ("rtdose_1frame.dcm", "modality RTDOSE"),
    ("examples_palette.dcm", "modality US"),
    ("SC_rgb_rle.dcm", "modality OT"),
    ("JPEG2000.dcm", "modality NM"),
    ("liver_1frame.dcm", "modality SEG"),
])
def test_ct_model_refuses_non_ct_dicom(cnn2d_run, name, found):
    result = predict(cnn2d_run, sample(name))
    assert_clean(result, 2, name, found, "not CT", "--allow-modality")


def test_allow_modality_scores_mr_with_a_warning(cnn2d_run):
    result = predict(cnn2d_run, sample("MR_small.dcm"), "--allow-modality", "mr")
    assert_clean(result, 0, "warning:", "scored MR", "--allow-modality MR")


@pytest.mark.parametrize("name", ["examples_palette.dcm", "SC_rgb_rle.dcm",
                                  "examples_rgb_color.dcm"])
def test_colour_dicom_is_refused_even_when_its_modality_is_allowed(cnn2d_run, name):
    result = predict(cnn2d_run, sample(name), "--allow-modality", "US",
                     "--allow-modality", "OT")
    assert_clean(result, 2, name, "colour image", "PhotometricInterpretation")


def test_training_on_an_mr_series_is_refused_unless_allowed(tmp_path):
    from medml_cli.config.loader import validate_config_data
    from medml_cli.workflows.train import load_dataset

    config = _series_config(tmp_path)
    mr = tmp_path / "series" / "p2" / "0.dcm"
    ds = pydicom.dcmread(mr)
    ds.Modality = "MR"
    ds.save_as(mr)
    result = run_cli("train", config, "--runs-dir", tmp_path / "runs")
    assert_clean(result, 2, "0.dcm", "modality MR", "data.allow_modalities: [MR]")
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("*/metrics.json"))
    cfg = validate_config_data(
        {"task": "lung-ct", "model": {"type": "cnn2d"},
         "data": {"type": "dicom-series", "root": "series", "labels": "labels.csv",
                  "allow_modalities": ["mr"]}}, base_dir=tmp_path)
    dataset = load_dataset(cfg)
    assert any("MR (1 series)" in note for note in dataset.notes)
    assert "non-CT: MR" in dataset.provenance.source


# --------------------------------------------------------------------------- 3 Enhanced CT, NIfTI
def test_enhanced_ct_from_ct_small_with_per_frame_rescale(tmp_path):
    from medml_cli.data.formats.dicom import read_dicom_series, read_dicom_volume_file

    slices = ct_copies(tmp_path / "single", 4, intercepts=[-1024, -1000, -1100, -900])
    write_enhanced(slices, tmp_path / "enhanced.dcm", seed=3, per_frame_rescale=True)
    series = read_dicom_series(tmp_path / "single")
    enhanced = read_dicom_volume_file(tmp_path / "enhanced.dcm")
    np.testing.assert_array_equal(enhanced.hu, series.hu)
    np.testing.assert_allclose(enhanced.spacing, series.spacing)
    np.testing.assert_allclose(enhanced.origin, series.origin)
    np.testing.assert_allclose(enhanced.slice_positions, series.slice_positions)
    assert enhanced.files[0].startswith("enhanced.dcm#")


def test_enhanced_ct_from_the_tcia_series(shared_data, tmp_path, cnn2d_run):
    from medml_cli.data.formats.dicom import read_dicom_series, read_dicom_volume_file

    folder = tcia_series(shared_data)
    out = tmp_path / "enh" / "ct.dcm"
    out.parent.mkdir()
    write_enhanced(sorted(folder.glob("*.dcm")), out, seed=1)
    series = read_dicom_series(folder)
    enhanced = read_dicom_volume_file(out)
    assert enhanced.shape == series.shape == (30, 512, 512)
    np.testing.assert_array_equal(enhanced.hu, series.hu)
    np.testing.assert_allclose(enhanced.origin, series.origin)
    np.testing.assert_allclose(enhanced.direction, series.direction)
    np.testing.assert_allclose(enhanced.spacing, series.spacing)
    # through predict: the file alone and the folder holding it both give one row per frame,
    # scored as the single-frame series is
    from_series = pd.read_csv(io.StringIO(predict(cnn2d_run, folder).stdout))
    for target in (out, out.parent):
        result = predict(cnn2d_run, target)
        assert_clean(result, 0)
        rows = pd.read_csv(io.StringIO(result.stdout))
        assert len(rows) == 30
        np.testing.assert_allclose(rows["probability"], from_series["probability"], atol=1e-6)


def test_dicom_series_source_reads_enhanced_ct_frames(tmp_path):
    """Training: one Enhanced CT file per patient; slices are labelled as `<file>#<frame>`."""
    from medml_cli.config.loader import validate_config_data
    from medml_cli.workflows.train import load_dataset

    rows = ["file,label"]
    for patient in range(3):
        slices = ct_copies(tmp_path / "single" / f"p{patient}", 2)
        (tmp_path / "series" / f"p{patient}").mkdir(parents=True)
        write_enhanced(slices, tmp_path / "series" / f"p{patient}" / "enh.dcm", seed=patient)
        rows += [f"p{patient}/enh.dcm#1,0", f"p{patient}/enh.dcm#2,1"]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    for level, extra in (("slice", {"image_size": [128, 128]}), ("series", {})):
        data = {"type": "dicom-series", "root": "series", "labels": "labels.csv",
                "level": level, **extra}
        if level == "series":
            (tmp_path / "s.csv").write_text("series,label\np0,0\np1,1\np2,1\n")
            data["labels"] = "s.csv"
        cfg = validate_config_data({"task": "lung-ct", "data": data, "model": {
            "type": "cnn2d" if level == "slice" else "cnn3d"}}, base_dir=tmp_path)
        dataset = load_dataset(cfg)
        assert "enh.dcm" in dataset.provenance.files
        if level == "slice":
            assert dataset.n_samples == 6 and "p0/enh.dcm#1" in set(dataset.ids)


def test_enhanced_ct_mixed_with_single_slices_is_refused(tmp_path, cnn2d_run):
    slices = ct_copies(tmp_path / "mix", 2)
    write_enhanced(slices, tmp_path / "mix" / "enhanced.dcm")
    result = predict(cnn2d_run, tmp_path / "mix")
    assert_clean(result, 2, "enhanced.dcm", "multi-frame", "its own folder")


def test_multi_frame_without_positions_points_to_nifti(cnn2d_run):
    result = predict(cnn2d_run, sample("rtdose.dcm"), "--allow-modality", "RTDOSE")
    assert_clean(result, 2, "rtdose.dcm", "15 frames", "PerFrameFunctionalGroupsSequence",
                 ".nii.gz")


def _as_nifti_ras(volume, path: Path) -> None:
    """Write a CtVolume as NIfTI stored the way dcm2niix/nibabel do (x and y reversed)."""
    import SimpleITK as sitk

    stored = volume.hu[:, ::-1, ::-1]  # columns run right-to-left, rows anterior-ward
    image = sitk.GetImageFromArray(np.ascontiguousarray(stored))
    spacing_zyx = np.asarray(volume.spacing)
    direction_xyz = np.asarray(volume.direction)[::-1, ::-1]
    index_max_xyz = np.array([volume.hu.shape[2] - 1, volume.hu.shape[1] - 1, 0])
    origin_xyz = np.asarray(volume.origin)[::-1] + direction_xyz @ (
        spacing_zyx[::-1] * index_max_xyz)
    flipped = direction_xyz @ np.diag([-1.0, -1.0, 1.0])
    image.SetSpacing(tuple(float(s) for s in spacing_zyx[::-1]))
    image.SetOrigin(tuple(float(o) for o in origin_xyz))
    image.SetDirection(tuple(float(v) for v in flipped.ravel()))
    sitk.WriteImage(image, str(path))


def test_nifti_of_the_tcia_series_reads_as_the_dicom_does(shared_data, tmp_path, cnn2d_run):
    from medml_cli.data.formats.dicom import read_dicom_series
    from medml_cli.data.formats.nifti import read_nifti

    folder = tcia_series(shared_data)
    series = read_dicom_series(folder)
    path = tmp_path / "vols" / "a0002.nii.gz"
    path.parent.mkdir()
    _as_nifti_ras(series, path)
    raw = read_nifti(path, reorient=False)
    assert not np.allclose(raw.direction, np.eye(3))  # stored mirrored, as dcm2niix does
    volume = read_nifti(path)
    np.testing.assert_array_equal(volume.hu, series.hu)
    np.testing.assert_allclose(volume.origin, series.origin, atol=1e-3)
    np.testing.assert_allclose(volume.direction, series.direction, atol=1e-6)
    np.testing.assert_allclose(volume.spacing, series.spacing, rtol=1e-5)
    from_series = pd.read_csv(io.StringIO(predict(cnn2d_run, folder).stdout))
    for target in (path, path.parent):
        result = predict(cnn2d_run, target)
        assert_clean(result, 0)
        rows = pd.read_csv(io.StringIO(result.stdout))
        np.testing.assert_allclose(rows["probability"], from_series["probability"], atol=1e-6)


def test_nifti_oblique_and_permuted_axes(tmp_path):
    """An oblique scan stored with z and x swapped comes back LPS-aligned, same world grid."""
    import SimpleITK as sitk

    from medml_cli.data.formats.nifti import read_nifti

    rng = np.random.default_rng(0)
    arr = rng.normal(-500, 300, size=(5, 6, 7)).astype(np.float32)
    angle = np.deg2rad(10)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                         [0, 0, 1]])
    swap = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]], dtype=float)  # index x points along z
    image = sitk.GetImageFromArray(arr)
    image.SetDirection(tuple((rotation @ swap).ravel()))
    image.SetSpacing((0.7, 0.8, 2.5))
    image.SetOrigin((-10.0, 20.0, 30.0))
    sitk.WriteImage(image, str(tmp_path / "v.nii"))
    volume = read_nifti(tmp_path / "v.nii")
    assert volume.shape == (7, 6, 5)
    direction = np.asarray(volume.direction)[::-1, ::-1]  # back to (x, y, z) columns
    assert np.all(np.diag(direction) > 0.9)  # each axis within 10 degrees of +x, +y, +z
    # a voxel keeps its value at the same world position
    original = image.TransformIndexToPhysicalPoint((6, 2, 1))
    index_zyx = np.argwhere(volume.hu == arr[1, 2, 6])[0]
    spacing = np.asarray(volume.spacing)
    world = np.asarray(volume.origin) + np.asarray(volume.direction) @ (spacing * index_zyx)
    np.testing.assert_allclose(world[::-1], original, atol=1e-4)


def test_nifti_volumes_training_source(tmp_path):
    import SimpleITK as sitk

    from medml_cli.config.loader import validate_config_data
    from medml_cli.workflows.train import load_dataset

    (tmp_path / "vols").mkdir()
    rows = ["file,label,patient"]
    for i in range(6):
        arr = np.full((8, 10, 12), -1000.0, np.float32)
        arr[2:6, 3:7, 4:8] = 40.0 * i
        image = sitk.GetImageFromArray(arr)
        image.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))
        name = f"case{i}.nii.gz" if i % 2 else f"case{i}.nii"
        sitk.WriteImage(image, str(tmp_path / "vols" / name))
        rows.append(f"{name},{i % 2},p{i // 2}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    cfg = validate_config_data(
        {"task": "lung-ct", "model": {"type": "cnn3d"},
         "data": {"type": "nifti-volumes", "root": "vols", "labels": "labels.csv",
                  "volume_shape": [8, 10, 12]}}, base_dir=tmp_path)
    dataset = load_dataset(cfg)
    assert dataset.images.shape == (6, 8, 10, 12) and dataset.spatial_dims == 3
    assert list(dataset.labels) == [0, 1, 0, 1, 0, 1]
    assert len(set(dataset.groups)) == 3
    assert dataset.intensity[0] == "hu"
    # flipped storage is put back: the bright box sits where it was in index space, mirrored
    assert dataset.images[1, 3, 3:7, 4:8].min() == pytest.approx(40.0)


# --------------------------------------------------------------------------- image-folder colour
@pytest.mark.slow
def test_grayscale_image_model_flags_a_colour_image(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(8):
            grey = rng.integers(0, 255, (16, 16), dtype=np.uint8)
            Image.fromarray(grey).save(tmp_path / "imgs" / cls / f"{i}.png")
    (tmp_path / "exp.yaml").write_text(
        "task: image-classification\n"
        "data: {type: image-folder, root: imgs, image_size: [16, 16]}\n"
        "split: {test_size: 0.25, val_size: 0.25}\n"
        "model: {type: cnn2d, filters: [4], dense_units: 4, epochs: 1}\n"
        "evaluation: {bootstrap: 20, explain: none}\n")
    trained = run_cli("train", tmp_path / "exp.yaml", "--runs-dir", tmp_path / "runs")
    assert trained.exit_code == 0, trained.stderr
    (tmp_path / "new").mkdir()
    colour = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(colour).save(tmp_path / "new" / "colour.png")
    grey_rgb = np.repeat(rng.integers(0, 255, (16, 16, 1), dtype=np.uint8), 3, axis=-1)
    Image.fromarray(grey_rgb).save(tmp_path / "new" / "grey_as_rgb.png")
    result = predict(Path(trained.last_line), tmp_path / "new")
    assert_clean(result, 0)
    rows = pd.read_csv(io.StringIO(result.stdout)).fillna("").set_index("id")
    assert "converted to grayscale" in rows.loc["colour.png", "warnings"]
    assert rows.loc["grey_as_rgb.png", "warnings"] == ""  # R = G = B: nothing lost
