"""Conformance suites shipped with the package (like ``optuna.testing``): a plug-in for an extension point passes its suite."""
