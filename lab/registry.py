"""A Confluent-compatible schema registry as a local process, for the integration and chaos
tests and the lab.

Why our own: no third-party registry runs on this project's machines. Apicurio Registry is
a Quarkus application whose Maven artifacts are libraries, not a runnable server, and the
modules its app needs (e.g. apicurio-registry-schema-util-provider 3.3.3) are not served by
the Maven mirror here; Karapace (Aiven) is not on PyPI and keeps its schemas in Kafka;
Confluent's registry is neither on Maven Central nor free of Kafka. So this module serves
the subset of the Confluent REST API the SDK speaks — the same paths, status codes, error
bodies (``{"error_code", "message"}``) and content type — from memory, in a separate
process (uvicorn) on a free loopback port, ready when ``GET /subjects`` answers 200. Its
tests hold the SDK to the wire contract; they do not prove a vendor's server.

Endpoints: ``POST /subjects/{s}/versions``, ``GET /subjects``, ``GET /subjects/{s}/versions``,
``GET /subjects/{s}/versions/{n|latest}``, ``DELETE /subjects/{s}/versions/{n}``,
``GET /schemas/ids/{id}``. Bodies are bounded while read; subjects are checked.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lab.servers import LOOPBACK, LocalServer, free_port, http_ok

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
MAX_BODY_BYTES = 64 * 1024
_SUBJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error_code": code, "message": message}, status_code=status, media_type=CONTENT_TYPE
    )


def _ok(body: Any) -> JSONResponse:
    return JSONResponse(body, media_type=CONTENT_TYPE)


class _Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.subjects: dict[str, dict[int, int]] = {}  # subject -> version -> id
        self.schemas: dict[int, str] = {}
        self.ids: dict[str, int] = {}


def create_app() -> Starlette:
    store = _Store()

    def subject_of(request: Request) -> str | None:
        subject = str(request.path_params["subject"])
        return subject if _SUBJECT_RE.match(subject) else None

    async def register(request: Request) -> Response:
        subject = subject_of(request)
        if subject is None:
            return _error(422, 42201, "invalid subject")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY_BYTES:
                return _error(413, 41301, f"body larger than {MAX_BODY_BYTES} bytes")
        try:
            body = json.loads(raw)
            schema = body["schema"]
            if not isinstance(schema, str):
                raise TypeError
            json.loads(schema)
        except (ValueError, KeyError, TypeError):
            return _error(422, 42201, "Invalid schema")
        if body.get("schemaType", "AVRO") not in ("JSON", "AVRO"):
            return _error(422, 42201, "Invalid schemaType")
        with store.lock:
            schema_id = store.ids.get(schema)
            if schema_id is None:
                schema_id = len(store.schemas) + 1
                store.ids[schema] = schema_id
                store.schemas[schema_id] = schema
            versions = store.subjects.setdefault(subject, {})
            if schema_id not in versions.values():
                versions[max(versions, default=0) + 1] = schema_id
        return _ok({"id": schema_id})

    async def subjects(request: Request) -> Response:
        with store.lock:
            return _ok(sorted(s for s, v in store.subjects.items() if v))

    async def versions(request: Request) -> Response:
        subject = subject_of(request)
        with store.lock:
            found = store.subjects.get(subject or "")
            if not found:
                return _error(404, 40401, f"Subject '{subject}' not found.")
            return _ok(sorted(found))

    def lookup(subject: str | None, version: str) -> tuple[int, int] | JSONResponse:
        found = store.subjects.get(subject or "")
        if not found:
            return _error(404, 40401, f"Subject '{subject}' not found.")
        if version == "latest":
            number = max(found)
        elif version.isdigit() and int(version) in found:
            number = int(version)
        elif version.isdigit():
            return _error(404, 40402, f"Version {version} not found.")
        else:
            return _error(422, 42202, "The specified version is not a valid version id.")
        return number, found[number]

    async def get_version(request: Request) -> Response:
        subject = subject_of(request)
        with store.lock:
            got = lookup(subject, str(request.path_params["version"]))
            if isinstance(got, JSONResponse):
                return got
            number, schema_id = got
            text = store.schemas[schema_id]
        return _ok(
            {
                "subject": subject,
                "version": number,
                "id": schema_id,
                "schemaType": "JSON",
                "schema": text,
            }
        )

    async def delete_version(request: Request) -> Response:
        subject = subject_of(request)
        with store.lock:
            got = lookup(subject, str(request.path_params["version"]))
            if isinstance(got, JSONResponse):
                return got
            number, _ = got
            del store.subjects[subject or ""][number]
        return _ok(number)

    async def by_id(request: Request) -> Response:
        raw = str(request.path_params["id"])
        with store.lock:
            text = store.schemas.get(int(raw)) if raw.isdigit() else None
        if text is None:
            return _error(404, 40403, "Schema not found")
        return _ok({"schema": text, "schemaType": "JSON"})

    return Starlette(
        routes=[
            Route("/subjects", subjects, methods=["GET"]),
            Route("/subjects/{subject}/versions", register, methods=["POST"]),
            Route("/subjects/{subject}/versions", versions, methods=["GET"]),
            Route("/subjects/{subject}/versions/{version}", get_version, methods=["GET"]),
            Route("/subjects/{subject}/versions/{version}", delete_version, methods=["DELETE"]),
            Route("/schemas/ids/{id}", by_id, methods=["GET"]),
        ]
    )


class SchemaRegistryServer(LocalServer):
    """The registry above under uvicorn; its schemas live in memory (a restart empties it,
    like a registry that lost its storage)."""

    name = "schema-registry"
    startup_timeout = 30.0

    def pick_ports(self) -> None:
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "lab.registry:create_app",
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--no-access-log",
        ]

    def environment(self) -> dict[str, str]:
        from lab.servers import REPO_ROOT

        return {"PYTHONPATH": str(REPO_ROOT)}

    def ready(self) -> bool:
        return http_ok(f"{self.url}/subjects")
