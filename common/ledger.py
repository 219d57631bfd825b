"""Run accounting in Redis: what was enqueued, what finished, counters for status and summary.

Every counter that a redelivered batch could bump twice is guarded by a set membership
(``SADD`` returns 1 only the first time), so numbers stay exact under at-least-once delivery.
The durable truth is the result store; the ledger is the fast, shared view of it.

Over 300 lines because every atomic script of a run's accounting (finish and its fence,
requeue, in-flight copies, claims) sits beside the method that runs it: what must change
together is read together.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from common import redis_keys
from common.redis_client import shared_client

# One script, so the "first time for this batch?" test and the counters it guards are a single
# atomic write: with a separate SADD and counter update, a Redis crash between the two left the
# batch marked finished but not counted, and every redelivery then skipped it (in flight forever).
# With a lease token (ARGV[4]) it is also the batch's fence: it records the batch only while the
# caller holds the batch's lease (or the lease lapsed and nobody took it), in the same step, so
# no copy can pass a fence check and then record after another copy did. With an outcome
# (ARGV[6]) it remembers which staged files are the batch's outcome until they are promoted.
_FINISH = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 0 end
if ARGV[4] ~= '' then
  local holder = redis.call('GET', KEYS[5])
  if holder and holder ~= ARGV[4] then return 0 end
  redis.call('SET', KEYS[5], ARGV[4], 'PX', ARGV[5])
end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[2], 'batches_finished', 1)
if ARGV[2] == '1' then
  redis.call('HINCRBY', KEYS[2], 'batches_dead', 1)
  redis.call('SADD', KEYS[3], ARGV[1])
end
redis.call('HSET', KEYS[2], 'last_finished_at', ARGV[3])
redis.call('HDEL', KEYS[4], ARGV[1])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[6], ARGV[1], ARGV[6]) end
for i = 7, #ARGV, 3 do
  if ARGV[i + 1] == 'f' then
    redis.call('HINCRBYFLOAT', KEYS[2], ARGV[i], ARGV[i + 2])
  else
    redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 2])
  end
end
return 1
"""

# A claimed batch counted as sent once, whoever sends it; a late one reopens a finalized run.
_SENT = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('SADD', KEYS[5], ARGV[5])
redis.call('HSETNX', KEYS[2], 'started_at', ARGV[4])
redis.call('HINCRBY', KEYS[2], 'batches_enqueued', 1)
redis.call('HINCRBY', KEYS[2], 'headlines_enqueued', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[3], ARGV[1], ARGV[3]) end
if redis.call('DEL', KEYS[4]) == 1 then redis.call('HINCRBY', KEYS[2], 'reopened', 1) end
return 1
"""

# A dead letter goes back as a new batch: count the new batch and take the old one off the dead
# counters in one step, and only the first time (a requeue re-run after a crash between the
# ledger and the store must not count the batch twice).
_REQUEUE = """
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], 'batches_enqueued', 1)
redis.call('DEL', KEYS[3])
redis.call('HINCRBY', KEYS[2], 'batches_dead', -1)
redis.call('HINCRBY', KEYS[2], 'headlines_dead', -tonumber(ARGV[2]))
redis.call('HINCRBY', KEYS[2], 'requeued', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[4], ARGV[3], ARGV[4]) end
return 1
"""

# The lost-batch sweep rewrites a record it has looked at; a batch that finished in between
# keeps no copy (HSET after the finish script's HDEL would resurrect it).
_MARK_INFLIGHT = """
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 0 end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


# Release a requeue claim only if it is still ours: a claim that outlived its TTL may belong to
# another requeue by now, and deleting that one would let a third send the letter again.
_RELEASE_CLAIM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# How long a requeue may hold a dead letter: far longer than one send (publishing retries for
# about a minute), short enough that a requeue killed mid-send does not block the letter forever.
REQUEUE_CLAIM_S = 600


def _inflight_record(copy: dict) -> str:
    return json.dumps({**copy, "sent_at": time.time()})


PRODUCER_TTL_S = 120.0  # a producer's heartbeat counts this long (it renews every batch/wait)

COUNTERS = (
    "headlines_enqueued", "batches_enqueued", "batches_finished", "headlines_done",
    "with_companies", "spans", "invalid", "repaired", "hallucinated", "headlines_dead", "batches_dead",
    "requeued", "rejected", "llm_calls", "cache_hits", "retries", "prompt_tokens",
    "completion_tokens", "llm_seconds", "resent_lost", "reopened",
)


