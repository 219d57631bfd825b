"""Response-cache writes grouped into one Redis round trip (group commit).

Why: every answered headline wrote its cache entry with its own ``SET``, one round trip per
request, the largest Redis cost of a batch once the clients are reused (``benchmarks/
dispatch.py``). Here the writes queued while one pipeline is on the wire go together in the
next, so a process answering hundreds of requests a second sends a few pipelines instead. Each
caller still awaits its own write: when ``set`` returns, the entry is in Redis (a batch is
recorded only after all of its answers are cached, as before), and a Redis error reaches every
caller whose write it lost.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis


class GroupedSets:
    """``SET key value EX ttl`` writes sent in groups over one client."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.r = client
        self._queued: list[tuple[str, str, int, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def set(self, key: str, value: str, ttl_s: int) -> None:
        """Write one entry; returns once the pipeline carrying it was executed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((key, value, ttl_s, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        await done

    async def _flush(self) -> None:
        while self._queued:
            group, self._queued = self._queued, []
            try:
                async with self.r.pipeline(transaction=False) as pipe:
                    for key, value, ttl_s, _ in group:
                        pipe.set(key, value, ex=ttl_s)
                    await pipe.execute()
            except Exception as e:  # handed to every writer whose entry it lost
                for *_, done in group:
                    if not done.done():
                        done.set_exception(e)
            else:
                for *_, done in group:
                    if not done.done():
                        done.set_result(None)
