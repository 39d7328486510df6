"""Numeric formats of tensors: the one table of bits per value.

Block floating point (Tenstorrent bfp8 / bfp4): each value keeps a sign and mantissa of 8 / 4 bits and every
block of 16 values shares one 8-bit exponent, i.e. 8 + 8/16 = 8.5 and 4 + 8/16 = 4.5 bits per value
(tt-metal tech_reports/data_formats; the issue 10 brief). Bytes per value = bits / 8, fractional for bfp.
"""

from __future__ import annotations

BLOCK_VALUES = 16  # values sharing one exponent in a bfp block
EXPONENT_BITS = 8

FORMAT_BITS: dict[str, float] = {
    "fp32": 32.0,
    "fp16": 16.0,
    "bf16": 16.0,
    "fp8": 8.0,
    "int8": 8.0,
    "bfp8": 8.0 + EXPONENT_BITS / BLOCK_VALUES,  # 8.5
    "bfp4": 4.0 + EXPONENT_BITS / BLOCK_VALUES,  # 4.5
}


def format_bytes(fmt: str) -> float:
    """Bytes per value of format ``fmt`` (KeyError for an unknown name; callers validate first)."""
    return FORMAT_BITS[fmt] / 8.0
