"""elk_dse: design-space exploration for inter-core connected AI chips.

Pipeline (folders, dependencies point down): hw, ir -> models -> cost -> compiler -> program -> sim ->
evaluate -> search -> results -> api, cli.

Python API (docs/api.md)::

    import elk_dse
    elk_dse.evaluate(chip="mesh64", model="llama2_7b").latency_s
    elk_dse.sweep(chip="mesh64", n_trials=64, workers=0).front
    elk_dse.load("results/<sweep folder>").rows
"""

__version__ = "0.1.0"
__all__ = ["ConfigError", "ElkError", "Result", "StorageError", "Sweep", "__version__", "compose", "evaluate", "load",
           "sweep"]

# The module elk_dse.evaluate (the evaluation pipeline) is loaded first: importing a submodule binds it as an
# attribute of the package, so the public function must be bound after it, not before.
from elk_dse import evaluate as _evaluate_module  # noqa: E402, F401
from elk_dse.api import Result, Sweep, compose, evaluate, load, sweep  # noqa: E402
from elk_dse.errors import ConfigError, ElkError, StorageError  # noqa: E402
