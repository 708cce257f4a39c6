"""The lease store: Redis state for every key, changed only by the Lua scripts.

Layout under the configured prefix (default ``seamless:``), so an ACL user limited to
``~seamless:*`` can run the service. Keys are spread over ``partitions`` (fixed for the life
of a deployment) and each partition's keys carry one Redis Cluster hash tag, ``{p<n>}``, so
every key a script touches lies in one slot:

- ``{prefix}{p<n>}:lease:{key}``: hash with state (free|held|completed|failed), token,
  holder, client, until (ms), attempts, job_id, reason and timestamps;
- ``{prefix}{p<n>}:idx:held`` (zset, score = lease end), ``...:idx:expired`` (zset, expired
  and not yet re-claimed), ``...:idx:failed`` (zset, parked keys, score = when parked): one
  set of indexes per partition;
- ``{prefix}{p<n>}:job:{job_id}`` (hash: shards_total) and ``...:jobdone:{job_id}`` (set of
  completed shard keys), for the completion ratio of aligned-shard jobs;
- ``{prefix}rl:{<identity>}``: rate-limit counter of the current one-second window, a slot
  of each worker identity's own.

A key's partition is a hash of its first ``:``-separated part, the node id of QMTL's
``{node_id}:{interval}:{start}:{end}:{world_id}:{as_of}``, so all shards of a backfill job
(one node) share a partition with the job's own keys. A job whose keys named several nodes
would keep one progress record per partition and report a lower ratio, never a higher one.
The prefix holds no braces (settings check it), so the partition tag is always the key's
first ``{...}``, whatever braces a lease key itself contains.

Every script declares in ``KEYS`` the keys its caller can name (the lease hash, the
partition's indexes, a claiming job's keys). Two kinds it can only find inside: the job of
the lease being completed (stored in its hash), and the due leases a sweep reads from the
held index. Those names are built inside the script from the same partition prefix, so
they carry the declared keys' hash tag and lie in their slot by construction: Redis
Cluster runs them on the node that owns the slot (the cluster tests prove it).

Every namespace is a fixed word, then ':', then the caller's string last, and no word is a
prefix of another, so no key, job id or identity can name another's Redis key (a job
called ``X:done`` once created the key job ``X`` kept its shard set in). Each script checks
the type of every key it may write before its first write (see _common.lua), so a script
either applies whole or changes nothing.

Rate limiting (when on) is its own one-key script, run before the lease script: a limited
request writes nothing but its counter, and the counter's slot is the identity's own.

Replicas: with ``min_replicas`` > 0 every state change is followed by ``WAIT`` on the same
connection, and a change not acknowledged by that many replicas in time answers 503 (the
caller retries; the scripts answer retries idempotently). A lease granted is then on a
replica before the holder hears of it, so a failover that promotes that replica cannot
hand the key out again.

Idempotent retries
------------------
A request whose reply was lost may be sent again, and the retry answers as the first
request did instead of refusing what was in fact applied: a claim carrying the request id
of the key's live lease, from the same client and holder, gets that lease back (same token,
attempts and lease end); a complete or fail repeating the token that completed or failed
the key, from the client that held it, answers 200 again. Replays change nothing, so the
handlers skip the counters, logs and ledger rows of the first answer (``replayed``). Any
other repeat is refused as before: another request id gets 409 held, an older token 409
stale.

Ownership
---------
A lease belongs to the client (the bearer token's identity) that claimed it, stored as the
hash's ``client``. Renew, complete and fail with the lease's token from any other client
are refused as `Forbidden` (HTTP 403) and change nothing, whether the lease is live, ran
out, or was just completed or failed with that token (the replay path). A wrong token gets
`Stale` (409) whoever sends it, exactly as before: a client guessing tokens for another's
key learns nothing more than "not the current token".

Fencing tokens survive Redis data loss
--------------------------------------
A claim's token is ``max(stored + 1, now_us)`` where ``now_us`` is the Redis server's clock
in microseconds (``TIME``), read inside the claim script. The ``stored + 1`` part makes
tokens strictly increase per key while the data lives. The clock part keeps that true when
it does not: a Redis restarted empty (no persistence), or flushed, has forgotten
``stored``, so the next claim's token falls back to ``now_us``. No token ever runs ahead of
the clock: ``stored + 1`` exceeds ``now_us`` only if one key were claimed more than once per
microsecond, and a claim is a whole script run (several microseconds, serialised by
Redis). So every token issued before the loss is at most the clock at its claim, and any
later claim gets a greater one. An old holder's ``complete``/``renew``/``fail`` is refused
after the loss anyway (no live lease carries its token), and storage fenced by the token
refuses the old holder's writes because the new holder's token is greater.

The assumption: the Redis host's clock does not step back past the last claim issued
before the loss. Tokens stay below 2^53 (exact in Lua's doubles) until the year 2255; a
token also reads as the microsecond it was issued, which helps when reading logs.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Literal, cast

from redis.asyncio import Redis, RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError

from seamless.coordination.protocol import LeaseInfo, LeaseState
from seamless.coordinator.pipelined import PipelinedConnection
from seamless.coordinator.scripts import LeaseScripts


@dataclass(frozen=True)
class RateLimited:
    retry_after_ms: int


@dataclass(frozen=True)
class ExpiredLease:
    """A lease whose holder lost it by letting it run out."""

    key: str
    holder: str
    token: int
    lease_until_ms: int | None = None


@dataclass(frozen=True)
class JobProgress:
    job_id: str | None
    done: int | None
    total: int | None

    def ratio(self, default: float) -> float:
        if self.job_id and self.done is not None and self.total:
            return min(1.0, self.done / self.total)
        return default


@dataclass(frozen=True)
class Granted:
    key: str
    token: int
    lease_until_ms: int
    holder: str
    attempts: int
    job: JobProgress
    # The previous lease on the key ran out; `newly_expired` when this claim noticed it first.
    lost: ExpiredLease | None
    newly_expired: bool
    # The live lease handed back again to a retry of the claim that was granted it.
    replayed: bool = False


@dataclass(frozen=True)
class Refused:
    reason: Literal["held", "completed", "failed"]
    lease_until_ms: int | None = None
    detail: str | None = None
    # The key's real completion ratio (its job's, else 1.0 completed / 0.0 not yet).
    completion_ratio: float | None = None
    # Parked now because the last allowed attempt's lease ran out.
    parked_now: bool = False
    # On `completed`: the claiming job's progress, the completed shard counted in it.
    job: JobProgress | None = None
    lost: ExpiredLease | None = None
    newly_expired: bool = False
    attempts: int | None = None


@dataclass(frozen=True)
class Stale:
    """The token is not the key's live lease (never issued, superseded, or expired)."""

    state: str
    detail: str
    lost: ExpiredLease | None = None
    # The key's real completion ratio; None for a key never claimed.
    completion_ratio: float | None = None


