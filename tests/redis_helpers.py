"""The local Redis that the Redis-backed tests share (127.0.0.1:6379; a test fails, never
skips, when it is down), and the clean-up of one test's keys: each test keeps its keys under
a prefix of its own, as other suites use the same server."""

from __future__ import annotations

import redis.asyncio as aioredis

REDIS_URL = "redis://127.0.0.1:6379/0"


async def delete_prefix(prefix: str, client: aioredis.Redis | None = None) -> None:
    """Delete every key under ``prefix`` (with ``client``, else a client of its own)."""
    own = client is None
    redis = aioredis.Redis.from_url(REDIS_URL) if client is None else client
    try:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await redis.unlink(*keys)
    finally:
        if own:
            await redis.aclose()
