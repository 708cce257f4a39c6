"""YAML loading for files a user hands us: bounded before anything is built from them.

`yaml.safe_load` alone stops code execution, not denial of service: a handful of nested
aliases ("billion laughs") expand to a billion nodes the moment anything walks the result,
a 5,000-deep nested list ends in a RecursionError, and a key given twice in one mapping
silently keeps the last value. So the event stream (libyaml's parser, iterative and fast)
is walked once first, counting depth, every node an alias expands to and the keys of each
mapping; only a document within the bounds is then constructed. Every refusal names the
key path where it happened and the line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from seamless.errors import YamlLimitError

MAX_DEPTH = 32
MAX_NODES = 100_000  # after alias expansion
MAX_FILE_BYTES = 8 * 1024 * 1024
_KEY_SHOWN = 60

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class _Frame:
    kind: str  # "map" or "seq"
    path: str
    anchor: str | None
    size: int = 1
    expect_key: bool = True
    key: str | None = None
    key_lines: dict[str, int] = field(default_factory=dict)
    index: int = 0

    def child_path(self) -> str:
        if self.kind == "seq":
            return f"{self.path}[{self.index}]"
        key = self.key if self.key is not None else "?"
        return f"{self.path}.{key}" if self.path else key


def _shown(text: str) -> str:
    return text if len(text) <= _KEY_SHOWN else f"{text[:_KEY_SHOWN]}… ({len(text)} chars)"


def check_document(text: str) -> None:
    """Raise `YamlLimitError` if the document is too deep, expands too far, or repeats a
    key in one mapping; `yaml.YAMLError` if it is not YAML at all."""
    stack: list[_Frame] = []
    anchors: dict[str, int] = {}
    for event in yaml.parse(text, Loader=_Loader):
        line = event.start_mark.line + 1 if event.start_mark is not None else 0
        if isinstance(event, yaml.CollectionStartEvent):
            path = stack[-1].child_path() if stack else ""
            if len(stack) >= MAX_DEPTH:
                raise YamlLimitError(
                    path,
                    line,
                    f"nested more than {MAX_DEPTH} levels deep",
                    "a config nested a few levels, like the documented examples",
                )
            kind = "map" if isinstance(event, yaml.MappingStartEvent) else "seq"
            if stack and stack[-1].kind == "map" and stack[-1].expect_key:
                stack[-1].key = "<complex key>"
            stack.append(_Frame(kind=kind, path=path, anchor=event.anchor))
        elif isinstance(event, yaml.CollectionEndEvent):
            done = stack.pop()
            if done.anchor is not None:
                anchors[done.anchor] = done.size
            _add(stack, done.size, None, line)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                anchors[event.anchor] = 1
            _add(stack, 1, event.value, line)
        elif isinstance(event, yaml.AliasEvent):
            _add(stack, anchors.get(event.anchor or "", 1), f"*{event.anchor}", line)


def _add(stack: list[_Frame], size: int, scalar: str | None, line: int) -> None:
    """Account a finished node to its parent: size, key bookkeeping, duplicate keys."""
    if not stack:
        return
    parent = stack[-1]
    parent.size += size
    if parent.size > MAX_NODES:
        raise YamlLimitError(
            parent.child_path(),
            line,
            f"aliases expand to more than {MAX_NODES:,} values (an alias bomb?)",
            "plain values, or a few anchors/aliases",
        )
    if parent.kind == "seq":
        parent.index += 1
        return
    if not parent.expect_key:
        parent.expect_key = True
        return
    parent.expect_key = False
    if scalar is None:
        return  # a complex key: named "<complex key>" already
    key = _shown(scalar)
    parent.key = key
    if scalar == "<<":
        return  # merge key: may repeat
    first = parent.key_lines.get(scalar)
    if first is not None:
        raise YamlLimitError(
            parent.child_path(),
            line,
            f"key given twice in one mapping (first at line {first})",
            "each key once per mapping",
        )
    parent.key_lines[scalar] = line


def load(text: str) -> Any:
    """`check_document`, then the document as Python values (safe constructors only)."""
    check_document(text)
    return yaml.load(text, Loader=_Loader)
