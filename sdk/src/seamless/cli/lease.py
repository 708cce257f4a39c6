"""`seamless lease ...`: operator commands that talk to the coordinator over HTTP.

The URL comes from --url or SEAMLESS_COORDINATOR_URL / QMTL_SEAMLESS_COORDINATOR_URL, the
bearer token from SEAMLESS_COORDINATOR_TOKEN (or --token, which shells keep in history).
`recover --force` needs a client with the operator role; inspect and list show a live
lease's token only to the client holding it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NoReturn
from urllib.parse import quote

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from seamless.coordination.protocol import LeaseInfo, LeaseListResponse, RecoverResponse

app = typer.Typer(help="Inspect and recover backfill leases.", no_args_is_help=True)
_out = Console()
_err = Console(stderr=True)


@dataclass(frozen=True)
class _Target:
    url: str
    token: str | None
    timeout: float


UrlOption = Annotated[
    str,
    typer.Option(
        "--url",
        envvar=["SEAMLESS_COORDINATOR_URL", "QMTL_SEAMLESS_COORDINATOR_URL"],
        help="Coordinator base URL, e.g. http://coordinator:8080",
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="SEAMLESS_COORDINATOR_TOKEN",
        help="Bearer token (prefer the SEAMLESS_COORDINATOR_TOKEN variable).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the raw JSON answer.")]


def _die(message: str) -> NoReturn:
    _err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(1)


def _request(target: _Target, method: str, path: str, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
    try:
        with httpx.Client(base_url=target.url.rstrip("/"), timeout=target.timeout) as client:
            response = client.request(method, path, headers=headers, **kwargs)
    except httpx.HTTPError as exc:
        _die(f"cannot reach the coordinator at {target.url}: {type(exc).__name__}: {exc}")
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text[:500]}
    if response.status_code == 401:
        _die("the coordinator refused the credentials: set SEAMLESS_COORDINATOR_TOKEN")
    if response.status_code == 403:
        # The token is valid but its client may not do this (e.g. --force without the
        # operator role): say so, and which token would do.
        detail = body.get("detail") or "this client may not do that"
        hint = ""
        if "'operator' role" in detail:
            hint = (
                "; set SEAMLESS_COORDINATOR_TOKEN to the token of a client with the operator role"
            )
        _die(f"forbidden (HTTP 403): {detail}{hint}")
    if response.status_code == 409:
        detail = body.get("detail") or ""
        _die(f"refused: the key is {body.get('reason')}. {detail}".strip())
    if response.status_code >= 400:
        field = f" (field {body['field']})" if body.get("field") else ""
        _die(f"{response.status_code} {body.get('error', '')}{field}: {body.get('detail', '')}")
    return body


def _table(title: str, leases: list[LeaseInfo]) -> Table:
    table = Table(title=title)
    # The lease's client is in --json (a ninth column would cut the key on 80 columns).
    for column in ("key", "state", "holder", "token", "lease_until_ms", "attempts", "reason"):
        table.add_column(column)
    for info in leases:
        table.add_row(
            escape(info.key),
            info.state,
            escape(info.holder or ""),
            str(info.token or ""),  # a live lease's token shows only to its client
            str(info.lease_until_ms or ""),
            str(info.attempts),
            escape(info.last_reason or ""),
        )
    return table


@app.command()
def inspect(
    key: Annotated[str, typer.Argument(help="The lease key, e.g. node:60:0:3600::")],
    url: UrlOption,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a key's state, holder, token, lease end and attempts."""
    body = _request(_Target(url, token, 5.0), "GET", f"/v1/leases/{quote(key, safe=':')}")
    if as_json:
        _out.print_json(json.dumps(body))
        return
    _out.print(_table(f"lease {key}", [LeaseInfo.model_validate(body)]))


@app.command()
def recover(
    key: Annotated[str, typer.Argument(help="The lease key to make claimable again")],
    url: UrlOption,
    token: TokenOption = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also release a live lease or reopen a completed key (operator role).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Make a parked (failed) or expired key claimable again with a fresh attempt budget.
    --force needs a token whose client has the operator role."""
    body = _request(
        _Target(url, token, 5.0), "POST", "/v1/leases/recover", json={"key": key, "force": force}
    )
    if as_json:
        _out.print_json(json.dumps(body))
        return
    answer = RecoverResponse.model_validate(body)
    _out.print(f"recovered [bold]{key}[/] (was {answer.previous_state})")
    _out.print(_table(f"lease {key}", [answer.lease]))


@app.command("list")
def list_leases(
    url: UrlOption,
    token: TokenOption = None,
    state: Annotated[
        str, typer.Option("--state", help="failed (parked keys) or expired (not re-claimed)")
    ] = "failed",
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    as_json: JsonOption = False,
) -> None:
    """List parked (failed) or expired keys for an operator to recover."""
    if state not in ("failed", "expired"):
        _die(f"--state {state!r}: expected failed or expired")
    chosen: Literal["failed", "expired"] = "failed" if state == "failed" else "expired"
    body = _request(
        _Target(url, token, 10.0), "GET", "/v1/leases", params={"state": chosen, "limit": limit}
    )
    if as_json:
        _out.print_json(json.dumps(body))
        return
    answer = LeaseListResponse.model_validate(body)
    _out.print(_table(f"{chosen} keys ({len(answer.leases)})", answer.leases))
