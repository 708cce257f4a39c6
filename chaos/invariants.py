"""The invariants every chaos scenario must leave intact, as plain checks on what happened.

- every requested range is fully stored, or reported by an explicit error (an exception, or
  a result whose metadata names the missing bars and is downgraded);
- stored rows are unique per (node_id, ts);
- no stale token was accepted (checked on what the clients saw, `LeaseAudit`, and on the
  coordinator's final state);
- finished jobs report a completion ratio of 1.0;
- the metric counters match the events that happened.

`AuditedCoordinator` wraps a real coordinator client and records every call and its answer
(it forwards everything; it only watches), so the token checks need no cooperation from the
code under test.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from seamless.coordination.interface import ClaimOutcome, Coordinator, Granted
from seamless.coordination.protocol import Lease, LeaseInfo, RatioResponse
from seamless.data import coverage as cov
from seamless.data.coverage import Range
from seamless.data.provider import FetchResult
from seamless.errors import LeaseLost

from chaos.report import InvariantResult

Op = Literal["claim", "renew", "complete", "fail"]
Answer = Literal["granted", "held", "completed", "failed", "accepted", "stale", "unavailable"]


# --- what the clients saw -------------------------------------------------------------------


@dataclass(frozen=True)
class LeaseEvent:
    worker: str
    op: Op
    key: str
    token: int | None  # the token sent (renew/complete/fail) or granted (claim)
    answer: Answer
    sent_at: float
    answered_at: float
    ratio: float | None = None
    job_id: str | None = None
    shards_total: int | None = None


@dataclass
class LeaseAudit:
    events: list[LeaseEvent] = field(default_factory=list)

    def of(self, op: Op | None = None, answer: Answer | None = None) -> list[LeaseEvent]:
        return [
            e
            for e in self.events
            if (op is None or e.op == op) and (answer is None or e.answer == answer)
        ]

    def count(self, op: Op | None = None, answer: Answer | None = None) -> int:
        return len(self.of(op, answer))

    def keys(self) -> set[str]:
        return {e.key for e in self.events}

    def job_of(self, key: str, token: int) -> tuple[str | None, int | None]:
        """The job (and its shard count) whose claim was granted `token` on `key`."""
        for e in self.events:
            if e.op == "claim" and e.answer == "granted" and e.key == key and e.token == token:
                return e.job_id, e.shards_total
        return None, None

    def finished_jobs(self) -> dict[str, float | None]:
        """Jobs whose every shard is done -> the highest completion ratio the coordinator
        reported for them. A shard is done for a job when the job completed it, or when its
        claim was refused because another job had completed it (overlapping fetches share
        shard keys; the coordinator counts such a shard for the claiming job too)."""
        done: dict[str, set[str]] = defaultdict(set)
        total: dict[str, int] = {}
        last_ratio: dict[str, float | None] = {}
        for e in self.events:
            if e.job_id is None:
                continue
            if e.shards_total:
                total[e.job_id] = e.shards_total
            completed_here = e.op == "complete" and e.answer == "accepted"
            completed_elsewhere = e.op == "claim" and e.answer == "completed"
            if completed_here or completed_elsewhere:
                done[e.job_id].add(e.key)
                # completes of one job may answer out of order: the highest ratio is the last
                previous = last_ratio.get(e.job_id)
                higher = e.ratio is not None and (previous is None or e.ratio > previous)
                if higher or e.job_id not in last_ratio:
                    last_ratio[e.job_id] = e.ratio
        return {
            job: last_ratio.get(job)
            for job, keys in done.items()
            if job in total and len(keys) >= total[job]
        }

    def granted_tokens(self, key: str) -> list[int]:
        return [
            e.token
            for e in self.events
            if e.key == key and e.op == "claim" and e.answer == "granted" and e.token
        ]


class AuditedCoordinator:
    """A `Coordinator` that forwards every call to `inner` and records it in `audit`."""

    def __init__(self, inner: Coordinator, audit: LeaseAudit, worker: str) -> None:
        self.inner = inner
        self.audit = audit
        self.worker = worker

    def _record(
        self,
        op: Op,
        key: str,
        token: int | None,
        answer: Answer,
        sent: float,
        ratio: float | None = None,
        job_id: str | None = None,
        shards_total: int | None = None,
    ) -> None:
        if job_id is None and token is not None:
            job_id, shards_total = self.audit.job_of(key, token)
        self.audit.events.append(
            LeaseEvent(
                self.worker,
                op,
                key,
                token,
                answer,
                sent,
                time.monotonic(),
                ratio,
                job_id,
                shards_total,
            )
        )

    async def claim(
        self,
        key: str,
        lease_ms: int,
        *,
        job_id: str | None = None,
        shards_total: int | None = None,
    ) -> ClaimOutcome:
        sent = time.monotonic()
        try:
            outcome = await self.inner.claim(
                key, lease_ms, job_id=job_id, shards_total=shards_total
            )
        except BaseException:  # unreachable, timed out or cancelled: the answer is unknown
            self._record("claim", key, None, "unavailable", sent, None, job_id, shards_total)
            raise
        if isinstance(outcome, Granted):
            self._record(
                "claim",
                key,
                outcome.lease.token,
                "granted",
                sent,
                outcome.completion_ratio,
                job_id,
                shards_total,
            )
        else:
            self._record(
                "claim",
                key,
                None,
                outcome.reason,
                sent,
                outcome.completion_ratio,
                job_id,
                shards_total,
            )
        return outcome

    async def renew(self, lease: Lease, lease_ms: int) -> Lease:
        sent = time.monotonic()
        try:
            renewed = await self.inner.renew(lease, lease_ms)
        except LeaseLost:
            self._record("renew", lease.key, lease.token, "stale", sent)
            raise
        except BaseException:  # unreachable, timed out or cancelled: the answer is unknown
            self._record("renew", lease.key, lease.token, "unavailable", sent)
            raise
        self._record("renew", lease.key, lease.token, "accepted", sent)
        return renewed

    async def _finish(self, op: Op, lease: Lease, reason: str = "") -> RatioResponse:
        sent = time.monotonic()
        try:
            if op == "complete":
                result = await self.inner.complete(lease)
            else:
                result = await self.inner.fail(lease, reason)
        except LeaseLost:
            self._record(op, lease.key, lease.token, "stale", sent)
            raise
        except BaseException:  # unreachable, timed out or cancelled: the answer is unknown
            self._record(op, lease.key, lease.token, "unavailable", sent)
            raise
        self._record(op, lease.key, lease.token, "accepted", sent, result.completion_ratio)
        return result

    async def complete(self, lease: Lease) -> RatioResponse:
        return await self._finish("complete", lease)

    async def fail(self, lease: Lease, reason: str) -> RatioResponse:
        return await self._finish("fail", lease, reason)

    async def inspect(self, key: str) -> LeaseInfo:
        return await self.inner.inspect(key)

    async def health(self) -> None:
        await self.inner.health()

    async def aclose(self) -> None:
        await self.inner.aclose()


# --- the checks -----------------------------------------------------------------------------


@dataclass
class RequestOutcome:
    """One fetch the scenario made: its window, and its result or the error it raised."""

    node_id: str
    interval: int
    start: int
    end: int
    result: FetchResult | None = None
    error: BaseException | None = None


def ranges_accounted(
    requests: Sequence[RequestOutcome], stored: Mapping[tuple[str, int], list[Range]]
) -> InvariantResult:
    """Each request is fully stored, or reported: it raised, or its result names the missing
    bars and carries a downgrade. A result that says "complete" over bars the store does not
    hold is a silent loss."""
    problems: list[str] = []
    for r in requests:
        held = stored.get((r.node_id, r.interval), [])
        gaps = cov.missing(held, r.start, r.end, r.interval)
        window = f"{r.node_id} [{r.start}, {r.end}]"
        if r.result is not None:
            meta = r.result.metadata
            if meta.missing and meta.downgrade is None:
                problems.append(f"{window}: missing {meta.missing} but not downgraded")
            if gaps and not meta.missing and "live" not in meta.sources:
                problems.append(f"{window}: result claims complete, store lacks {gaps[:3]}")
        elif r.error is None and gaps:
            problems.append(f"{window}: neither stored nor reported (missing {gaps[:3]})")
    reported = sum(1 for r in requests if r.error is not None)
    detail = (
        "; ".join(problems)
        if problems
        else f"{len(requests)} request(s): {len(requests) - reported} served, "
        f"{reported} reported by an explicit error"
    )
    return InvariantResult(
        "every requested range stored or explicitly reported", not problems, detail
    )


def rows_unique(rows: Iterable[tuple[Any, ...]]) -> InvariantResult:
    """`rows` as (node_id, interval, ts, lease_token): no key twice. (A bar may be stored
    under two tokens when a superseded holder wrote it too; reads serve the newest.)"""
    counts = Counter(rows)
    duplicated = {k: n for k, n in counts.items() if n > 1}
    detail = (
        f"{len(duplicated)} duplicated (node_id, ts, token), e.g. {next(iter(duplicated.items()))}"
        if duplicated
        else f"{sum(counts.values())} stored row(s), all unique per (node_id, ts, token)"
    )
    return InvariantResult("stored rows unique per (node_id, ts, token)", not duplicated, detail)


def no_stale_token_accepted(
    audit: LeaseAudit, final: Mapping[str, LeaseInfo] | None = None
) -> InvariantResult:
    """No renew/complete/fail was accepted for a token after the coordinator had granted a
    newer one for the key; tokens are never reused; a completed key's final token is the one
    its single accepted complete carried."""
    problems: list[str] = []
    by_key: dict[str, list[LeaseEvent]] = defaultdict(list)
    for event in audit.events:
        by_key[event.key].append(event)
    for key, events in by_key.items():
        grants = [e for e in events if e.op == "claim" and e.answer == "granted"]
        tokens = [e.token for e in grants]
        if len(set(tokens)) != len(tokens):
            problems.append(f"{key}: a token was granted twice {tokens}")
        for e in events:
            if e.op == "claim" or e.answer != "accepted" or e.token is None:
                continue
            newer = [
                g for g in grants if g.token and g.token > e.token and g.answered_at < e.sent_at
            ]
            if newer:
                problems.append(
                    f"{key}: {e.op} with token {e.token} accepted after token {newer[0].token} "
                    "was granted"
                )
            if e.token not in tokens:
                problems.append(f"{key}: {e.op} accepted for token {e.token} never granted")
        completes = [e for e in events if e.op == "complete" and e.answer == "accepted"]
        if len(completes) > 1:
            problems.append(f"{key}: completed {len(completes)} times")
        info = (final or {}).get(key)
        if (
            info is not None
            and completes
            and (info.state != "completed" or info.token != completes[0].token)
        ):
            problems.append(
                f"{key}: final state {info.state} token {info.token}, but the accepted "
                f"complete carried token {completes[0].token}"
            )
    stale = audit.count(answer="stale")
    detail = (
        "; ".join(problems[:5])
        if problems
        else f"{audit.count('claim', 'granted')} grant(s), "
        f"{audit.count('complete', 'accepted')} complete(s) accepted, {stale} stale refusal(s)"
    )
    return InvariantResult("no stale token accepted", not problems, detail)


def jobs_complete(ratios: Mapping[str, float | None]) -> InvariantResult:
    """Every finished job (by id or name) reports completion ratio 1.0."""
    wrong = {job: r for job, r in ratios.items() if r is None or abs(r - 1.0) > 1e-9}
    detail = (
        f"not 1.0: {wrong}" if wrong else f"{len(ratios)} finished job(s) at completion ratio 1.0"
    )
    return InvariantResult("finished jobs report completion ratio 1.0", not wrong, detail)


def counters_match(
    pairs: Sequence[tuple[str, float, float | tuple[float, float]]],
) -> InvariantResult:
    """(metric name, its value, the count of events it should equal). The count may be a
    (low, high) range where replies can be lost: a claim the coordinator granted but whose
    answer never reached the client is counted by the coordinator only."""
    wrong: list[str] = []
    for name, value, expected in pairs:
        low, high = expected if isinstance(expected, tuple) else (expected, expected)
        if not low - 1e-9 <= value <= high + 1e-9:
            shown = f"{low:g}" if low == high else f"{low:g}..{high:g}"
            wrong.append(f"{name}={value:g} but {shown} event(s)")
    detail = "; ".join(wrong) if wrong else ", ".join(f"{n}={v:g}" for n, v, _ in pairs)
    return InvariantResult("metric counters match the events", not wrong, detail)
