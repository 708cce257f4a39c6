"""A bar schema as the registry stores it (a JSON Schema document, schemaType JSON, so a
Confluent-compatible registry accepts it as is), its compatibility rules and the check of
a frame's columns against it.

Compatibility (new version against the approved one): a removed field, a retyped field, a
field that became required and a new required field are breaking; a new optional field is
not. A frame conforms when every required field is present with a matching type and every
optional field present has a matching type; extra columns are allowed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from seamless.errors import SchemaRegistryError

SCHEMA_TYPE = "JSON"
MAX_FIELDS = 256
MAX_SCHEMA_BYTES = 64 * 1024
_FIELD_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# Subjects become URL path segments and metric label values: a bounded, plain alphabet.
SUBJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SUBJECT_FORM = "1-128 characters of letters, digits, '.', '_' and '-', e.g. bars.ohlcv-60"

# JSON Schema types, and the polars dtypes that satisfy each.
TYPES: Mapping[str, tuple[type[pl.DataType], ...]] = {
    "integer": (pl.Int64, pl.Int32, pl.Int16, pl.Int8, pl.UInt32, pl.UInt16, pl.UInt8),
    "number": (pl.Float64, pl.Float32),
    "string": (pl.String,),
    "boolean": (pl.Boolean,),
}
_FROM_POLARS: Mapping[type[pl.DataType], str] = {
    dtype: name for name, dtypes in TYPES.items() for dtype in dtypes
}


def check_subject(subject: str) -> str:
    if not isinstance(subject, str) or not SUBJECT_RE.match(subject):
        shown = subject[:60] if isinstance(subject, str) else type(subject).__name__
        raise ValueError(f"subject {shown!r} is not valid; expected {SUBJECT_FORM}")
    return subject


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    required: bool = True


@dataclass(frozen=True)
class BarSchema:
    """Fields in order; ``title`` names the data spec it describes."""

    fields: tuple[FieldSpec, ...]
    title: str = "bars"

    @classmethod
    def from_dtypes(
        cls,
        dtypes: Mapping[str, type[pl.DataType]],
        *,
        optional: frozenset[str] = frozenset(),
        title: str = "bars",
    ) -> BarSchema:
        fields = []
        for name, dtype in dtypes.items():
            kind = _FROM_POLARS.get(dtype)
            if kind is None:
                raise ValueError(f"field {name!r}: dtype {dtype} has no schema type")
            fields.append(FieldSpec(name, kind, name not in optional))
        return cls(tuple(fields), title)

    def to_json(self) -> str:
        """Canonical text: the same schema always gives the same string (and bundle SHA)."""
        doc = {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": self.title,
            "type": "object",
            "properties": {f.name: {"type": f.type} for f in self.fields},
            "required": [f.name for f in self.fields if f.required],
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, *, origin: str = "schema") -> BarSchema:
        """Parse and bound a schema document; SchemaRegistryError naming what is wrong."""
        if len(text.encode("utf-8")) > MAX_SCHEMA_BYTES:
            raise SchemaRegistryError(f"{origin}: larger than {MAX_SCHEMA_BYTES} bytes")
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise SchemaRegistryError(f"{origin}: not JSON ({exc})") from None
        props = doc.get("properties") if isinstance(doc, dict) else None
        if not isinstance(props, dict) or not props:
            raise SchemaRegistryError(
                f"{origin}: expected a JSON Schema object with 'properties' (field -> type)"
            )
        if len(props) > MAX_FIELDS:
            raise SchemaRegistryError(f"{origin}: more than {MAX_FIELDS} fields")
        required = doc.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise SchemaRegistryError(f"{origin}: 'required' must be a list of field names")
        fields = []
        for name, spec in props.items():
            kind = spec.get("type") if isinstance(spec, dict) else None
            if not _FIELD_NAME_RE.match(name) or kind not in TYPES:
                raise SchemaRegistryError(
                    f"{origin}: field {name[:64]!r}: expected a name of letters, digits and "
                    f"'_' with a type in {sorted(TYPES)}"
                )
            fields.append(FieldSpec(name, str(kind), name in required))
        title = doc.get("title", "bars")
        return cls(tuple(fields), str(title)[:128])

    def by_name(self) -> dict[str, FieldSpec]:
        return {f.name: f for f in self.fields}

    def frame_violations(self, frame_schema: Mapping[str, Any]) -> list[str]:
        """What a frame with these columns (name -> polars dtype) breaks, one line each."""
        problems = []
        for f in self.fields:
            dtype = frame_schema.get(f.name)
            if dtype is None:
                if f.required:
                    problems.append(f"field {f.name!r} ({f.type}) missing")
                continue
            have = _FROM_POLARS.get(dtype.base_type() if hasattr(dtype, "base_type") else dtype)
            if have != f.type:
                problems.append(f"field {f.name!r}: expected {f.type}, got {dtype}")
        return problems


@dataclass(frozen=True)
class Compatibility:
    breaking: tuple[str, ...]
    added: tuple[str, ...]

    @property
    def compatible(self) -> bool:
        return not self.breaking


def compatibility(approved: BarSchema, candidate: BarSchema) -> Compatibility:
    """Is `candidate` a safe next version of `approved`? (see the module docstring)"""
    old, new = approved.by_name(), candidate.by_name()
    breaking: list[str] = []
    added: list[str] = []
    for name, f in old.items():
        got = new.get(name)
        if got is None:
            breaking.append(f"field {name!r} removed")
        elif got.type != f.type:
            breaking.append(f"field {name!r} retyped {f.type} -> {got.type}")
        elif got.required and not f.required:
            breaking.append(f"field {name!r} became required")
    for name, f in new.items():
        if name in old:
            continue
        if f.required:
            breaking.append(f"new field {name!r} is required (old data lacks it)")
        else:
            added.append(name)
    return Compatibility(tuple(breaking), tuple(added))
