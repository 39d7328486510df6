"""elk_dse: design-space exploration for inter-core connected AI chips.

Pipeline (folders, dependencies point down): hw, ir -> models -> cost -> compiler -> program -> sim ->
evaluate -> search -> results -> cli.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
