"""Image and volume inputs: DICOM series, LUNA16 volumes, MedMNIST ``.npz`` files, image
folders, Hounsfield-unit windowing and a synthetic chest-CT nodule phantom.

Every module here is plain numpy (plus pydicom, SimpleITK, Pillow or scipy where a format
needs it); none imports TensorFlow or Keras, so reading data stays cheap. Import the
submodule you need, e.g. ``from medml_cli.imaging.dicom_series import read_dicom_series``.
"""
