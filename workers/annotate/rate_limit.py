"""A global rate limiter shared by every worker on every host, kept in Redis.

Celery's ``Task.rate_limit`` is per worker; an LLM endpoint's limit is per endpoint. This is a
token bucket evaluated atomically in a Lua script with Redis's own clock, so hosts with skewed
clocks still share one budget. One bucket limits requests/s, another tokens/min.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from common import redis_keys

# KEYS[1] bucket; ARGV: rate per second, capacity, amount. Returns seconds to wait (0 = granted).
_LUA = """
local rate = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or cap
local ts = tonumber(b[2]) or now
tokens = math.min(cap, tokens + (now - ts) * rate)
local wait = 0
if tokens >= want then
  tokens = tokens - want
else
  wait = (want - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('EXPIRE', KEYS[1], math.ceil(cap / rate) + 60)
return tostring(wait)
"""


class RedisRateLimiter:
    """Token bucket: ``rate`` units per second, bursts up to ``capacity``."""

    def __init__(self, client: aioredis.Redis, key: str, rate: float, capacity: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.r, self.key, self.rate = client, key, rate
        self.capacity = max(capacity, 1.0)
        self._script = client.register_script(_LUA)

    async def try_acquire(self, amount: float = 1.0) -> float:
        """Take ``amount`` if available now; else return the seconds to wait before retrying."""
        amount = min(amount, self.capacity)
        return float(await self._script(keys=[self.key], args=[self.rate, self.capacity, amount]))

    async def acquire(self, amount: float = 1.0) -> float:
        """Wait until ``amount`` is granted; return the total seconds waited."""
        waited = 0.0
        while True:
            wait = await self.try_acquire(amount)
            if wait <= 0:
                return waited
            wait = min(wait, 5.0)
            waited += wait
            await asyncio.sleep(wait)


class EndpointLimits:
    """The limits for one endpoint: requests/s and tokens/min (either may be off)."""

    def __init__(self, client: aioredis.Redis, endpoint: str, rps: float, tpm: float) -> None:
        self.requests = (
            RedisRateLimiter(client, redis_keys.rate_limit(endpoint, "rps"), rps, max(rps, 1.0))
            if rps > 0 else None
        )
        self.tokens = (
            RedisRateLimiter(client, redis_keys.rate_limit(endpoint, "tpm"), tpm / 60.0, tpm / 6.0)
            if tpm > 0 else None
        )

    async def acquire(self, est_tokens: int) -> float:
        waited = 0.0
        if self.requests:
            waited += await self.requests.acquire(1)
        if self.tokens:
            waited += await self.tokens.acquire(est_tokens)
        return waited
