"""Readers with no registry: tables (CSV dialects, Parquet), DICOM, MetaImage, NIfTI, MedMNIST
``.npz``, image files, Hounsfield units, and checks on user-given paths (plus file hashes).

Every module here is plain numpy/pandas (plus pydicom, SimpleITK, Pillow or scipy where a format
needs it); none imports TensorFlow or Keras, and none imports a data source. Import the
submodule you need, e.g. ``from medml_cli.data.formats.dicom import read_dicom_series``.
"""
