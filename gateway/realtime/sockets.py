"""Socket.IO 命名空间 ``/`` 与 ``/monitor``：连接即进入 ``all`` 房间；订阅某流后只收该流的事件。

回放：``/monitor`` 的新连接先收到全部在线会话最近 10 秒的 ``monitor.update``（``replay: true``，按时间顺序），
订阅某会话/流时先收到该会话的回放，之后才进入房间接收实时事件，因此回放与实时事件不会重复。

客户端事件（带 ack）：
- ``monitor.subscribe {session_id | stream_name}`` -> ``{ok, stream_name, session_id}`` 或 ``{ok: false, error}``
- ``monitor.unsubscribe {session_id | stream_name}`` -> 同上

学生端（默认命名空间，连接时 ``auth = {publish_token}``，令牌须属于事件中的会话）：
- ``signal.offer {session_id, sdp}`` -> 先发 ``signal.answer {session_id, sdp}``，ack ``{ok: true}``；
  失败时发 ``signal.close {session_id, reason}``，ack ``{ok: false, reason, error}``
- ``signal.ice {session_id, candidate}`` / ``signal.close {session_id, reason}`` -> ``{ok}`` 或 ``{ok: false, reason, error}``
- ``session.heartbeat {session_id, ts}`` -> ``{ok}`` 或 ``{ok: false, error}``（每 2 秒一次）
- ``ppg.samples {session_id, roi_seq, samples: [[t_ms, r, g, b], ...]}`` -> ``{ok, accepted}`` 或 ``{ok: false, error}``
  （学生端按 ``ppg.roi`` 在编码前采样的皮肤颜色，每秒一批）
令牌通过校验后该连接进入会话房间，接收 ``signal.ready`` 与 ``signal.close``。
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from pydantic import ValidationError
from redis.exceptions import RedisError

from shared import events as ev
from shared.messages import (
    HeartbeatAck,
    MonitorSubscribe,
    PpgSamples,
    PpgSamplesAck,
    SessionHeartbeat,
    SignalAck,
    SignalAnswer,
    SignalClose,
    SignalCloseRequest,
    SignalIce,
    SignalOffer,
    SubscribeAck,
)

from ..errors import NotFound
from ..sessions.service import SessionService
from ..signaling.relay import SignalingError, SignalingRelay
from ..store import Stores

log = logging.getLogger(__name__)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "payload"
    return f"{where}: {err.get('msg')}"


class StreamNamespace(socketio.AsyncNamespace):
    def __init__(self, namespace: str, stores: Stores) -> None:
        super().__init__(namespace)
        self.stores = stores

    async def on_connect(self, sid: str, environ: dict, auth: Any = None) -> None:
        # 服务器以 always_connect 运行：此处已完成连接，可以先发回放
        if self.namespace == ev.NS_MONITOR:
            await self._replay(sid, None)
        await self.enter_room(sid, ev.ALL_ROOM)

    async def _replay(self, sid: str, session_ids: list[str] | None) -> None:
        """给 ``sid`` 发这些会话（None：全部在线会话）的回放；Redis 不可用时跳过回放，不影响之后的实时事件。"""
        try:
            if session_ids is None:
                session_ids = await self.stores.streams.live_sessions()
            updates = await self.stores.replay.recent(session_ids)
        except RedisError as exc:
            log.warning("replay for %s skipped: %s", sid, exc)
            return
        for update in updates:
            await self.emit(ev.MONITOR_UPDATE, update, to=sid)

    async def _resolve(self, data: Any) -> tuple[str, str] | SubscribeAck:
        try:
            req = MonitorSubscribe.model_validate(data if data is not None else {})
        except ValidationError as exc:
            return SubscribeAck(ok=False, error=_first_error(exc))
        try:
            if req.session_id is not None:
                return (await self.stores.sessions.require(req.session_id)).stream_name, req.session_id
            assert req.stream_name is not None
            return req.stream_name, await self.stores.sessions.resolve(req.stream_name)
        except NotFound as exc:
            return SubscribeAck(ok=False, error=str(exc))
        except RedisError as exc:  # 不让客户端空等 ack
            return SubscribeAck(ok=False, error=f"server_unavailable: {exc}")

    async def on_monitor_subscribe(self, sid: str, data: Any = None) -> dict:
        resolved = await self._resolve(data)
        if isinstance(resolved, SubscribeAck):
            return resolved.model_dump()
        stream_name, session_id = resolved
        await self._replay(sid, [session_id])
        await self.enter_room(sid, ev.stream_room(stream_name))
        await self.leave_room(sid, ev.ALL_ROOM)
        return SubscribeAck(ok=True, stream_name=stream_name, session_id=session_id).model_dump()

    async def on_monitor_unsubscribe(self, sid: str, data: Any = None) -> dict:
        resolved = await self._resolve(data)
        if isinstance(resolved, SubscribeAck):
            return resolved.model_dump()
        stream_name, session_id = resolved
        await self.leave_room(sid, ev.stream_room(stream_name))
        if not any(r.startswith(ev.STREAM_ROOM_PREFIX) for r in self.rooms(sid)):
            await self.enter_room(sid, ev.ALL_ROOM)
        return SubscribeAck(ok=True, stream_name=stream_name, session_id=session_id).model_dump()

    async def trigger_event(self, event: str, *args: Any) -> Any:
        # 事件名含点号，无法写成 on_<event> 方法名：在此映射
        handler = self.handlers().get(event)
        if handler is not None:
            return await handler(*args)
        return await super().trigger_event(event, *args)

    def handlers(self) -> dict[str, Callable[..., Awaitable[Any]]]:
        return {ev.MONITOR_SUBSCRIBE: self.on_monitor_subscribe, ev.MONITOR_UNSUBSCRIBE: self.on_monitor_unsubscribe}


class StudentNamespace(StreamNamespace):
    """默认命名空间：监控客户端的订阅之外，还有学生端的信令中继与心跳。"""

    def __init__(self, stores: Stores, relay: SignalingRelay, sessions: SessionService) -> None:
        super().__init__(ev.NS_DEFAULT, stores)
        self.relay = relay
        self.sessions = sessions

    def handlers(self) -> dict[str, Callable[..., Awaitable[Any]]]:
        return {
            **super().handlers(),
            ev.SIGNAL_OFFER: self.on_signal_offer,
            ev.SIGNAL_ICE: self.on_signal_ice,
            ev.SIGNAL_CLOSE: self.on_signal_close,
            ev.SESSION_HEARTBEAT: self.on_session_heartbeat,
            ev.PPG_SAMPLES: self.on_ppg_samples,
        }

    async def on_connect(self, sid: str, environ: dict, auth: Any = None) -> None:
        token = auth.get("publish_token") if isinstance(auth, dict) else None
        await self.save_session(sid, {"publish_token": token if isinstance(token, str) else None})
        await super().on_connect(sid, environ, auth)

    async def _token(self, sid: str) -> str | None:
        return (await self.get_session(sid)).get("publish_token")

    async def on_signal_offer(self, sid: str, data: Any = None) -> dict:
        async def run(req: SignalOffer) -> None:
            answer = await self.relay.offer(req.session_id, await self._token(sid), req.sdp)
            await self.enter_room(sid, ev.session_room(req.session_id))
            await self.emit(ev.SIGNAL_ANSWER, SignalAnswer(session_id=req.session_id, sdp=answer).model_dump(), to=sid)

        return await self._signal(sid, SignalOffer, data, run, notify=True)

    async def on_signal_ice(self, sid: str, data: Any = None) -> dict:
        async def run(req: SignalIce) -> None:
            await self.relay.ice(req.session_id, await self._token(sid), req.candidate)

        return await self._signal(sid, SignalIce, data, run)

    async def on_signal_close(self, sid: str, data: Any = None) -> dict:
        async def run(req: SignalCloseRequest) -> None:
            await self.relay.close(req.session_id, await self._token(sid))
            log.info("session %s: student closed the media session (%s)", req.session_id, req.reason or "no reason")

        return await self._signal(sid, SignalCloseRequest, data, run)

    async def on_session_heartbeat(self, sid: str, data: Any = None) -> dict:
        """学生端心跳：令牌须属于该会话；记录时间，并让该连接进入会话房间。"""

        async def run(beat: SessionHeartbeat) -> None:
            await self.sessions.heartbeat(beat.session_id)
            await self.enter_room(sid, ev.session_room(beat.session_id))

        _, error = await self._for_session(sid, SessionHeartbeat, data, run)
        return HeartbeatAck(ok=error is None, error=error).model_dump()

    async def on_ppg_samples(self, sid: str, data: Any = None) -> dict:
        """学生端在编码前采样的皮肤颜色（每秒一批）：令牌须属于该会话；写入会话的样本流，由所属工作进程读取。"""

        async def run(batch: PpgSamples) -> None:
            await self.stores.pulse.add(batch.session_id, batch)

        batch, error = await self._for_session(sid, PpgSamples, data, run)
        accepted = None if error is not None else len(batch.samples)
        return PpgSamplesAck(ok=error is None, accepted=accepted, error=error).model_dump()

    async def _for_session(
        self, sid: str, model: type[Any], data: Any, run: Callable[[Any], Awaitable[None]]
    ) -> tuple[Any, str | None]:
        """校验载荷、核对连接的令牌属于其中的会话，然后执行 ``run``；返回 (载荷, 错误说明；成功时 None)。"""
        req = None
        try:
            req = model.model_validate(data if data is not None else {})
            await self.relay.authorize(req.session_id, await self._token(sid))
            await run(req)
        except ValidationError as exc:
            return req, _first_error(exc)
        except SignalingError as exc:
            return req, f"{exc.reason}: {exc.detail}"
        except NotFound as exc:
            return req, str(exc)
        except RedisError as exc:
            return req, f"server_unavailable: {exc}"
        return req, None

    async def _signal(
        self, sid: str, model: type[Any], data: Any, run: Callable[[Any], Awaitable[None]], notify: bool = False
    ) -> dict:
        """校验载荷并执行；任何失败都变成带原因的 ack（``notify`` 时另发 ``signal.close``），不让客户端空等。"""
        try:
            req = model.model_validate(data if data is not None else {})
        except ValidationError as exc:
            return SignalAck(ok=False, reason="bad_request", error=_first_error(exc)).model_dump()
        try:
            await run(req)
        except SignalingError as exc:
            log.info("%s for session %s refused: %s (%s)", model.__name__, req.session_id, exc.reason, exc.detail)
            if notify:
                close = SignalClose(session_id=req.session_id, reason=exc.reason).model_dump()
                await self.emit(ev.SIGNAL_CLOSE, close, to=sid)
            return SignalAck(ok=False, reason=exc.reason, error=exc.detail).model_dump()
        except RedisError as exc:
            return SignalAck(ok=False, reason="server_unavailable", error=str(exc)).model_dump()
        return SignalAck(ok=True).model_dump()