@dataclass(frozen=True)
class Forbidden:
    """The right token, from a client other than the one that claimed the lease."""

    state: str
    # The key's real completion ratio (QMTL's client reads one on every refusal).
    completion_ratio: float | None = None


@dataclass(frozen=True)
class Renewed:
    token: int
    lease_until_ms: int
    holder: str


@dataclass(frozen=True)
class Finished:
    """A completed or failed lease."""

    token: int
    holder: str
    client: str
    attempts: int
    job: JobProgress
    parked: bool = False
    # A retry of the complete/fail that already finished this lease: nothing changed.
    replayed: bool = False


@dataclass(frozen=True)
class Recovered:
    previous_state: str


ClaimResult = Granted | Refused | RateLimited
RenewResult = Renewed | Stale | Forbidden | RateLimited
FinishResult = Finished | Stale | Forbidden | RateLimited
RecoverResult = Recovered | Refused | RateLimited


def _int(text: str | None) -> int | None:
    return int(text) if text else None


def _job(job_id: str, done: str, total: str) -> JobProgress:
    return JobProgress(job_id or None, _int(done), _int(total))


def key_ratio(state: str, job: JobProgress) -> float:
    """A key's real completion ratio: its job's when it has one, else 1.0 when completed and
    0.0 when not (yet)."""
    return job.ratio(1.0 if state == "completed" else 0.0)


def _stale(reply: list[str], key: str, token: int) -> Stale:
    # reply: 'stale', state, current_token, newly_expired, holder, job_id, done, total
    state, current, newly = reply[1], reply[2], reply[3] == "1"
    job = _job(reply[5], reply[6], reply[7])
    ratio = key_ratio(state, job) if current or job.job_id else None
    if state == "expired":
        lost = ExpiredLease(key, reply[4], token) if newly else None
        return Stale("expired", f"lease with token {token} expired", lost, ratio)
    if current and current != str(token):
        return Stale(state, f"token {token} is not the key's current token", None, ratio)
    return Stale(state, f"key has no live lease with token {token} (state {state})", None, ratio)


