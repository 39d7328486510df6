"""Errors that reach the user as one line: the field, the value and what is allowed."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ElkError(Exception):
    """Base class of every error elk_dse reports to a user (CLI prints ``str(err)`` and exits 2)."""


class ConfigError(ElkError):
    """A config value is missing, unknown, of the wrong type or out of range.

    The message always names the dotted field, the offending value and the allowed range or choices.
    """

    def __init__(self, field: str, value: object, allowed: str):
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field}={value!r} is invalid: {allowed}")


class UnknownKeyError(ConfigError):
    """A key that the schema does not define; suggests the nearest valid key."""

    def __init__(self, field: str, valid: Iterable[str]):
        valid = sorted(valid)
        leaf = field.rsplit(".", 1)[-1]
        near = difflib.get_close_matches(leaf, valid, n=1)
        hint = f"did you mean '{near[0]}'? " if near else ""
        ElkError.__init__(self, f"unknown key '{field}': {hint}allowed keys: {', '.join(valid)}")
        self.field, self.value, self.allowed = field, None, ", ".join(valid)


class StorageError(ElkError):
    """A sweep file cannot be written or read back (disk full, permissions, a corrupt file). The CLI exits 74
    (EX_IOERR): the input was fine, the machine was not. ``path`` names the file."""

    def __init__(self, path: object, problem: str, advice: str = ""):
        self.path = path
        super().__init__(f"{path}: {problem}" + (f"; {advice}" if advice else ""))


def nearest(word: str, choices: Iterable[str]) -> str:
    """A ' (did you mean X?)' suffix naming the closest choice, or '' if none is close."""
    near = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{near[0]}'?)" if near else ""
