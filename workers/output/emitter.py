"""``BatchEmitter``：python-socketio 的只写 ``RedisManager``，另能把一批事件用一次 Redis 往返（pipeline）发出。

每次分析后一路流的事件有 7 条左右（monitor.update 两个命名空间、兼容旧前端的事件、``ppg.roi``）；逐条 PUBLISH 时
发布线程每条都要等一次网络往返、重新抢一次 GIL，进程忙时跟不上。这里照常让管理器组装每条消息（格式与
python-socketio 相同，网关照常接收），只是把它们收集起来一起发。

用法::

    emitter = BatchEmitter(redis_url, channel=..., write_only=True)
    emitter.emit_batch([(event, data, namespace, room), ...])
"""

from __future__ import annotations

import logging
from typing import Any

import socketio

log = logging.getLogger(__name__)


class BatchEmitter(socketio.RedisManager):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: list[Any] | None = None

    def _publish(self, data: Any) -> Any:
        if self._pending is not None:  # emit_batch 之内：先收集
            self._pending.append(data)
            return None
        return super()._publish(data)

    def emit_batch(self, emissions: list[tuple[str, Any, str, Any]]) -> None:
        """一批 (事件, 数据, 命名空间, 房间)：一次 pipeline 发出；Redis 出错时抛出 ``redis.RedisError``（调用方计数）。"""
        messages: list[Any] = []
        self._pending = messages
        try:
            for event, data, namespace, room in emissions:
                self.emit(event, data, namespace=namespace, room=room)
        finally:
            self._pending = None
        if not getattr(self, "connected", False):
            self._redis_connect()
        pipe = self.redis.pipeline(transaction=False)
        for message in messages:
            pipe.publish(self.channel, self.json.dumps(message))
        try:
            pipe.execute()
        except Exception:
            self.connected = False  # 下一批重新连接（经 Sentinel 时连到新的主节点）
            raise