DEFAULT_PARTITIONS = 16


@dataclass(frozen=True)
class KeySpace:
    """The Redis key names of the lease state (see the module docstring)."""

    prefix: str
    partitions: int = DEFAULT_PARTITIONS

    def partition(self, key: str) -> int:
        node = key.split(":", 1)[0].encode("utf-8", "surrogatepass")
        return zlib.crc32(node) % self.partitions

    def of_partition(self, partition: int) -> str:
        """The prefix of every key in `partition`, its hash tag included."""
        return f"{self.prefix}{{p{partition}}}:"

    def of(self, key: str) -> str:
        return self.of_partition(self.partition(key))

    def lease(self, key: str) -> str:
        return f"{self.of(key)}lease:{key}"

    def indexes(self, partition: int) -> list[str]:
        """held, expired and failed index of `partition`, in the order the scripts take."""
        base = self.of_partition(partition)
        return [f"{base}idx:held", f"{base}idx:expired", f"{base}idx:failed"]

    def job(self, key: str, job_id: str) -> list[str]:
        """The progress hash and done set of `job_id`, in the partition of `key`."""
        base = self.of(key)
        return [f"{base}job:{job_id}", f"{base}jobdone:{job_id}"]

    def rate(self, identity: str) -> str:
        return f"{self.prefix}rl:{{{identity}}}"


class NotReplicated(RedisError):
    """A state change reached fewer replicas than `min_replicas` within the timeout."""


