"""The Keras side of the image models: the scikit-learn-style estimator, the CNN networks, the
streaming input pipeline, Grad-CAM and the TensorFlow runtime set-up.

TensorFlow and Keras are imported inside functions only (through
:func:`~medml_cli.models.keras.tf_runtime.import_tensorflow`), so importing these modules
stays cheap.
"""
