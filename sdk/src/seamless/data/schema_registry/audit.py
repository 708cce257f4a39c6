"""The governance audit log: one JSON record per register / promote / rollback, with the
schema bundle's SHA, the validation window and a note (seed 004's audit_log step).

Two stores with one interface: the artifact store (S3/MinIO, one object per record under
``schema-audit/{subject}/``) when one is configured, else a local JSON-lines file. Records
are appended, never rewritten.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from seamless.data.schema_registry.schema import BarSchema, check_subject
from seamless.errors import SchemaRegistryError

AUDIT_PREFIX = "schema-audit"
ACTIONS = ("register", "promote", "rollback")
MAX_NOTE = 500


def bundle_sha(schema: BarSchema) -> str:
    return "sha256:" + hashlib.sha256(schema.to_json().encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuditRecord:
    action: str
    subject: str
    version: int | None
    bundle_sha: str | None
    mode: str  # the mode the subject is in after this record
    note: str
    at: float = field(default_factory=time.time)
    window_start: float | None = None
    window_end: float | None = None
    canary_failures: float | None = None  # seamless_schema_validation_failures_total
    forced: bool = False

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AuditRecord:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


class AuditStore(Protocol):
    where: str

    def append(self, record: AuditRecord) -> str: ...

    def records(self, subject: str | None = None) -> list[AuditRecord]: ...


class FileAuditStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def append(self, record: AuditRecord) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(record.as_json() + "\n")
        return self.where

    def records(self, subject: str | None = None) -> list[AuditRecord]:
        if not self.path.exists():
            return []
        out = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = AuditRecord.from_mapping(json.loads(line))
            except (ValueError, TypeError):
                raise SchemaRegistryError(
                    f"audit log {self.path} line {number}: not an audit record"
                ) from None
            if subject is None or record.subject == subject:
                out.append(record)
        return sorted(out, key=lambda r: r.at)


class ArtifactAuditStore:
    """Records as objects ``schema-audit/{subject}/{at_ns}-{action}.json`` in a bucket."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.where = f"s3://{bucket}/{AUDIT_PREFIX}/"

    def append(self, record: AuditRecord) -> str:
        stamp = int(record.at * 1e9)
        key = f"{AUDIT_PREFIX}/{check_subject(record.subject)}/{stamp}-{record.action}.json"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=record.as_json().encode("utf-8"))
        return f"s3://{self.bucket}/{key}"

    def records(self, subject: str | None = None) -> list[AuditRecord]:
        prefix = f"{AUDIT_PREFIX}/" + (f"{check_subject(subject)}/" if subject else "")
        out = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            for item in page.get("Contents", []):
                body = self.s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
                out.append(AuditRecord.from_mapping(json.loads(body)))
        return sorted(out, key=lambda r: r.at)


def current_mode(records: list[AuditRecord]) -> str:
    """The subject's governance mode by its last record (canary before any promotion)."""
    return records[-1].mode if records else "canary"


def canary_window_start(records: list[AuditRecord]) -> AuditRecord | None:
    """The record that opened the current canary window: the last register or rollback."""
    for record in reversed(records):
        if record.action in ("register", "rollback"):
            return record
        if record.action == "promote":
            return None
    return None
