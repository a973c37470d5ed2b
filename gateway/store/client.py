"""网关的异步 Redis 客户端（``redis://`` 或经 Sentinel 的 ``redis+sentinel://``，见 shared/redis_url.py）。"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.redis_url import async_redis
from shared.settings import Settings


def connect(settings: Settings) -> aioredis.Redis:
    """带超时与有限次指数退避重试的异步 Redis 客户端。"""
    return async_redis(
        settings.redis_url,
        max_connections=settings.gateway_redis_connections,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=10,
    )
