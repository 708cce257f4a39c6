"""Schema registry clients: in-process (the default) and remote over the Confluent API.

Remote endpoints used (all JSON, content type ``application/vnd.schemaregistry.v1+json``):
``POST /subjects/{s}/versions`` → ``{"id"}``, ``GET /subjects/{s}/versions/latest`` and
``/versions/{n}`` → ``{"subject", "version", "id", "schema"}``, ``GET /schemas/ids/{id}``
→ ``{"schema"}``, ``GET /subjects/{s}/versions`` → ``[n, ...]``,
``DELETE /subjects/{s}/versions/{n}`` → ``n``. A 404 from ``latest`` is checked against
the version list (a registry whose ``latest`` lags a deleted version, as Apicurio 2.0.x's
does, still answers the newest remaining one). Every error names the URL (password
masked) and the HTTP status; an unreachable registry or a 5xx is
`SchemaRegistryUnavailable`, never read as "no schema".
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from seamless.config.model import mask_url_password
from seamless.data.schema_registry.schema import SCHEMA_TYPE, BarSchema, check_subject
from seamless.errors import SchemaRegistryError, SchemaRegistryUnavailable

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
MAX_RESPONSE_BYTES = 256 * 1024
DEFAULT_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class RegisteredSchema:
    subject: str
    version: int
    id: int
    schema: BarSchema


class SchemaRegistry(Protocol):
    url: str

    def register(self, subject: str, schema: BarSchema) -> RegisteredSchema: ...

    def latest(self, subject: str) -> RegisteredSchema | None: ...

    def version(self, subject: str, version: int) -> RegisteredSchema | None: ...

    def by_id(self, schema_id: int) -> BarSchema | None: ...

    def versions(self, subject: str) -> list[int]: ...

    def delete_version(self, subject: str, version: int) -> None: ...

    def close(self) -> None: ...


class InMemorySchemaRegistry:
    """In-process registry: ids global, versions per subject from 1, re-registering the same
    schema returns the existing version (as Confluent does). Thread-safe."""

    url = "memory://"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subjects: dict[str, dict[int, RegisteredSchema]] = {}
        self._ids: dict[str, int] = {}
        self._next_id = 1

    def register(self, subject: str, schema: BarSchema) -> RegisteredSchema:
        check_subject(subject)
        text = schema.to_json()
        with self._lock:
            versions = self._subjects.setdefault(subject, {})
            for existing in versions.values():
                if existing.schema.to_json() == text:
                    return existing
            schema_id = self._ids.get(text)
            if schema_id is None:
                schema_id = self._ids[text] = self._next_id
                self._next_id += 1
            number = max(versions, default=0) + 1
            registered = RegisteredSchema(subject, number, schema_id, schema)
            versions[number] = registered
            return registered

    def latest(self, subject: str) -> RegisteredSchema | None:
        with self._lock:
            versions = self._subjects.get(check_subject(subject), {})
            return versions[max(versions)] if versions else None

    def version(self, subject: str, version: int) -> RegisteredSchema | None:
        with self._lock:
            return self._subjects.get(check_subject(subject), {}).get(version)

    def by_id(self, schema_id: int) -> BarSchema | None:
        with self._lock:
            for versions in self._subjects.values():
                for registered in versions.values():
                    if registered.id == schema_id:
                        return registered.schema
        return None

    def versions(self, subject: str) -> list[int]:
        with self._lock:
            return sorted(self._subjects.get(check_subject(subject), {}))

    def delete_version(self, subject: str, version: int) -> None:
        with self._lock:
            versions = self._subjects.get(check_subject(subject), {})
            if versions.pop(version, None) is None:
                raise SchemaRegistryError(
                    f"{self.url}: subject {subject!r} has no version {version}", status=404
                )

    def close(self) -> None:
        return None


class RemoteSchemaRegistry:
    """A Confluent-compatible registry at `url` (e.g. http://registry:8081, or a path
    prefix such as Apicurio's http://registry:8080/apis/ccompat/v7)."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.shown_url = mask_url_password(self.url)
        self._client = httpx.Client(
            timeout=timeout_s,
            headers={"Accept": CONTENT_TYPE, "Content-Type": CONTENT_TYPE},
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def _request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        url = self.url + path
        shown = self.shown_url + path
        try:
            with self._client.stream(method, url, json=body) as response:
                raw = b""
                for chunk in response.iter_bytes():
                    raw += chunk
                    if len(raw) > MAX_RESPONSE_BYTES:
                        raise SchemaRegistryError(
                            f"{method} {shown}: answer larger than {MAX_RESPONSE_BYTES} bytes",
                            url=shown,
                            status=response.status_code,
                        )
                status = response.status_code
        except httpx.HTTPError as exc:
            raise SchemaRegistryUnavailable(
                f"schema registry {self.shown_url} unreachable: {method} {shown}: "
                f"{type(exc).__name__}: {str(exc)[:200]}",
                url=shown,
            ) from None
        try:
            data: Any = httpx.Response(status, content=raw).json() if raw else None
        except ValueError:
            data = None
        if status >= 500:
            raise SchemaRegistryUnavailable(
                f"schema registry {method} {shown} answered HTTP {status}: {_message(data)}",
                url=shown,
                status=status,
            )
        return status, data

    def _refused(self, method: str, path: str, status: int, data: Any) -> SchemaRegistryError:
        return SchemaRegistryError(
            f"schema registry refused {method} {self.shown_url}{path}: HTTP {status}: "
            f"{_message(data)}",
            url=self.shown_url + path,
            status=status,
        )

    def _subject_path(self, subject: str) -> str:
        return f"/subjects/{quote(check_subject(subject), safe='')}"

    def register(self, subject: str, schema: BarSchema) -> RegisteredSchema:
        path = self._subject_path(subject) + "/versions"
        status, data = self._request(
            "POST", path, {"schema": schema.to_json(), "schemaType": SCHEMA_TYPE}
        )
        if status != 200 or not isinstance(data, dict) or not isinstance(data.get("id"), int):
            raise self._refused("POST", path, status, data)
        schema_id = int(data["id"])
        # The POST answers only the id; find the version holding it (newest first).
        for number in reversed(self.versions(subject)):
            found = self.version(subject, number)
            if found is not None and found.id == schema_id:
                return found
        raise SchemaRegistryError(
            f"schema registry {self.shown_url}: id {schema_id} registered under {subject!r} "
            "but no version of the subject holds it",
            url=self.shown_url + path,
        )

    def latest(self, subject: str) -> RegisteredSchema | None:
        found = self._get_version(subject, "latest")
        if found is not None:
            return found
        # Apicurio Registry 2.0.x answers 404 for `latest` once the newest version was
        # deleted (a rollback) while older versions remain; the newest listed version is the
        # approved one there, as `latest` is on Confluent's server.
        remaining = self.versions(subject)
        return self._get_version(subject, str(remaining[-1])) if remaining else None

    def version(self, subject: str, version: int) -> RegisteredSchema | None:
        return self._get_version(subject, str(int(version)))

    def _get_version(self, subject: str, version: str) -> RegisteredSchema | None:
        path = f"{self._subject_path(subject)}/versions/{version}"
        status, data = self._request("GET", path)
        if status == 404:
            return None
        if status != 200 or not isinstance(data, dict):
            raise self._refused("GET", path, status, data)
        try:
            number, schema_id, text = int(data["version"]), int(data["id"]), str(data["schema"])
        except (KeyError, TypeError, ValueError):
            raise self._refused("GET", path, status, data) from None
        origin = f"{self.shown_url}{path}"
        return RegisteredSchema(
            subject, number, schema_id, BarSchema.from_json(text, origin=origin)
        )

    def by_id(self, schema_id: int) -> BarSchema | None:
        path = f"/schemas/ids/{int(schema_id)}"
        status, data = self._request("GET", path)
        if status == 404:
            return None
        if status != 200 or not isinstance(data, dict) or not isinstance(data.get("schema"), str):
            raise self._refused("GET", path, status, data)
        return BarSchema.from_json(data["schema"], origin=f"{self.shown_url}{path}")

    def versions(self, subject: str) -> list[int]:
        path = self._subject_path(subject) + "/versions"
        status, data = self._request("GET", path)
        if status == 404:
            return []
        if status != 200 or not isinstance(data, list):
            raise self._refused("GET", path, status, data)
        return sorted(int(v) for v in data if isinstance(v, int))

    def delete_version(self, subject: str, version: int) -> None:
        path = f"{self._subject_path(subject)}/versions/{int(version)}"
        status, data = self._request("DELETE", path)
        if status != 200:
            raise self._refused("DELETE", path, status, data)


def _message(data: Any) -> str:
    """Confluent's error body is {"error_code", "message"}; anything else shown short."""
    if isinstance(data, dict) and "message" in data:
        code = data.get("error_code")
        return f"{str(data['message'])[:200]}" + (f" (error_code {code})" if code else "")
    return "no error message" if data is None else str(data)[:200]


def registry_from_url(url: str | None, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> SchemaRegistry:
    """Remote when a URL is configured, else a fresh in-process registry."""
    if url:
        return RemoteSchemaRegistry(url, timeout_s=timeout_s)
    return InMemorySchemaRegistry()
