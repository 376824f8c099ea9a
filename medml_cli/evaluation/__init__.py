"""Splits, metrics and (later) intervals, calibration, plots and reports."""
