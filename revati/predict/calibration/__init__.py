"""Calibration: measured records from sources (vidur tables, revati and profiler traces) and the
fit of a profile from them (`fit.fit_profile`)."""