class RunLedger:
    """Shared state of one run, safe to use from any number of producers and workers."""

    def __init__(self, client: redis.Redis, run_id: str) -> None:
        self.r = client
        self.run_id = run_id
        self.k = redis_keys.run(run_id)
        self._finish = client.register_script(_FINISH)
        self._requeue = client.register_script(_REQUEUE)
        self._sent = client.register_script(_SENT)

    @classmethod
    def from_url(cls, url: str, run_id: str, socket_timeout_s: float | None = None) -> RunLedger:
        return cls(shared_client(url, socket_timeout_s), run_id)

    # -- what the run is -------------------------------------------------------------------
    def set_task(self, task: str) -> None:
        """Which Celery task the run's batches go to (annotation or the compact model): the
        summary prices a run by the host that does its work."""
        self.r.hset(f"{self.k}:meta", "task", task)

    def task(self) -> str | None:
        return self.r.hget(f"{self.k}:meta", "task")

    def set_meta(self, **fields: str | int | float) -> None:
        """What a run is for, beyond its task: e.g. the cascade records the size of the pool
        an escalation run was picked from, so ``status`` can price it against the whole pool."""
        if fields:
            self.r.hset(f"{self.k}:meta", mapping={k: str(v) for k, v in fields.items()})

    def meta(self) -> dict[str, str]:
        return dict(self.r.hgetall(f"{self.k}:meta"))

    # -- enqueue side ---------------------------------------------------------------------
    def claim_batch(self, candidates: list[dict], make_id) -> tuple[str, list[dict]] | None:
        """Atomically claim the not-yet-enqueued headlines of ``candidates`` as one batch.

        The claim and a copy of the batch (``pending``) are written in one transaction, so a
        producer killed between claiming and sending leaves a batch that the next producer
        re-sends (``pending_batches``) instead of headlines that are claimed but never sent.
        Returns (batch id, headlines) or None when every candidate was already enqueued.
        """
        key = f"{self.k}:enqueued"
        while True:
            with self.r.pipeline() as pipe:
                try:
                    pipe.watch(key)
                    seen = pipe.smismember(key, [c["id"] for c in candidates])
                    new = [c for c, s in zip(candidates, seen, strict=True) if not s]
                    if not new:
                        pipe.unwatch()
                        return self._pending_of(self.pending_batches(), candidates)
                    bid = make_id([c["id"] for c in new])
                    pipe.multi()
                    pipe.sadd(key, *[c["id"] for c in new])
                    pipe.hset(f"{self.k}:pending", bid, json.dumps(new))
                    pipe.execute()
                    return bid, new
                except redis.WatchError:
                    continue

    @staticmethod
    def _pending_of(pending: dict[str, list], candidates: list[dict]) -> tuple[str, list] | None:
        """A claimed, unsent batch of ``candidates`` only: a retried claim finds the claim that
        Redis applied before its reply was lost, and sends it now."""
        ids = {c["id"] for c in candidates}
        return next(((b, hs) for b, hs in pending.items() if hs and {h["id"] for h in hs} <= ids),
                    None)

    def sent(self, bid: str, n_headlines: int, copy: dict | None = None) -> bool:
        """The claimed batch is in the broker: drop its pending copy and count it, in one
        script, only if it was still pending; False when another producer sent it first.

        Why "only if pending": a second producer started while the first waited for room with
        a claimed batch re-sends that batch (``resend_pending``), and the first then sends it
        too; counting both left one batch in flight forever (and a producer limited to one
        batch in flight waiting for good). The extra message is harmless (the batch's lease
        and finished set let one copy run). ``copy`` (task, kwargs, headlines) is kept until
        the batch finishes, so a batch the broker loses can be sent again (``workers.lost``).
        A batch sent into a run that was already finalized (a producer paused past its
        heartbeat while another finished the run) reopens it: the run finalizes again once
        the late batches finish, and ``reopened`` counts it.
        """
        record = _inflight_record(copy) if copy is not None else ""
        return bool(self._sent(keys=[f"{self.k}:pending", f"{self.k}:stats",
                                     f"{self.k}:inflight", f"{self.k}:finalized", redis_keys.RUNS],
                               args=[bid, n_headlines, record, time.time(), self.run_id]))

    def inflight_copies(self) -> dict[str, dict]:
        """Sent, unfinished batches with the copy they were sent with (``sent_at`` added)."""
        return {k: json.loads(v) for k, v in self.r.hgetall(f"{self.k}:inflight").items()}

    def drop_inflight(self, bid: str) -> None:
        """Forget a copy whose batch finished (a ``sent`` that landed after the finish)."""
        self.r.hdel(f"{self.k}:inflight", bid)

    def mark_inflight(self, bid: str, record: dict) -> None:
        """Rewrite one in-flight record (the lost-batch sweep notes what it saw), unless the
        batch finished meanwhile: a finished batch must not get its copy back."""
        self.r.eval(_MARK_INFLIGHT, 2, f"{self.k}:inflight", f"{self.k}:finished", bid,
                    json.dumps(record))

    def pending_batches(self) -> dict[str, list[dict]]:
        """Batches claimed by a producer that died before sending them."""
        return {k: json.loads(v) for k, v in self.r.hgetall(f"{self.k}:pending").items()}

    def batch_enqueued(self, n_headlines: int) -> None:
        pipe = self.r.pipeline()
        self._count_enqueued(pipe, n_headlines)
        pipe.execute()

    def _count_enqueued(self, pipe: redis.client.Pipeline, n_headlines: int) -> None:
        pipe.sadd(redis_keys.RUNS, self.run_id)
        pipe.hsetnx(f"{self.k}:stats", "started_at", time.time())
        pipe.hincrby(f"{self.k}:stats", "batches_enqueued", 1)
        pipe.hincrby(f"{self.k}:stats", "headlines_enqueued", n_headlines)

    def in_flight(self, stats: dict[str, float] | None = None) -> int:
        s = stats or self.stats()
        return int(s.get("batches_enqueued", 0)) - int(s.get("batches_finished", 0))

    # -- worker side ----------------------------------------------------------------------
    def finish_batch(self, bid: str, counts: dict[str, float], dead: bool = False,
                     lease: tuple[str, str, int] | None = None,
                     outcome: dict[str, Any] | None = None) -> bool:
        """Record a batch's outcome once, atomically; returns False if it was already recorded,
        or, given ``lease`` (its Redis key, this copy's token, its TTL in ms), if another copy
        holds the batch's lease. ``outcome`` (which staged files hold the outcome) is kept
        until ``drop_commit``: a copy that dies before promoting them leaves the next copy
        what to finish (``pending_commit``)."""
        key, token, ttl = lease or ("", "", 0)
        args: list[str | float] = [bid, "1" if dead else "0", time.time(), token, ttl,
                                   json.dumps(outcome) if outcome else ""]
        for name, v in counts.items():
            if isinstance(v, float) and not v.is_integer():
                args += [name, "f", v]
            elif v:
                args += [name, "i", int(v)]
        keys = [f"{self.k}:finished", f"{self.k}:stats", f"{self.k}:dead", f"{self.k}:inflight",
                key or f"{self.k}:no-lease", f"{self.k}:commits"]
        return bool(self._finish(keys=keys, args=args))

    def pending_commit(self, bid: str) -> dict[str, Any] | None:
        """The outcome a recorded batch's copy committed but may not have promoted yet."""
        raw = self.r.hget(f"{self.k}:commits", bid)
        return json.loads(raw) if raw else None

    def drop_commit(self, bid: str) -> None:
        self.r.hdel(f"{self.k}:commits", bid)

    def undeliver(self, bid: str, attempt: int) -> None:
        """Take back one start of an attempt that ended in this process's hands (handed back to
        the queue on purpose): only starts that never ended mean the worker died."""
        self.r.hincrby(f"{self.k}:deliveries", f"{bid}:{attempt}", -1)

    def delivered(self, bid: str, attempt: int) -> int:
        """Count one start of attempt ``attempt`` (Celery's retry number) of batch ``bid``;
        returns how many starts that attempt has had. A retry is a new attempt; a second start
        of the same attempt is a redelivery: the worker running it died (segfault, OOM kill) or
        lost the broker. The key lives a week, like a run's other state."""
        key = f"{self.k}:deliveries"
        field = f"{bid}:{attempt}"
        pipe = self.r.pipeline(transaction=True)
        pipe.hincrby(key, field, 1)
        pipe.expire(key, 7 * 24 * 3600)
        return int(pipe.execute()[0])

    def first_rejections(self, records: list[str], token: str) -> list[bool]:
        """Whether this run sees each rejected record (``source#row``) first (a rerun reads the
        same bad rows again); the first call's ``token`` is kept, so that call retried after its
        reply was lost in an outage (``common.outage``) still sees its records first."""
        key, pipe = f"{self.k}:rejected_by", self.r.pipeline(transaction=False)
        for rec in records:
            pipe.hsetnx(key, rec, token)
        owners = pipe.hmget(key, records).execute()[-1] if records else []
        return [owner == token for owner in owners]

    def is_finished(self, bid: str) -> bool:
        return bool(self.r.sismember(f"{self.k}:finished", bid))

    def count(self, name: str, n: float = 1) -> None:
        """Bump a counter that is not tied to one batch's outcome (retries, calls)."""
        if isinstance(n, float) and not n.is_integer():
            self.r.hincrbyfloat(f"{self.k}:stats", name, n)
        else:
            self.r.hincrby(f"{self.k}:stats", name, int(n))

    def requeued(self, bid: str, n_headlines: int, new_bid: str = "",
                 copy: dict | None = None) -> bool:
        """A dead letter went back (already sent) as a new batch: count that batch, and its
        headlines no longer as dead, so enqueued = done + dead + in flight keeps holding.

        Atomic and once per dead batch; returns False when ``bid`` was not (or no longer) dead.
        A finished run is finalized again once the requeued batch is done. ``new_bid`` and
        ``copy`` keep the new batch's in-flight copy, as ``sent`` does.
        """
        keys = [f"{self.k}:dead", f"{self.k}:stats", f"{self.k}:finalized", f"{self.k}:inflight"]
        record = _inflight_record(copy) if copy is not None and new_bid else ""
        return bool(self._requeue(keys=keys, args=[bid, n_headlines, new_bid if record else "",
                                                   record]))

    def claim_dead(self, bid: str, token: str, ttl_s: int = REQUEUE_CLAIM_S) -> bool:
        """Take dead batch ``bid`` for one requeue (``token`` names it) before sending it.

        Why: two ``tickertag requeue`` at once both listed the same dead letters, both sent
        them, and the slower one crashed moving a letter the other had already moved. The
        claim is one ``SET NX``: exactly one requeue gets it; it expires after ``ttl_s`` so a
        requeue killed mid-send leaves the letter to the next one.
        """
        return bool(self.r.set(f"{self.k}:requeue-claim:{bid}", token, nx=True, ex=ttl_s))

    def release_dead(self, bid: str, token: str) -> None:
        """Give back a claim taken with ``claim_dead`` (only if ``token`` still holds it)."""
        self.r.eval(_RELEASE_CLAIM, 1, f"{self.k}:requeue-claim:{bid}", token)

    # -- end of run ---------------------------------------------------------------------
    def producer_alive(self, producer_id: str) -> None:
        """A producer of this run is (still) sending: a heartbeat, renewed while it runs.

        Why: with two producers on one run (or a restarted producer while the old one still
        waits for room), the first to finish marked the run produced, and a worker finishing
        the last in-flight batch finalized it while the other was still sending."""
        self.r.zadd(f"{self.k}:producers", {producer_id: time.time()})

    def producer_done(self, producer_id: str) -> None:
        self.r.zrem(f"{self.k}:producers", producer_id)

    def live_producers(self, now: float | None = None) -> int:
        """Producers whose heartbeat is younger than ``PRODUCER_TTL_S`` (a killed producer
        stops counting after that, so its run can still finalize once it is rerun or not)."""
        return int(self.r.zcount(f"{self.k}:producers",
                                 (now or time.time()) - PRODUCER_TTL_S, "+inf"))

    def mark_produced(self) -> None:
        """The producer has sent everything it will send for now."""
        self.r.hset(f"{self.k}:stats", "produced_at", time.time())

    def settled(self, stats: dict[str, float] | None = None) -> bool:
        """Nothing in flight and every recorded batch's files in the store: a batch counts as
        finished a moment before its worker moves its files (``Run.record_batch``)."""
        return self.in_flight(stats) == 0 and not self.r.hlen(f"{self.k}:commits")

    def try_finalize(self, now: float | None = None) -> bool:
        """True exactly once when every producer is done and the run is ``settled``.

        Both the producers (at their end) and every worker (after each batch) ask; the flag
        makes sure the downstream stage is started once, not by one giant chord over all
        batches, and only once the store holds every batch's outcome.
        """
        s = self.stats()
        if not s.get("produced_at") or not self.settled(s) or self.live_producers(now):
            return False
        return bool(self.r.set(f"{self.k}:finalized", f"pending {time.time()}", nx=True))

    def curation_sent(self) -> None:
        """The finalized run's curate message is on its queue (a reopened run keeps no flag)."""
        self.r.set(f"{self.k}:finalized", f"sent {time.time()}", xx=True)

    def unsent_for(self, now: float | None = None) -> float | None:
        """Seconds since the run finalized with its curate message not marked sent, else None:
        the finalizer died between the two steps (``workers.lost`` sends it after a grace)."""
        v = self.r.get(f"{self.k}:finalized")
        what, _, at = (v.decode() if isinstance(v, bytes) else v or "").partition(" ")
        return (now or time.time()) - float(at) if what == "pending" else None

    # -- reading --------------------------------------------------------------------------
    def stats(self) -> dict[str, float]:
        """The counters; ``rejected`` counts ``first_rejections``'s hash: each record once."""
        raw, rejected = (self.r.pipeline(transaction=False).hgetall(f"{self.k}:stats")
                         .hlen(f"{self.k}:rejected_by").execute())
        out: dict[str, float] = {c: 0 for c in COUNTERS}
        for k, v in raw.items():
            f = float(v)
            out[k] = int(f) if f.is_integer() else f
        out["rejected"] = max(out["rejected"], int(rejected))
        return out

    def reset(self) -> None:
        """Forget this run in Redis (the result store on disk is untouched)."""
        keys = list(self.r.scan_iter(f"{self.k}:*"))
        if keys:
            self.r.delete(*keys)
        self.r.srem(redis_keys.RUNS, self.run_id)
