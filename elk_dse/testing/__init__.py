"""Conformance suites of elk_dse's extension points, shipped in the package (like ``optuna.testing``): a new
plug-in is checked by running the suite of its registry, which finds it without being edited."""
