"""medml: reproducible medical machine-learning experiments from one YAML file."""

__version__ = "0.1.0"
