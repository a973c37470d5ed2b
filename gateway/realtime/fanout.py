"""``FanoutManager``：经 Redis 跨进程广播的客户端管理器（python-socketio 的 ``AsyncRedisManager``），另做三件事：

- 展开工作进程的事件批（一次分析一条 Redis 消息，格式见 :mod:`shared.fanout`）；python-socketio 的单条
  ``emit`` 消息照常处理；
- 每个事件只编码一次、直接放进各连接的发送队列（python-socketio 为每个收件人各建一个 asyncio 任务）；
- 连接可以声明投递方式（教师连接的 ``auth``，见 :class:`shared.messages.DeliveryOptions`）：
  ``events`` 只收这些事件名（例如新的监控页不要兼容旧前端的四个事件名），
  ``batch`` 把事件攒成每 ``flush_interval_s`` 秒至多一条 ``monitor.batch {events: [[事件名, 负载], ...]}``
  （每条事件的 JSON 只生成一次，各连接的批只是拼接），300 路、几十个教师时每个连接每秒只有 20 条 WebSocket 消息。
  投递方式只作用于分析事件（回放的 ``monitor.update`` 也进批）；``auth.expired``、``rate_limited``、信令与带 ack 的事件
  照常逐条发。

回放先于实时：连接在读回放之前 :meth:`FanoutManager.hold` 住，此后发给它的分析事件先排队；
:meth:`FanoutManager.release` 先发回放、再按到达顺序发排队的事件，然后恢复直接投递；回放里已有的（或更旧的）
``monitor.update`` 之后到达时不再发给它。工作进程先写回放缓冲、再发出，所以连接进房间与读回放之间
不漏、不重复、不交错。

逐条投递的连接发送队列里积压超过 ``MAX_BACKLOG`` 条时，再来的分析事件对它丢弃：网关忙不过来（几十个不攒批的
旧前端连接）或客户端读得慢时，它看到的仍是新数据，延迟与内存都有上限。

每条转发给本实例客户端的事件计入 ``events_relayed``（事件名限于公开契约里的），每次投递计入
``socket_deliveries``（``mode``：direct / batched / dropped_backlog）。

用法::

    manager = FanoutManager(metrics, redis_url, channel=keys.socketio_channel)
    sio = socketio.AsyncServer(client_manager=manager, async_mode="asgi")
    manager.set_delivery(sid, "/monitor", DeliveryOptions(events=["monitor.update"], batch=True))
    manager.hold(sid, "/monitor")           # 进房间之前
    await manager.release(sid, "/monitor", replay_updates)
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import socketio
from engineio import packet as eio_packet
from pydantic import ValidationError
from socketio import packet

from shared import events as ev
from shared.fanout import BATCH_PREFIX, EmissionBatch
from shared.messages import DeliveryOptions

from ..metrics import GatewayMetrics

log = logging.getLogger(__name__)

# 攒批的间隔：批里的事件平均多等一半
FLUSH_INTERVAL_S = 0.05
# 逐条投递的连接发送队列里最多积压这么多条（网关忙不过来或客户端读得慢时）：再来的分析事件对它丢弃（计数），
# 不让它看到越来越旧的数据、也不让网关内存随之增长
MAX_BACKLOG = 256


@dataclass
class _Recipient:
    events: frozenset[str] | None
    batch: bool
    pending: list[str] = field(default_factory=list)  # 待发的 JSON 文本 [事件名, 负载]


@dataclass
class _Joining:
    """正在或刚刚回放的连接。``queue``：回放发完之前到达的分析事件（不再排队时为 None）；``depth``：还没 release 的
    hold 次数（墙的回放与订阅的回放可能重叠）；``replayed_to``：会话 -> 回放到的最新时间戳，晚到的更旧或同一条
    monitor.update 不再发（工作进程先写回放缓冲、再发出，同一条可能既在回放里、又稍后才经频道到达）。"""

    queue: deque[tuple[str, list]] | None = field(default_factory=deque)
    depth: int = 0
    replayed_to: dict[str, str] = field(default_factory=dict)

    def stale(self, event: str, args: list) -> bool:
        """这条事件已在回放里（或比回放的更旧）；该会话第一条更新的到达之后就不再比较。"""
        if event != ev.MONITOR_UPDATE or not self.replayed_to or not args or not isinstance(args[0], dict):
            return False
        session_id, stamp = args[0].get("session_id"), args[0].get("timestamp")
        if not isinstance(session_id, str) or not isinstance(stamp, str) or session_id not in self.replayed_to:
            return False
        if stamp <= self.replayed_to[session_id]:  # 同一格式的 ISO-8601 UTC（iso_utc）按字符串比较即按时间比较
            return True
        del self.replayed_to[session_id]
        return False


class FanoutManager(socketio.AsyncRedisManager):
    def __init__(self, metrics: GatewayMetrics, *args: Any, flush_interval_s: float = FLUSH_INTERVAL_S,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metrics = metrics
        self.flush_interval_s = flush_interval_s
        self._recipients: dict[str, dict[str, _Recipient]] = {}  # 命名空间 -> sid -> 声明了投递方式的连接
        self._joining: dict[str, dict[str, _Joining]] = {}  # 命名空间 -> sid -> 正在或刚刚回放的连接

    def initialize(self) -> None:
        super().initialize()
        if not self.write_only:
            self._flusher = self.server.start_background_task(self._flush_forever)

    def set_delivery(self, sid: str, namespace: str, options: DeliveryOptions) -> None:
        if options.events is None and not options.batch:
            self._recipients.get(namespace, {}).pop(sid, None)
            return
        events = frozenset(options.events) if options.events is not None else None
        self._recipients.setdefault(namespace, {})[sid] = _Recipient(events, options.batch)

    def hold(self, sid: str, namespace: str) -> None:
        """此后发给 ``sid`` 的分析事件先排队，直到对应的 :meth:`release`。"""
        joining = self._joining.setdefault(namespace, {}).setdefault(sid, _Joining())
        if joining.queue is None:
            joining.queue = deque()
        joining.depth += 1

    async def release(self, sid: str, namespace: str, replay: list[dict]) -> None:
        """给 ``sid`` 发回放的 ``monitor.update``（只在本实例）；最后一个 hold 释放时按到达顺序发排队的事件
        （回放里已有的不发）并恢复直接投递。"""
        joining = self._joining.get(namespace, {}).get(sid)
        if joining is None or joining.queue is None:
            return
        for update in replay:
            self._count_relayed(namespace, ev.MONITOR_UPDATE)
            await self._deliver(ev.MONITOR_UPDATE, [update], namespace, sid, None, queued=True)
            session_id, stamp = update["session_id"], update["timestamp"]
            joining.replayed_to[session_id] = max(stamp, joining.replayed_to.get(session_id, stamp))
        joining.depth -= 1
        if joining.depth > 0:
            return
        while joining.queue:  # 发送期间新到的事件也排在后面
            event, args = joining.queue.popleft()
            if not joining.stale(event, args):
                await self._deliver(event, args, namespace, sid, None, queued=True)
        joining.queue = None
        if not joining.replayed_to:
            self._joining[namespace].pop(sid, None)

    async def disconnect(self, sid: str, namespace: str | None = None, **kwargs: Any) -> Any:
        self._recipients.get(namespace or "/", {}).pop(sid, None)
        self._joining.get(namespace or "/", {}).pop(sid, None)
        return await super().disconnect(sid, namespace, **kwargs)

    async def _listen(self) -> AsyncIterator[Any]:
        async for message in super()._listen():
            if isinstance(message, str):
                message = message.encode()
            if isinstance(message, bytes) and message.startswith(BATCH_PREFIX):
                await self._handle_batch(message)
            else:
                yield message

    async def _handle_batch(self, message: bytes) -> None:
        try:
            batch = EmissionBatch.model_validate_json(message)
        except ValidationError as exc:
            log.warning("malformed event batch on the Socket.IO channel ignored: %s", str(exc)[:200])
            return
        for event, data, namespace, room in batch.unpacked():
            self._count_relayed(namespace, event)
            await self._deliver(event, [data], namespace, room, None)

    async def _handle_emit(self, message: dict) -> None:
        namespace = message.get("namespace") or "/"
        self._count_relayed(namespace, message.get("event"))
        if message.get("callback") or message.get("binary"):
            await super()._handle_emit(message)
            return
        data = message.get("data")
        args = data if isinstance(data, list) else [data]  # python-socketio 的消息里 data 是参数列表
        await self._deliver(message["event"], args, namespace, message.get("room"), message.get("skip_sid"))

    async def _deliver(self, event: str, args: list, namespace: str, room: Any, skip_sid: Any,
                       queued: bool = False) -> None:
        """``queued``：这是 :meth:`release` 发出的回放或排过队的事件，不再经过排队与去重。"""
        if namespace not in self.rooms:
            return
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid} if skip_sid else ()
        # 投递方式只管分析事件；auth.expired、rate_limited、信令等照常逐条发给每个收件人
        analysis = event in ev.ANALYSIS_EVENTS
        declared = self._recipients.get(namespace, {}) if analysis else {}
        joins = self._joining.get(namespace, {}) if analysis and not queued else {}
        direct: list[str] = []
        item: str | None = None
        batched = 0
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skip:
                continue
            joining = joins.get(sid)
            if joining is not None:
                if joining.queue is not None:
                    if len(joining.queue) < MAX_BACKLOG:
                        joining.queue.append((event, args))
                    else:
                        self.metrics.socket_deliveries.labels(namespace, "dropped_backlog").inc()
                    continue
                if joining.stale(event, args):
                    continue
                if not joining.replayed_to:
                    del joins[sid]
            recipient = declared.get(sid)
            if recipient is None:
                direct.append(eio_sid)
            elif recipient.events is not None and event not in recipient.events:
                continue
            elif recipient.batch:
                if item is None:
                    item = json.dumps([event, *args], separators=(",", ":"))
                recipient.pending.append(item)
                batched += 1
            else:
                direct.append(eio_sid)
        if direct and analysis:
            kept = [eio_sid for eio_sid in direct if self._backlog(eio_sid) < MAX_BACKLOG]
            if len(kept) < len(direct):
                self.metrics.socket_deliveries.labels(namespace, "dropped_backlog").inc(len(direct) - len(kept))
            direct = kept
        if direct:
            encoded = self.server.packet_class(packet.EVENT, namespace=namespace, data=[event, *args]).encode()
            pkt = eio_packet.Packet(eio_packet.MESSAGE, encoded)
            for eio_sid in direct:
                await self.server._send_eio_packet(eio_sid, pkt)
            self.metrics.socket_deliveries.labels(namespace, "direct").inc(len(direct))
        if batched:
            self.metrics.socket_deliveries.labels(namespace, "batched").inc(batched)

    def _backlog(self, eio_sid: str) -> int:
        """该连接的 Engine.IO 发送队列里还有多少条没发出。"""
        socket = self.server.eio.sockets.get(eio_sid)
        return socket.queue.qsize() if socket is not None else 0

    def _count_relayed(self, namespace: str, event: Any) -> None:
        name = event if isinstance(event, str) and event in ev.SERVER_EVENTS else "other"
        self.metrics.events_relayed.labels(namespace, name).inc()

    async def flush(self) -> None:
        """把各连接攒下的事件各发成一条 ``monitor.batch``。"""
        for namespace, recipients in list(self._recipients.items()):
            head = packet.Packet(packet.EVENT, namespace=namespace).encode() + f'["{ev.MONITOR_BATCH}",{{"events":['
            for sid, recipient in list(recipients.items()):
                if not recipient.pending:
                    continue
                items, recipient.pending = recipient.pending, []
                eio_sid = self.eio_sid_from_sid(sid, namespace)
                if eio_sid is not None:
                    text = head + ",".join(items) + "]}]"
                    await self.server._send_eio_packet(eio_sid, eio_packet.Packet(eio_packet.MESSAGE, text))

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_s)
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - 一次发送失败不能停掉攒批
                log.exception("batched delivery failed")
