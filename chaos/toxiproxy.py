"""One typed wrapper over the toxiproxy HTTP API, for the chaos suite and the lab.

Why not toxiproxy-python alone: its API host and port are class attributes shared by the
whole process (two servers cannot be driven side by side), it is untyped, and it cannot
update a toxic in place or report which port a proxy really listens on after `:0`. The
HTTP API is small, so this module speaks it with httpx:

    api = ToxiproxyAPI(toxiproxy_server.api_url)
    proxy = api.create_proxy("coordinator-a", upstream="127.0.0.1:8080")
    with proxy.toxic("latency", latency=1500, jitter=200):
        ...                      # every byte towards the client is delayed
    with proxy.down():
        ...                      # the proxy stops listening; clients get refused
    proxy.delete()

Toxic attributes are the server's names (latency/jitter in ms, bandwidth `rate` in KB/s,
`timeout` in ms, slicer `average_size`/`size_variation` in bytes and `delay` in µs,
limit_data `bytes`). `stream` is ``downstream`` (server → client, the default) or
``upstream`` (client → server).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import httpx

Stream = Literal["upstream", "downstream"]
ToxicType = Literal[
    "latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data"
]

_names = itertools.count(1)


class ToxiproxyError(RuntimeError):
    """The toxiproxy API refused a request; the message carries its answer."""


@dataclass(frozen=True)
class Toxic:
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any]


class Proxy:
    """One toxiproxy proxy: ``listen`` is where clients connect, ``upstream`` the real server."""

    def __init__(self, api: ToxiproxyAPI, name: str, listen: str, upstream: str) -> None:
        self.api = api
        self.name = name
        self.listen = listen
        self.upstream = upstream

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://{self.address}"

    # --- enable / disable -------------------------------------------------------------------

    def disable(self) -> None:
        """Stop listening and drop every open connection (clients see refused / reset)."""
        self._update(enabled=False)

    def enable(self) -> None:
        self._update(enabled=True)

    @contextmanager
    def down(self) -> Iterator[Proxy]:
        self.disable()
        try:
            yield self
        finally:
            self.enable()

    def set_upstream(self, upstream: str) -> None:
        """Point the proxy at another server (e.g. a restarted process on a new port)."""
        self._update(upstream=upstream)
        self.upstream = upstream

    def enabled(self) -> bool:
        return bool(self.api.request("GET", f"/proxies/{self.name}")["enabled"])

    def _update(self, **fields: Any) -> None:
        info = self.api.request("POST", f"/proxies/{self.name}", json=fields)
        self.listen = str(info["listen"])

    # --- toxics -----------------------------------------------------------------------------

    def add_toxic(
        self,
        type: ToxicType,
        *,
        stream: Stream = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
        **attributes: Any,
    ) -> str:
        """Add a toxic; returns its name (unique unless given)."""
        toxic_name = name or f"{type}_{stream}_{next(_names)}"
        self.api.request(
            "POST",
            f"/proxies/{self.name}/toxics",
            json={
                "name": toxic_name,
                "type": type,
                "stream": stream,
                "toxicity": toxicity,
                "attributes": attributes,
            },
        )
        return toxic_name

    def update_toxic(self, name: str, *, toxicity: float | None = None, **attributes: Any) -> None:
        body: dict[str, Any] = {"attributes": attributes}
        if toxicity is not None:
            body["toxicity"] = toxicity
        self.api.request("POST", f"/proxies/{self.name}/toxics/{name}", json=body)

    def remove_toxic(self, name: str) -> None:
        self.api.request("DELETE", f"/proxies/{self.name}/toxics/{name}")

    def remove_all_toxics(self) -> None:
        for toxic in self.toxics():
            self.remove_toxic(toxic.name)

    def toxics(self) -> list[Toxic]:
        rows = self.api.request("GET", f"/proxies/{self.name}/toxics")
        return [
            Toxic(
                name=str(row["name"]),
                type=str(row["type"]),
                stream=str(row["stream"]),
                toxicity=float(row["toxicity"]),
                attributes=dict(row.get("attributes") or {}),
            )
            for row in rows
        ]

    @contextmanager
    def toxic(
        self,
        type: ToxicType,
        *,
        stream: Stream = "downstream",
        toxicity: float = 1.0,
        **attributes: Any,
    ) -> Iterator[str]:
        """The toxic for the duration of the block; yields its name."""
        name = self.add_toxic(type, stream=stream, toxicity=toxicity, **attributes)
        try:
            yield name
        finally:
            self.remove_toxic(name)

    def delete(self) -> None:
        self.api.request("DELETE", f"/proxies/{self.name}", missing_ok=True)

    def __repr__(self) -> str:
        return f"Proxy({self.name!r}, listen={self.listen}, upstream={self.upstream})"


class ToxiproxyAPI:
    """A client of one toxiproxy server's HTTP API (``http://host:port``)."""

    def __init__(self, api_url: str, *, timeout: float = 5.0) -> None:
        self.api_url = api_url.rstrip("/")
        self._http = httpx.Client(base_url=self.api_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ToxiproxyAPI:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def request(self, method: str, path: str, *, json: Any = None, missing_ok: bool = False) -> Any:
        response = self._http.request(method, path, json=json)
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code >= 400:
            raise ToxiproxyError(
                f"toxiproxy {method} {path}: HTTP {response.status_code}: {response.text[:300]}"
            )
        if not response.content:
            return None
        return response.json()

    def version(self) -> str:
        return self._http.get("/version").text.strip()

    def create_proxy(self, name: str, upstream: str, *, listen: str = "127.0.0.1:0") -> Proxy:
        """A new enabled proxy on a free loopback port (``listen`` ``:0``) in front of
        ``upstream`` (``host:port``). An existing proxy of that name is replaced."""
        self.request("DELETE", f"/proxies/{name}", missing_ok=True)
        info = self.request(
            "POST",
            "/proxies",
            json={"name": name, "listen": listen, "upstream": upstream, "enabled": True},
        )
        return Proxy(self, name, str(info["listen"]), upstream)

    def proxies(self) -> dict[str, Proxy]:
        rows = self.request("GET", "/proxies") or {}
        return {
            name: Proxy(self, name, str(row["listen"]), str(row["upstream"]))
            for name, row in rows.items()
        }

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self.request("POST", "/reset")
