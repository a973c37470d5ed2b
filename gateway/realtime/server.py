"""``GuardedServer``：在 python-socketio 的服务器上加一层客户端事件的把关，所有命名空间共用。

- 每条传输连接一个令牌桶（连接请求、事件、格式错误的包都计入，所以任何一种都刷不了屏）；
- 格式错误的包只记一行日志并计数（没有异常回溯）；
- 事件名必须是字符串且不是保留名（``connect``、``disconnect`` 等）：客户端发来的 ``connect`` 事件不会再次
  触发连接处理；这类事件被忽略（带 ack 时回 ``{ok: false, error}``）。
- 令牌桶（``SOCKET_EVENTS_PER_S``，可突发到 2 倍）：超限的事件不处理，ack ``rate_limited``，
  并（每秒至多一次）发 ``rate_limited`` 事件告知；超限持续约 ``FLOOD_GRACE_S`` 秒仍不停的连接被关闭（整条传输连接）。
- 单条消息的大小由 Engine.IO 的 ``max_http_buffer_size``（与 uvicorn 的 ``ws_max_size``）限制，超过即关闭该连接。

用法::

    sio = GuardedServer(events_per_s=20, metrics=metrics, async_mode="asgi", max_http_buffer_size=65536)
"""

from __future__ import annotations

import logging
import time
from typing import Any

import socketio
from socketio import packet

from shared import events as ev

from ..auth.limits import TokenBucket
from ..metrics import GatewayMetrics

log = logging.getLogger(__name__)

# 连续超限多少秒后断开
FLOOD_GRACE_S = 3.0


class _Flow:
    """一条传输连接（Engine.IO 会话，含它的全部命名空间）的限速状态。"""

    def __init__(self, rate: float) -> None:
        self.bucket = TokenBucket(rate, 2 * rate)
        self.refused_since: float | None = None  # 这一段连续超限从何时开始（间隔超过 1 秒没有超限即算新的一段）
        self.refused_at = 0.0
        self.notified_at = 0.0


class GuardedServer(socketio.AsyncServer):
    def __init__(self, events_per_s: float, metrics: GatewayMetrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.events_per_s = events_per_s
        self.metrics = metrics
        self._flows: dict[str, _Flow] = {}  # Engine.IO 会话 ID -> 限速状态

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        """格式错误的包（不是 JSON、未知的包类型、意外的二进制包）只记一行并计数，不留异常回溯、不影响连接。"""
        try:
            await super()._handle_eio_message(eio_sid, data)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            self.metrics.socket_events_refused.labels("-", "malformed_packet").inc()
            if await self._admit(eio_sid, "-"):  # 格式错误的包同样计入限速：持续发送的连接被关闭，日志不被刷屏
                log.info("malformed Socket.IO packet from %s ignored: %s", eio_sid, str(exc)[:120])

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        # 连接请求也计入限速：每次连接都要校验令牌（可能查 Redis）
        if not await self._admit(eio_sid, namespace or "/"):
            error = {"message": "连接请求太频繁", "data": {"reason": "rate_limited"}}
            await self._send_packet(eio_sid, self.packet_class(packet.CONNECT_ERROR, data=error, namespace=namespace))
            return
        await super()._handle_connect(eio_sid, namespace, data)

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: int | None, data: Any) -> None:  # noqa: A002
        namespace = namespace or "/"
        if not await self._admit(eio_sid, namespace):  # 先限速：保留名与格式错误的事件也算数
            await self._refuse(eio_sid, namespace, id, "rate_limited", "发送太快，事件未处理")
            return
        name = data[0] if isinstance(data, list) and data else None
        if not isinstance(name, str) or name in ev.RESERVED_EVENTS:
            self.metrics.socket_events_refused.labels(namespace, "reserved_or_malformed").inc()
            log.info("ignored client event %.40r on %s", name, namespace)
            await self._refuse(eio_sid, namespace, id, "reserved_event", "事件名不合法或是保留名，已忽略")
            return
        await super()._handle_event(eio_sid, namespace, id, data)

    async def _admit(self, eio_sid: str, namespace: str) -> bool:
        """令牌桶放行返回 True；超限返回 False（持续超限时断开该连接）。"""
        now = time.monotonic()
        flow = self._flows.get(eio_sid)
        if flow is None:
            flow = self._flows[eio_sid] = _Flow(self.events_per_s)
        if flow.bucket.allow(now):
            return True
        self.metrics.socket_events_refused.labels(namespace, "rate_limited").inc()
        if flow.refused_since is None or now - flow.refused_at > 1.0:
            flow.refused_since = now
        flow.refused_at = now
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if now - flow.notified_at >= 1.0 and sid is not None:
            flow.notified_at = now
            await self.emit(ev.RATE_LIMITED, {"error": "发送太快，超出的事件不会被处理；持续超限将断开连接"}, to=sid,
                            namespace=namespace)
        if now - flow.refused_since >= FLOOD_GRACE_S:
            log.warning("closing connection %s: event flood on %s", sid or eio_sid, namespace)
            self.metrics.socket_disconnects.labels(namespace, "rate_limited").inc()
            self._flows.pop(eio_sid, None)
            await self.eio.disconnect(eio_sid)  # 关掉整条传输连接，而不只是这个命名空间
        return False

    async def _refuse(self, eio_sid: str, namespace: str, id: int | None, reason: str, error: str) -> None:
        if id is not None:
            body = {"ok": False, "reason": reason, "error": error}
            await self._send_packet(eio_sid, self.packet_class(packet.ACK, namespace=namespace, id=id, data=[body]))

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any = None) -> None:
        self._flows.pop(eio_sid, None)
        await super()._handle_eio_disconnect(eio_sid, reason)
