"""``BatchEmitter``：把一次分析的全部事件用一条 Redis 消息发到 Socket.IO 的频道（格式见 :mod:`shared.fanout`）。

网关的 :class:`gateway.realtime.fanout.FanoutManager` 展开这条消息，按命名空间与房间投递给各连接。

用法::

    emitter = BatchEmitter(sync_redis(redis_url, socket_timeout=3), channel=keys.socketio_channel)
    emitter.emit_batch([(event, data, namespace, room), ...])
"""

from __future__ import annotations

import redis

from shared.fanout import Emission, pack_batch


class BatchEmitter:
    def __init__(self, client: redis.Redis, channel: str) -> None:
        self.client = client
        self.channel = channel

    def emit_batch(self, emissions: list[Emission]) -> None:
        """发出一批事件；Redis 出错时抛出 ``redis.RedisError``（调用方计数；下一次自动重连，经 Sentinel 时连到新的主节点）。"""
        if emissions:
            self.client.publish(self.channel, pack_batch(emissions))
