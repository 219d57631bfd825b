"""A global rate limiter shared by every worker on every host, kept in Redis.

Celery's ``Task.rate_limit`` is per worker; an LLM endpoint's limit is per endpoint. Each kind
(requests, tokens) is one gate evaluated atomically in a Lua script with Redis's own clock, so
hosts with skewed clocks still share one budget. A gate grants only when both of its parts do:

* the configured token bucket (``rate_limit_rps``, ``rate_limit_tpm``; either may be off);
* what the endpoint itself granted on its last responses (``rate_headers.py``): ``remaining``
  units until ``reset``, then ``limit`` again. Learned limits can only hold requests back,
  never let more through than the configured bucket.

Why a window and not a rate: the headers do not say how long the endpoint's window is, and
both usual meanings of ``reset`` (a fixed window's end; a token bucket full again) allow
``remaining`` now and ``limit`` at the reset, so obeying exactly that never over-sends.
Responses come back late and out of order, so each grant carries a ticket (the running total
of units granted); a response's ``remaining`` is reduced by what was granted after its own
request, and a response from a window already closed is ignored.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from common import redis_keys
from workers.annotate.rate_headers import Grant, granted_limits

# Requests granted in a window's last moments may reach the endpoint in its next window: no
# grant this close to a window's end (at most a tenth of the window).
_GUARD_S = 0.1

# KEYS[1] configured bucket, KEYS[2] granted window; ARGV: rate per second (0: no bucket),
# capacity, amount, guard. Returns {seconds to wait (0 = granted), ticket}.
_TAKE = """
local rate = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local wait = 0
local tokens = 0
if rate > 0 then
  local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
  tokens = tonumber(b[1]) or cap
  local ts = tonumber(b[2]) or now
  tokens = math.min(cap, tokens + (now - ts) * rate)
  if tokens < want then wait = (want - tokens) / rate end
end
local g = redis.call('HMGET', KEYS[2], 'limit', 'remaining', 'reset_at', 'period', 'sent', 'wstart')
local limit, remaining, reset_at = tonumber(g[1]), tonumber(g[2]), tonumber(g[3])
local period, sent, wstart = tonumber(g[4]), tonumber(g[5]) or 0, tonumber(g[6]) or 0
local take = want
if limit then
  if now >= reset_at then
    remaining = limit
    wstart = sent
    reset_at = reset_at + period * math.max(1, math.ceil((now - reset_at) / period))
  end
  take = math.min(want, limit)
  if remaining < take or now >= reset_at - math.min(tonumber(ARGV[4]), 0.1 * period) then
    wait = math.max(wait, reset_at - now)
  end
end
if wait <= 0 then
  wait = 0
  tokens = tokens - want
  sent = sent + want
  if limit then remaining = remaining - take end
end
if rate > 0 then
  redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
  redis.call('EXPIRE', KEYS[1], math.ceil(cap / rate) + 60)
end
redis.call('HSET', KEYS[2], 'sent', sent)
if limit then
  redis.call('HSET', KEYS[2], 'remaining', remaining, 'reset_at', reset_at, 'wstart', wstart)
  redis.call('EXPIRE', KEYS[2], math.ceil(math.max(period, reset_at - now)) + 60)
else
  redis.call('EXPIRE', KEYS[2], 3600)
end
return {tostring(wait), tostring(sent)}
"""

# KEYS[1] granted window; ARGV: limit, remaining, reset seconds, ticket (-1: unknown).
# A response told us: after its request, `remaining` units are left until now + reset.
_LEARN = """
local limit = tonumber(ARGV[1])
local left = tonumber(ARGV[2])
local reset_s = tonumber(ARGV[3])
local ticket = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local new_at = now + reset_s
local g = redis.call('HMGET', KEYS[1], 'limit', 'remaining', 'reset_at', 'period', 'sent', 'wstart')
local known, remaining, reset_at = tonumber(g[1]), tonumber(g[2]), tonumber(g[3])
local period, sent, wstart = tonumber(g[4]) or 0, tonumber(g[5]) or 0, tonumber(g[6]) or 0
-- units granted after this response's request were sent on top of what it saw left
local est = left
if ticket >= 0 then est = math.max(0, left - math.max(0, sent - ticket)) end
period = math.max(period, reset_s, 0.001)
local eps = 0.2 * period
if not known or new_at > reset_at + eps then
  -- first word from the endpoint, or it is in a window we have not tracked: take its word
  remaining, reset_at = est, new_at
  if ticket >= 0 then wstart = ticket else wstart = sent end
elseif new_at >= reset_at - eps then
  -- the window we track: the lower count wins, the later end wins
  remaining, reset_at = math.min(remaining, est), math.max(reset_at, new_at)
elseif ticket > wstart and new_at > now then
  -- a request of our current window says the window ends sooner than we guessed
  remaining, reset_at = math.min(remaining, est), new_at
