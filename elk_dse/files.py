"""Reading user files (YAML, JSON) as untrusted data.

- Only plain data: YAML through PyYAML's SafeLoader (no Python objects), JSON through the standard parser.
- A key given twice in one mapping is an error naming the key and the line (YAML would keep the last silently).
- YAML aliases are bounded: a document whose values, with every alias expanded, exceed
  ``MAX_EXPANDED_NODES`` is refused before anything walks it ("billion laughs": 9 aliases nested 8 deep are
  43 million values in a 300-byte file). The count is memoised per node, so checking costs the file's size.
- Files above ``MAX_FILE_BYTES`` are refused without being read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from elk_dse.errors import ConfigError

MAX_EXPANDED_NODES = 1_000_000
MAX_FILE_BYTES = 64 * 2**20


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and alias bombs."""

    field = "file"
    source = "<yaml>"

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: SafeLoader's own message follows
                break
            if duplicate:
                raise ConfigError(self.field, self.source, f"key {key!r} appears twice in one mapping (line "
                                  f"{key_node.start_mark.line + 1}); give each key once")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_document(self, node: yaml.Node) -> Any:
        size = _expanded_size(node, {})
        if size > MAX_EXPANDED_NODES:
            raise ConfigError(self.field, self.source, f"its aliases expand to {size:.3g} values, more than "
                              f"{MAX_EXPANDED_NODES:,}; write the data out instead of nesting aliases")
        return super().construct_document(node)


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Values in ``node`` with aliases expanded (an alias is the same node object reached twice)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = 1  # a recursive alias counts once instead of looping
    if isinstance(node, yaml.SequenceNode):
        total = 1 + sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        total = 1
    memo[id(node)] = total
    return total


def load_yaml(text: str, field: str, source: str) -> Any:
    """Parse untrusted YAML text; ConfigError naming ``field`` and ``source`` (the file) for invalid YAML,
    duplicate keys or alias bombs."""

    class Loader(_StrictLoader):
        pass

    Loader.field, Loader.source = field, source
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(field, source, f"not valid YAML{where} ({first})") from None
    except RecursionError:
        raise ConfigError(field, source, "nested too deeply to be a config") from None


def load_json(text: str, field: str, source: str) -> Any:
    """Parse untrusted JSON text; duplicate keys are an error naming ``field`` and ``source``."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise ConfigError(field, source, f"key {key!r} appears twice in one object; give each key once")
            out[key] = value
        return out

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as err:
        raise ConfigError(field, source, f"not valid JSON (line {err.lineno}: {err.msg})") from None
    except RecursionError:
        raise ConfigError(field, source, "nested too deeply to be a config") from None


def read_text(path: Path, field: str) -> str:
    """A small text file's contents; ConfigError naming ``field`` when it is missing, too large or not text."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ConfigError(field, str(path), "not a file")
        if size > MAX_FILE_BYTES:
            raise ConfigError(field, str(path), f"{size:,} bytes; a config file is at most {MAX_FILE_BYTES:,}")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(field, str(path), "no such file") from None
    except UnicodeDecodeError:
        raise ConfigError(field, str(path), "not UTF-8 text") from None
    except OSError as err:
        raise ConfigError(field, str(path), f"cannot be read ({err.strerror or err})") from None
