"""Taking a model out of medml: ONNX bundles and experiment-tracker exports.

Above the workflows and sweeps (it reads runs and sweeps and replays the run's own
predictions), below the command line.
"""
