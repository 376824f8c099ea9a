"""Run records: the run directory and its status (``directory``), the index behind
``medml runs list/show/compare`` (``index``), saved models (``artifacts``), the environment
a run records (``environment``) and where predict may write (``outputs``)."""
