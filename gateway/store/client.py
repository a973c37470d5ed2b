"""网关的异步 Redis 客户端，以及把 Redis 的回复解码为 str。"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.settings import Settings


def connect(settings: Settings) -> aioredis.Redis:
    """带超时与有限次指数退避重试的异步 Redis 客户端。"""
    return aioredis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=10,
    )



def as_text(value: object) -> str:
    """Redis 回复中的一个字符串值。客户端未开 ``decode_responses``，值是 bytes（redis-py 的类型标注另含 str，也照收）。"""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise TypeError(f"Redis 回复不是字符串: {value!r}")
