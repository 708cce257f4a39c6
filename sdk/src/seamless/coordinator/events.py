"""What the service reports about lease changes: Prometheus metrics, structured logs and
audit ledger rows. The HTTP handlers (app.py) only translate between the wire and the
store, and tell this module what happened; nothing here changes a lease.

Replays (a retried request answered as the first was, see store.py) are counted apart and
write no ledger row, so each grant, completion and failure is reported once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from seamless.coordinator.ledger import LedgerRow, LedgerWriter
from seamless.coordinator.metrics import CoordinatorMetrics, key_labels
from seamless.coordinator.store import ExpiredLease, Finished, Granted, Refused, Stale


class LeaseEvents:
    def __init__(self, metrics: CoordinatorMetrics, log: Any, coordinator_id: str) -> None:
        self.metrics = metrics
        self.log = log
        self.coordinator_id = coordinator_id
        self.ledger: LedgerWriter | None = None

    def expired(self, lost: ExpiredLease) -> None:
        node_id, interval = key_labels(lost.key)
        self.metrics.expiries.labels(node_id, interval).inc()
        self.log.info(
            "lease.expired",
            lease_key=lost.key,
            holder=lost.holder,
            token=lost.token,
            lease_until_ms=lost.lease_until_ms,
        )

    def rate_limited(self) -> None:
        self.metrics.rate_limited.inc()

    def claim_granted(self, key: str, result: Granted, request_id: str | None) -> None:
        if result.replayed:
            self.metrics.replays.labels("claim").inc()
            self.log.info(
                "lease.claim_replayed", lease_key=key, token=result.token, request_id=request_id
            )
            return
        if result.lost is not None and result.newly_expired:
            self.expired(result.lost)
        self.metrics.claims.labels("granted").inc()
        if result.job.job_id:
            self.metrics.set_completion_ratio(key, result.job.ratio(0.0))
        self.log.debug(
            "lease.claimed",
            lease_key=key,
            token=result.token,
            holder=result.holder,
            attempts=result.attempts,
        )

    def claim_refused(self, key: str, result: Refused) -> None:
        self.metrics.claims.labels(result.reason).inc()
        if result.parked_now:
            if result.lost is not None and result.newly_expired:
                self.expired(result.lost)
            self.metrics.parked.labels(*key_labels(key)).inc()
            self.log.warning("lease.parked", lease_key=key, reason=result.detail)
            self._ledger(
                "parked", key, None, 0.0, result.detail, result.lost, result.attempts
            )  # fmt: skip
        if result.job is not None and result.job.job_id:
            self.metrics.set_completion_ratio(key, result.job.ratio(0.0))

    def stale(self, operation: str, key: str, result: Stale) -> None:
        self.metrics.stale.labels(operation).inc()
        if result.lost is not None:
            self.expired(result.lost)
        self.log.info("lease.stale", operation=operation, lease_key=key, detail=result.detail)

    def not_owner(self, operation: str, key: str, client: str) -> None:
        # The right token from the wrong client: a misrouted token or a confused deployment,
        # worth a warning (the owner is not named; inspect shows it).
        self.log.warning("lease.not_owner", operation=operation, lease_key=key, client=client)

    def completed(self, key: str, done: Finished, ratio: float) -> None:
        self.metrics.set_completion_ratio(key, ratio)
        if done.replayed:
            self.metrics.replays.labels("complete").inc()
            self.log.info("lease.complete_replayed", lease_key=key, token=done.token)
            return
        self.metrics.completed.labels(*key_labels(key)).inc()
        self._ledger("completed", key, done, ratio)
        self.log.debug("lease.completed", lease_key=key, token=done.token, holder=done.holder)

    def failed(self, key: str, done: Finished, ratio: float, reason: str) -> None:
        self.metrics.set_completion_ratio(key, ratio)
        if done.replayed:
            self.metrics.replays.labels("fail").inc()
            self.log.info("lease.fail_replayed", lease_key=key, token=done.token)
            return
        labels = key_labels(key)
        self.metrics.failed.labels(*labels).inc()
        if done.parked:
            self.metrics.parked.labels(*labels).inc()
            self.log.warning("lease.parked", lease_key=key, attempts=done.attempts, reason=reason)
        else:
            self.log.info("lease.failed", lease_key=key, attempts=done.attempts, reason=reason)
        self._ledger("parked" if done.parked else "failed", key, done, ratio, reason)

    def recovered(self, key: str, previous_state: str, *, force: bool, operator: str) -> None:
        self.log.info(
            "lease.recovered",
            lease_key=key,
            previous_state=previous_state,
            force=force,
            operator=operator,
        )

    def _ledger(
        self,
        event: str,
        key: str,
        finished: Finished | None,
        ratio: float,
        reason: str | None = None,
        lost: ExpiredLease | None = None,
        attempts: int | None = None,
    ) -> None:
        if self.ledger is None:
            return
        node_id, interval = key_labels(key)
        self.ledger.record(
            LedgerRow(
                ts=datetime.now(UTC),
                event=event,
                lease_key=key,
                node_id=node_id,
                bar_interval=interval,
                token=finished.token if finished else (lost.token if lost else 0),
                holder=finished.holder if finished else (lost.holder if lost else ""),
                client=finished.client if finished else "",
                coordinator_id=self.coordinator_id,
                attempts=finished.attempts if finished else (attempts or 0),
                job_id=finished.job.job_id if finished else None,
                completion_ratio=ratio,
                reason=reason,
            )
        )
