"""Validation against published measurements of shipping chips (issue 10; docs/validation.md).

``run()`` fits the declared overheads on the calibration points only and predicts every point; ``table``
renders and writes the result. The CLI's ``python -m elk_dse validate`` drives both.
"""

from elk_dse.validation.suite import Calibration, Point, Row, fit, load_suite, points, predict, run
from elk_dse.validation.table import COLUMNS, markdown, summary, write

__all__ = ["COLUMNS", "Calibration", "Point", "Row", "fit", "load_suite", "markdown", "points", "predict", "run",
           "summary", "write"]
