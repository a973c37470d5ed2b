"""按地址打开 Redis 客户端：``redis://主机:端口/库``，或经 Sentinel（没有单点故障）的
``redis+sentinel://主机1:26379,主机2:26379/库/服务名``（与 python-socketio 的 Redis 管理器同一种写法，
所以同一个 ``REDIS_URL`` 同时用于网关、工作进程与 Socket.IO 的跨进程广播）。

经 Sentinel 时客户端向 Sentinel 询问当前的主节点，主节点故障转移后在下一次重连时自动连到新的主节点。

用法::

    client = sync_redis(settings.redis_url, socket_timeout=3)      # 工作进程
    client = async_redis(settings.redis_url, socket_timeout=3)     # 网关
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel
import redis.sentinel
from socketio.redis_manager import parse_redis_sentinel_url

SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_SERVICE = "mymaster"


def is_sentinel(url: str) -> bool:
    return urlsplit(url).scheme == SENTINEL_SCHEME


def _sentinel_parts(url: str, options: dict[str, Any]) -> tuple[list[tuple[str, int]], str, dict[str, Any], dict[str, Any]]:
    sentinels, service, auth = parse_redis_sentinel_url(url)
    timeouts = {k: v for k, v in options.items() if k in ("socket_timeout", "socket_connect_timeout")}
    return sentinels, service or DEFAULT_SERVICE, {**options, **auth}, timeouts


def sync_redis(url: str, **options: Any) -> redis.Redis:
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **options)
    sentinels, service, connection, timeouts = _sentinel_parts(url, options)
    return redis.sentinel.Sentinel(sentinels, sentinel_kwargs=timeouts, **connection).master_for(service)


def async_redis(url: str, max_connections: int | None = None, **options: Any) -> aioredis.Redis:
    """``max_connections``：连接数上限，用满时等空闲连接（最多 ``socket_timeout`` 秒）；经 Sentinel 时忽略。"""
    if not is_sentinel(url):
        if max_connections is None:
            return aioredis.Redis.from_url(url, **options)
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=options.get("socket_timeout"), **options
        )
        return aioredis.Redis.from_pool(pool)  # 客户端关闭时连同连接池
    sentinels, service, connection, timeouts = _sentinel_parts(url, options)
    return redis.asyncio.sentinel.Sentinel(sentinels, sentinel_kwargs=timeouts, **connection).master_for(service)
