"""Conformance suites shipped with elk_dse (like ``optuna.testing``): a plug-in is checked by running the suite of
its extension point against it: ``elk_dse.testing.topology`` for every registered topology,
``elk_dse.testing.schedulers`` for every registered scheduler, ``elk_dse.testing.models`` for every registered
model type."""