end
redis.call('HSET', KEYS[1], 'limit', limit, 'remaining', remaining, 'reset_at', reset_at,
           'period', period, 'sent', sent, 'wstart', wstart)
redis.call('EXPIRE', KEYS[1], math.ceil(math.max(period, reset_at - now)) + 60)
return tostring(remaining)
"""


class RedisRateLimiter:
    """One gate: a token bucket of ``rate`` units per second, bursts up to ``capacity`` (rate 0:
    no bucket), and what the endpoint granted, kept under ``granted_key``."""

    def __init__(self, client: aioredis.Redis, key: str, rate: float, capacity: float,
                 granted_key: str | None = None) -> None:
        if rate < 0:
            raise ValueError("rate must not be negative")
        self.r, self.key, self.rate = client, key, rate
        self.granted_key = granted_key or f"{key}:granted"
        self.capacity = max(capacity, 1.0)
        self._scripts: tuple[AsyncScript, AsyncScript] | None = None
        # With no configured bucket the script runs only once some process learned a grant,
        # so an endpoint that sends no limits costs no Redis round trip per request.
        self._granted = rate > 0
        self._checked_at = float("-inf")

    def _script(self, i: int) -> AsyncScript:
        if self._scripts is None:  # registered on first use: a caller may never need them
            self._scripts = (self.r.register_script(_TAKE), self.r.register_script(_LEARN))
        return self._scripts[i]

    async def _active(self) -> bool:
        if not self._granted and time.monotonic() - self._checked_at >= 1.0:
            self._checked_at = time.monotonic()
            self._granted = bool(await self.r.hexists(self.granted_key, "limit"))
        return self._granted

    async def try_take(self, amount: float = 1.0) -> tuple[float, float | None]:
        """Take ``amount`` if both parts allow it now: (0, ticket); else (seconds to wait, None)."""
        if not await self._active():
            return 0.0, None
        if self.rate > 0:
            amount = min(amount, self.capacity)
        wait, ticket = await self._script(0)(keys=[self.key, self.granted_key],
                                        args=[self.rate, self.capacity, amount, _GUARD_S])
        return (0.0, float(ticket)) if float(wait) <= 0 else (float(wait), None)

    async def try_acquire(self, amount: float = 1.0) -> float:
        """Take ``amount`` if available now; else return the seconds to wait before retrying."""
        return (await self.try_take(amount))[0]

    async def take(self, amount: float = 1.0) -> tuple[float, float | None]:
        """Wait until ``amount`` is granted: (total seconds waited, the grant's ticket)."""
        waited = 0.0
        while True:
            wait, ticket = await self.try_take(amount)
            if wait <= 0:
                return waited, ticket
            wait = min(wait, 5.0)
            waited += wait
            await asyncio.sleep(wait)

    async def acquire(self, amount: float = 1.0) -> float:
        """Wait until ``amount`` is granted; return the total seconds waited."""
        return (await self.take(amount))[0]

    async def learn(self, grant: Grant, ticket: float | None) -> float:
        """Record what a response granted (``ticket``: its request's, from ``take``); returns
        the units now believed left in the endpoint's window."""
        self._granted = True
        left = await self._script(1)(keys=[self.granted_key], args=[
            grant.limit, grant.remaining, grant.reset_s, -1 if ticket is None else ticket])
        return float(left)


@dataclass
class Permit:
    """One request's passage through the gates: seconds waited, and each gate's ticket."""

    waited: float = 0.0
    tickets: dict[str, float | None] = field(default_factory=dict)


class EndpointLimits:
    """The gates for one endpoint: requests (configured as requests/s) and tokens (configured
    as tokens/min); each also obeys what the endpoint grants."""

    def __init__(self, client: aioredis.Redis, endpoint: str, rps: float, tpm: float) -> None:
        self.gates = {
            "requests": RedisRateLimiter(
                client, redis_keys.rate_limit(endpoint, "rps"), max(rps, 0.0), max(rps, 1.0),
                redis_keys.rate_limit(endpoint, "requests-granted")),
            "tokens": RedisRateLimiter(
                client, redis_keys.rate_limit(endpoint, "tpm"), max(tpm, 0.0) / 60.0,
                tpm / 6.0, redis_keys.rate_limit(endpoint, "tokens-granted")),
        }

    async def acquire(self, est_tokens: int) -> Permit:
        permit = Permit()
        for kind, amount in (("requests", 1), ("tokens", est_tokens)):
            waited, permit.tickets[kind] = await self.gates[kind].take(amount)
            permit.waited += waited
        return permit

    async def learn(self, headers: dict[str, str], permit: Permit) -> None:
        """Lower the gates to what a response's headers grant (no rate-limit headers: nothing)."""
        for kind, grant in granted_limits(headers).items():
            await self.gates[kind].learn(grant, permit.tickets.get(kind))