class LeaseStore:
    """Async access to the lease state; every mutation is one Lua script call."""

    def __init__(
        self,
        redis: Redis | RedisCluster,
        *,
        prefix: str,
        max_attempts: int,
        rate_limit: int = 0,
        completed_retention_ms: int = 0,
        partitions: int = DEFAULT_PARTITIONS,
        min_replicas: int = 0,
        replica_timeout_ms: int = 1000,
        pipelined: PipelinedConnection | None = None,
    ) -> None:
        self.redis = redis
        # The scripts' calls on one pipelined connection (see pipelined.py); None: through
        # the redis-py client, one command each. Not with `min_replicas`, whose WAIT would
        # hold up every call queued behind it.
        self.pipelined = pipelined if min_replicas <= 0 else None
        self.keys = KeySpace(prefix, partitions)
        self.max_attempts = max_attempts
        self.rate_limit = rate_limit
        self.completed_retention_ms = completed_retention_ms
        self.min_replicas = min_replicas
        self.replica_timeout_ms = replica_timeout_ms
        self.scripts = LeaseScripts.register(redis)

    async def load_scripts(self) -> None:
        """Load every script into Redis (into every primary of a cluster) ahead of the first
        request, so requests go out as EVALSHA from the start; a Redis that lost its script
        cache later gets the script again from the first call that finds it missing."""
        for script in self.scripts.all():
            script.sha = await self.redis.script_load(script.script)

    def _lease_keys(self, key: str) -> list[str]:
        """KEYS of a lease script: the lease hash and its partition's three indexes."""
        return [self.keys.lease(key), *self.keys.indexes(self.keys.partition(key))]

    async def _call(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        """Run a script once, on the pipelined connection when there is one."""
        if self.pipelined is None:
            return await script(keys=keys, args=args)
        try:
            return await self.pipelined.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            # The script cache is empty (a restart): load it and run again, as redis-py does.
            script.sha = await self.redis.script_load(script.script)
            return await self.pipelined.execute("EVALSHA", script.sha, len(keys), *keys, *args)

    async def _run(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        """Run a state-changing script; with `min_replicas`, wait for the replicas too."""
        if self.min_replicas <= 0:
            return await self._call(script, keys, args)
        # WAIT counts the writes of its own connection: one pipeline keeps both on one.
        for attempt in (1, 2):
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.evalsha(script.sha, len(keys), *keys, *args)
                    pipe.execute_command("WAIT", self.min_replicas, self.replica_timeout_ms)
                    reply, acked = await pipe.execute()
                break
            except NoScriptError:
                # The script cache is empty (a restart, a failover): load it and run again.
                if attempt == 2:
                    raise
                await self.redis.script_load(script.script)
        if int(acked) < self.min_replicas:
            raise NotReplicated(
                f"the change reached {acked} of {self.min_replicas} replicas "
                f"within {self.replica_timeout_ms} ms"
            )
        return reply

    async def _rate_limited(self, identity: str) -> RateLimited | None:
        """Count one request against `identity`'s limit (a no-op when limiting is off)."""
        if self.rate_limit <= 0:
            return None
        wait = int(
            await self._call(self.scripts.ratelimit, [self.keys.rate(identity)], [self.rate_limit])
        )
        return RateLimited(wait) if wait > 0 else None

    async def claim(
        self,
        key: str,
        lease_ms: int,
        *,
        holder: str,
        client: str,
        job_id: str | None = None,
        shards_total: int | None = None,
        identity: str = "",
        request_id: str | None = None,
    ) -> ClaimResult:
        limited = await self._rate_limited(identity or client)
        if limited:
            return limited
        keys = self._lease_keys(key)
        if job_id:
            keys += self.keys.job(key, job_id)
        reply: list[str] = await self._run(
            self.scripts.claim,
            keys,
            [
                self.keys.of(key),
                key,
                lease_ms,
                holder,
                client,
                job_id or "",
                "" if shards_total is None else shards_total,
                self.max_attempts,
                request_id or "",
            ],
        )
        kind = reply[0]
        if kind == "granted":
            lost = ExpiredLease(key, reply[9], int(reply[10])) if reply[7] == "1" else None
            return Granted(
                key=key,
                token=int(reply[1]),
                lease_until_ms=int(reply[2]),
                holder=holder,
                attempts=int(reply[3]),
                job=_job(reply[4], reply[5], reply[6]),
                lost=lost,
                newly_expired=reply[8] == "1",
                replayed=reply[11] == "1",
            )
        if kind == "held":
            job = _job(reply[3], reply[4], reply[5])
            return Refused(
                "held", lease_until_ms=int(reply[1]), completion_ratio=key_ratio(kind, job)
            )
        if kind == "completed":
            job = _job(reply[1], reply[2], reply[3])
            return Refused("completed", job=job, completion_ratio=key_ratio(kind, job))
        if kind == "failed":
            job = _job(reply[2], reply[3], reply[4])
            return Refused("failed", detail=reply[1] or None, completion_ratio=key_ratio(kind, job))
        if kind == "parked":
            job = _job(reply[6], reply[7], reply[8])
            return Refused(
                "failed",
                detail=reply[1],
                completion_ratio=key_ratio("failed", job),
                parked_now=True,
                lost=ExpiredLease(key, reply[3], int(reply[4])),
                newly_expired=reply[2] == "1",
                attempts=int(reply[5]),
            )
        raise AssertionError(f"claim.lua returned {reply!r}")

    async def renew(
        self, key: str, token: int, lease_ms: int, *, client: str, identity: str
    ) -> RenewResult:
        limited = await self._rate_limited(identity)
        if limited:
            return limited
        reply: list[str] = await self._run(
            self.scripts.renew,
            self._lease_keys(key),
            [self.keys.of(key), key, str(token), lease_ms, client],
        )
        if reply[0] == "renewed":
            return Renewed(int(reply[1]), int(reply[2]), reply[3])
        return self._not_done(reply, key, token)

    async def complete(self, key: str, token: int, *, client: str, identity: str) -> FinishResult:
        limited = await self._rate_limited(identity)
        if limited:
            return limited
        reply: list[str] = await self._run(
            self.scripts.complete,
            self._lease_keys(key),
            [self.keys.of(key), key, str(token), self.completed_retention_ms, client],
        )
        if reply[0] == "completed":
            return Finished(
                token=token,
                holder=reply[2],
                client=reply[3],
                attempts=int(reply[4]),
                job=_job(reply[5], reply[6], reply[7]),
                replayed=reply[8] == "1",
            )
        return self._not_done(reply, key, token)

    async def fail(
        self, key: str, token: int, reason: str, *, client: str, identity: str
    ) -> FinishResult:
        limited = await self._rate_limited(identity)
        if limited:
            return limited
        reply: list[str] = await self._run(
            self.scripts.fail,
            self._lease_keys(key),
            [self.keys.of(key), key, str(token), reason, self.max_attempts, client],
        )
        if reply[0] == "failed":
            return Finished(
                token=token,
                holder=reply[2],
                client=reply[3],
                attempts=int(reply[4]),
                job=_job(reply[5], reply[6], reply[7]),
                parked=reply[8] == "1",
                replayed=reply[9] == "1",
            )
        return self._not_done(reply, key, token)

    @staticmethod
    def _not_done(reply: list[str], key: str, token: int) -> Stale | Forbidden:
        if reply[0] == "stale":
            return _stale(reply, key, token)
        if reply[0] == "forbidden":
            # reply: 'forbidden', state, job_id, done, total
            state = reply[1]
            return Forbidden(state, key_ratio(state, _job(reply[2], reply[3], reply[4])))
        raise AssertionError(f"lease script returned {reply!r}")

    async def recover(self, key: str, *, force: bool, identity: str) -> RecoverResult:
        limited = await self._rate_limited(identity)
        if limited:
            return limited
        reply: list[str] = await self._run(
            self.scripts.recover,
            self._lease_keys(key),
            [self.keys.of(key), key, "1" if force else "0"],
        )
        kind = reply[0]
        if kind == "recovered":
            return Recovered(reply[1])
        if kind in ("held", "completed"):
            job = _job(reply[3], reply[4], reply[5])
            return Refused(
                "held" if kind == "held" else "completed",
                lease_until_ms=int(reply[1]) if reply[1] else None,
                detail="lease is live" if kind == "held" else "key is completed",
                completion_ratio=key_ratio(kind, job),
            )
        raise AssertionError(f"recover.lua returned {reply!r}")

    async def sweep(self, limit: int = 500) -> list[ExpiredLease]:
        """Report leases that ran out since the last sweep (each exactly once), at most
        `limit` per partition."""
        expired: list[ExpiredLease] = []
        for partition in range(self.keys.partitions):
            flat: list[str] = await self._run(
                self.scripts.sweep,
                self.keys.indexes(partition)[:2],
                [self.keys.of_partition(partition), limit],
            )
            expired += [
                ExpiredLease(flat[i], flat[i + 1], int(flat[i + 2] or 0), int(flat[i + 3]))
                for i in range(0, len(flat), 4)
            ]
        return expired

    async def check_rate(self, identity: str) -> RateLimited | None:
        """Count a read request against the worker's limit."""
        return await self._rate_limited(identity)

    # --- reads (no state change, so plain commands) ----------------------------------------

    async def _now_ms(self) -> int:
        seconds, micros = await self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def inspect(self, key: str) -> LeaseInfo:
        now = await self._now_ms()
        fields = cast(dict[str, str], await self.redis.hgetall(self.keys.lease(key)))
        return _lease_info(key, fields, now)

    async def list_keys(self, state: Literal["failed", "expired"], limit: int) -> list[LeaseInfo]:
        """Parked keys (newest first) or expired, not re-claimed keys (oldest first)."""
        now = await self._now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition in range(self.keys.partitions):
                held, expired, failed = self.keys.indexes(partition)
                if state == "failed":
                    pipe.zrevrange(failed, 0, limit - 1, withscores=True)
                else:
                    pipe.zrangebyscore(held, "-inf", now, start=0, num=limit, withscores=True)
                    pipe.zrange(expired, 0, limit - 1, withscores=True)
            found: list[list[tuple[str, float]]] = await pipe.execute()
        scored = [pair for pairs in found for pair in pairs]
        # The partitions' lists merged: newest parked first, or oldest expiry first.
        scored.sort(key=lambda item: item[1], reverse=state == "failed")
        keys = list(dict.fromkeys(key for key, _ in scored))[:limit]
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hgetall(self.keys.lease(key))
            rows: list[dict[str, str]] = await pipe.execute()
        infos = [_lease_info(key, row, now) for key, row in zip(keys, rows, strict=True) if row]
        if state == "expired":
            # A key re-claimed between the index read and the hash read is no longer expired.
            return [info for info in infos if info.state == "free" and info.token is not None]
        return infos

    async def ping(self) -> bool:
        return bool(await self.redis.ping())


def _lease_info(key: str, fields: dict[str, str], now_ms: int) -> LeaseInfo:
    raw_state = fields.get("state", "free")
    until = _int(fields.get("until"))
    state: LeaseState
    if raw_state == "held":
        # A lease that ran out is claimable: report it as free, with its last holder.
        state = "held" if until is not None and until > now_ms else "free"
    elif raw_state in ("completed", "failed"):
        state = "completed" if raw_state == "completed" else "failed"
    else:
        state = "free"
    return LeaseInfo(
        key=key,
        state=state,
        holder=fields.get("holder") or None,
        client=fields.get("client") or None,
        token=_int(fields.get("token")),
        lease_until_ms=until,
        attempts=int(fields.get("attempts", "0")),
        job_id=fields.get("job_id") or None,
        last_reason=fields.get("reason") or None,
    )
