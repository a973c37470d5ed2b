"""Socket.IO 命名空间 ``/monitor``（教师）与 ``/``（教师与学生端）。每个连接都要凭据（见 gateway/auth/credentials.py）：

- 教师：``auth = {token}``（``POST /api/monitor/token`` 签发的监控令牌）。连接进入广播房间（未限定考试：``all``；
  限定考试：``exam:<考试>``，只收该考试的会话）；订阅某会话/流后只收该流的事件。令牌过期或被撤销时先收到
  ``auth.expired`` 再被断开；页面在过期前发 ``auth.renew`` 换新令牌。
- 学生端（只在 ``/``）：``auth = {publish_token}``。连接只进入自己会话的房间，收不到任何别的会话的数据；
  事件里的 ``session_id`` 必须是自己的会话。
- 没有凭据、凭据无效、会话已结束：连接被拒绝（``connect_error``，``data.reason`` 为原因代码）。
- 教师连接可在 ``auth`` 里声明投递方式（:class:`shared.messages.DeliveryOptions`）：``events`` 只收这些分析事件，
  ``batch: true`` 收每 50 ms 至多一条的 ``monitor.batch``（见 gateway/realtime/fanout.py）；不合法时拒绝连接
  （``bad_delivery_options``）。

回放：教师连接先收到它能看的在线会话最近 10 秒的 ``monitor.update``（``replay: true``，按时间顺序，合计不超过
``REPLAY_MAX_BYTES``）；订阅某会话时先收到该会话的回放（已订阅的再次订阅不重发），之后才是实时事件。读回放期间
到达的实时事件先排队（见 gateway/realtime/fanout.py 的 hold/release），所以回放与实时事件不交错、不重复、不漏。

客户端事件（带 ack）：
- ``monitor.subscribe {session_id | stream_name}`` -> ``{ok, stream_name, session_id}`` 或 ``{ok: false, error}``
  （限定考试的令牌只能订阅该考试的会话；学生端只能订阅自己的会话）
- ``monitor.unsubscribe {session_id | stream_name}`` -> 同上
- ``auth.renew`` -> ``{ok, token, expires_at}``（教师连接：同一授权的新令牌，连接的有效期随之延长）
- ``monitor.timeline {session_id}`` -> :class:`shared.api.SessionTimeline`（会话页：整场的时间序列、报告、复核标记）
  或 ``{ok: false, error}``（教师连接，权限同订阅）
- ``monitor.review {session_id, episode_id, reviewed, note}`` -> ``{ok, review}`` 或 ``{ok: false, error}``：保存复核标记，
  随后订阅了该会话的教师连接都收到 ``monitor.review``（含发出者自己）

学生端（默认命名空间）：
- ``signal.offer {session_id, sdp}`` -> 先发 ``signal.answer {session_id, sdp}``，ack ``{ok: true}``；
  失败时发 ``signal.close {session_id, reason}``，ack ``{ok: false, reason, error}``
- ``signal.ice {session_id, candidate}`` / ``signal.close {session_id, reason}`` -> ``{ok}`` 或 ``{ok: false, reason, error}``
- ``session.heartbeat {session_id, ts}`` -> ``{ok}`` 或 ``{ok: false, error}``（每 2 秒一次）
- ``ppg.samples {session_id, roi_seq, samples: [[t_ms, r, g, b], ...]}`` -> ``{ok, accepted}`` 或 ``{ok: false, error}``
  （学生端按 ``ppg.roi`` 在编码前采样的皮肤颜色，每秒一批）
学生连接所在的会话房间接收 ``signal.ready``、``signal.close`` 与 ``ppg.roi``。

限速、保留事件名与消息大小由 :class:`gateway.realtime.server.GuardedServer` 统一把关。
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import socketio
from pydantic import ValidationError
from redis.exceptions import RedisError

from shared import events as ev
from shared.api import SessionInfo
from shared.messages import (
    DeliveryOptions,
    HeartbeatAck,
    MonitorSubscribe,
    PpgSamples,
    PpgSamplesAck,
    ReviewAck,
    ReviewRequest,
    SessionHeartbeat,
    SignalAck,
    SignalAnswer,
    SignalClose,
    SignalCloseRequest,
    SignalIce,
    SignalOffer,
    SubscribeAck,
    TimelineRequest,
    iso_utc,
)
from shared.settings import Settings

from ..auth.credentials import Credentials, Student
from ..auth.tokens import Grant, TokenRefused
from ..errors import NotFound
from ..metrics import GatewayMetrics
from ..sessions.service import SessionService
from ..sessions.timeline import TimelineService
from ..signaling.relay import SignalingError, SignalingRelay
from ..store import Stores

log = logging.getLogger(__name__)
T = TypeVar("T")


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "payload"
    return f"{where}: {err.get('msg')}"


def _refused(reason: str, message: str) -> socketio.exceptions.ConnectionRefusedError:
    """拒绝连接：客户端收到 ``connect_error``，``message`` 是说明，``data = {reason}``。"""
    return socketio.exceptions.ConnectionRefusedError(message, {"reason": reason})


_EVENT_OF: dict[type, str] = {SignalOffer: ev.SIGNAL_OFFER, SignalIce: ev.SIGNAL_ICE, SignalCloseRequest: ev.SIGNAL_CLOSE}


def broadcast_room(grant: Grant) -> str:
    return ev.exam_room(grant.exam_id) if grant.exam_id is not None else ev.ALL_ROOM


class ViewerNamespace(socketio.AsyncNamespace):
    """教师连接：凭监控令牌连接、收广播与回放、订阅单个会话、续期；过期或撤销的连接由 :meth:`expire` 断开。"""

    def __init__(self, namespace: str, stores: Stores, credentials: Credentials, settings: Settings,
                 metrics: GatewayMetrics, timelines: TimelineService) -> None:
        super().__init__(namespace)
        self.stores = stores
        self.timelines = timelines
        self.credentials = credentials
        self.settings = settings
        self.metrics = metrics
        self.viewers: dict[str, Grant] = {}  # 本实例上的教师连接
        self._tasks: set[asyncio.Task] = set()

    async def on_connect(self, sid: str, environ: dict, auth: Any = None) -> None:
        try:
            options = DeliveryOptions.model_validate(auth if isinstance(auth, dict) else {})
        except ValidationError as exc:
            raise _refused("bad_delivery_options", f"auth 里的投递方式不合法：{_first_error(exc)}") from None
        await self._admit_teacher(sid, await self.checked(self.credentials.teacher(auth)))
        self.server.manager.set_delivery(sid, self.namespace, options)

    async def checked(self, lookup: Awaitable[T]) -> T:
        """凭据查找的结果；凭据不可用或 Redis 不可用时拒绝连接（计入指标）。"""
        try:
            return await lookup
        except TokenRefused as exc:
            self.metrics.auth_refusals.labels(f"socketio{self.namespace}", exc.reason).inc()
            raise _refused(exc.reason, exc.detail) from None
        except RedisError:
            raise _refused("server_unavailable", "服务暂不可用，请稍后重连") from None

    async def _admit_teacher(self, sid: str, grant: Grant) -> None:
        self.viewers[sid] = grant
        replays = self.namespace == ev.NS_MONITOR  # 默认命名空间的教师连接（种子 000 的前端）照旧不回放
        if replays:
            self.server.manager.hold(sid, self.namespace)  # 回放发完之前，实时事件对它排队
        await self.enter_room(sid, broadcast_room(grant))
        self.metrics.socket_clients.labels(self.namespace, "teacher").inc()
        # 连接在本处理函数返回后才被确认：审计与回放放到后台任务里，在确认之后发出（持有任务的引用，免得它被回收）
        task = self.server.start_background_task(self._replay_wall, sid, grant, replays)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        if self.viewers.pop(sid, None) is not None:
            self.metrics.socket_clients.labels(self.namespace, "teacher").dec()

    async def _replay_wall(self, sid: str, grant: Grant, replays: bool) -> None:
        for _ in range(100):  # 等连接确认（通常已经确认）
            if self.server.manager.is_connected(sid, self.namespace):
                break
            await asyncio.sleep(0.01)
        session_ids: list[str] = []
        try:
            session_ids = await self.stores.streams.live_sessions(grant.exam_id)
            await self.stores.viewers.record(session_ids, grant.teacher, grant.grant_id, "wall")
        except RedisError as exc:
            log.warning("live sessions or audit record for %s not available: %s", sid, exc)  # 仍要放开排队的事件
        if replays:
            await self._replay(sid, session_ids)

    async def _replay(self, sid: str, session_ids: list[str]) -> None:
        """给已 hold 住的 ``sid`` 发这些会话的回放，再放开排队的实时事件；Redis 不可用时只是没有回放。"""
        updates: list[dict] = []
        try:
            if session_ids:
                updates = await self.stores.replay.recent(session_ids, self.settings.replay_max_bytes)
        except RedisError as exc:
            log.warning("replay for %s skipped: %s", sid, exc)
        finally:
            await self.server.manager.release(sid, self.namespace, updates)

    async def _resolve(self, sid: str, data: Any) -> tuple[str, str] | SubscribeAck:
        """订阅目标 -> (流名, 会话 ID)；不合法、不存在或该连接无权查看时返回带原因的 ack。"""
        try:
            req = MonitorSubscribe.model_validate(data if data is not None else {})
        except ValidationError as exc:
            return SubscribeAck(ok=False, error=_first_error(exc))
        try:
            if req.session_id is not None:
                info = await self.stores.sessions.require(req.session_id)
                stream_name, session_id, exam_id = info.stream_name, info.session_id, info.exam_id
            else:
                assert req.stream_name is not None
                stream_name, session_id = req.stream_name, await self.stores.sessions.resolve(req.stream_name)
                found = await self.stores.sessions.get(session_id)
                exam_id = found.exam_id if found is not None else None
        except NotFound as exc:
            return SubscribeAck(ok=False, error=str(exc))
        except RedisError as exc:  # 不让客户端空等 ack
            return SubscribeAck(ok=False, error=f"server_unavailable: {exc}")
        refusal = await self.may_view(sid, session_id, exam_id)
        if refusal is not None:
            return SubscribeAck(ok=False, error=refusal)
        return stream_name, session_id

    async def may_view(self, sid: str, session_id: str, exam_id: str | None) -> str | None:
        """该连接能否查看这个会话：能时 None，否则是说明。"""
        grant = self.viewers.get(sid)
        if grant is None:
            return "forbidden: 该连接不是教师连接"
        if not grant.sees_exam(exam_id):
            return f"forbidden: 令牌只限考试 {grant.exam_id}，不能查看该会话"
        return None

    async def on_monitor_subscribe(self, sid: str, data: Any = None) -> dict:
        resolved = await self._resolve(sid, data)
        if isinstance(resolved, SubscribeAck):
            return resolved.model_dump()
        stream_name, session_id = resolved
        room = ev.stream_room(stream_name)
        grant = self.viewers.get(sid)
        if room not in self.rooms(sid):  # 每次订阅只回放一次
            if grant is not None:
                await self._record(grant, session_id)
            self.server.manager.hold(sid, self.namespace)
            await self.enter_room(sid, room)
            await self._replay(sid, [session_id])
        if grant is not None:
            await self.leave_room(sid, broadcast_room(grant))
        return SubscribeAck(ok=True, stream_name=stream_name, session_id=session_id).model_dump()

    async def _record(self, grant: Grant, session_id: str) -> None:
        try:
            await self.stores.viewers.record([session_id], grant.teacher, grant.grant_id, "subscribe")
        except RedisError as exc:
            log.warning("audit record for %s not written: %s", session_id, exc)

    async def on_monitor_unsubscribe(self, sid: str, data: Any = None) -> dict:
        resolved = await self._resolve(sid, data)
        if isinstance(resolved, SubscribeAck):
            return resolved.model_dump()
        stream_name, session_id = resolved
        await self.leave_room(sid, ev.stream_room(stream_name))
        grant = self.viewers.get(sid)
        if grant is not None and not any(r.startswith(ev.STREAM_ROOM_PREFIX) for r in self.rooms(sid)):
            await self.enter_room(sid, broadcast_room(grant))
        return SubscribeAck(ok=True, stream_name=stream_name, session_id=session_id).model_dump()

    async def on_auth_renew(self, sid: str, data: Any = None) -> dict:
        grant = self.viewers.get(sid)
        if grant is None:
            return {"ok": False, "error": "forbidden: 只有教师连接能续期"}
        try:
            await self.credentials.check_not_revoked(grant)
            token, renewed = self.credentials.tokens.renew(grant)
        except TokenRefused as exc:
            return {"ok": False, "reason": exc.reason, "error": exc.detail}
        except RedisError as exc:
            return {"ok": False, "reason": "server_unavailable", "error": str(exc)}
        self.viewers[sid] = renewed
        return {"ok": True, "token": token, "expires_at": iso_utc(renewed.expires_at)}

    async def _for_teacher(
        self, sid: str, model: type[Any], data: Any, run: Callable[[Any, Grant, SessionInfo], Awaitable[dict]]
    ) -> dict:
        """教师连接对某个会话的请求：校验载荷、核对该连接能看这个会话，然后 ``run(请求, 授权, 会话记录)``；
        任何失败（载荷不合法、不是教师连接、会话不存在、无权查看、Redis 不可用）都是 ``{ok: false, error}``。"""
        try:
            req = model.model_validate(data if data is not None else {})
        except ValidationError as exc:
            return {"ok": False, "error": _first_error(exc)}
        grant = self.viewers.get(sid)
        if grant is None:
            return {"ok": False, "error": "forbidden: 只有教师连接能查看会话数据"}
        try:
            info = await self.stores.sessions.require(req.session_id)
            refusal = await self.may_view(sid, req.session_id, info.exam_id)
            if refusal is not None:
                return {"ok": False, "error": refusal}
            return await run(req, grant, info)
        except NotFound as exc:
            return {"ok": False, "error": str(exc)}
        except RedisError as exc:
            return {"ok": False, "error": f"server_unavailable: {exc}"}

    async def on_monitor_timeline(self, sid: str, data: Any = None) -> dict:
        async def run(req: TimelineRequest, grant: Grant, info: SessionInfo) -> dict:
            await self._record(grant, req.session_id)
            return (await self.timelines.timeline(info)).model_dump()

        return await self._for_teacher(sid, TimelineRequest, data, run)

    async def on_monitor_review(self, sid: str, data: Any = None) -> dict:
        async def run(req: ReviewRequest, grant: Grant, info: SessionInfo) -> dict:
            review = await self.timelines.review(info, req, teacher=grant.teacher)
            return ReviewAck(ok=True, review=review).model_dump()

        return await self._for_teacher(sid, ReviewRequest, data, run)

    async def expire(self, now: float) -> int:
        """断开本实例上令牌已过期或授权被撤销的教师连接（先发 ``auth.expired``），返回断开的连接数。
        由网关的后台任务周期调用（撤销时也立即调用一次）。"""
        grants = dict(self.viewers)
        revoked = await self.stores.grants.revoked(sorted({g.grant_id for g in grants.values()}))
        dropped = 0
        for sid, grant in grants.items():
            reason = "token_revoked" if grant.grant_id in revoked else "token_expired" if now >= grant.expires_at else None
            if reason is not None:
                await self.emit(ev.AUTH_EXPIRED, {"reason": reason}, to=sid)
                self.metrics.socket_disconnects.labels(self.namespace, reason).inc()
                await self.disconnect(sid)
                dropped += 1
        return dropped

    def _on_wall(self, sid: str) -> bool:
        return not any(r.startswith(ev.STREAM_ROOM_PREFIX) for r in self.rooms(sid))

    async def audit_walls(self) -> None:
        """监控墙（广播）连接看到了它能看的全部在线会话：为每个 (授权, 会话) 补一条首次记录（幂等）。
        连接时已记下当时在线的会话；这一步由后台任务周期调用，补上之后才开始的会话。"""
        grants = {g for sid, g in list(self.viewers.items()) if self._on_wall(sid)}
        by_exam: dict[str | None, list[str]] = {}
        for grant in grants:
            if grant.exam_id not in by_exam:
                by_exam[grant.exam_id] = await self.stores.streams.live_sessions(grant.exam_id)
            await self.stores.viewers.record(by_exam[grant.exam_id], grant.teacher, grant.grant_id, "wall")

    async def trigger_event(self, event: str, *args: Any) -> Any:
        # 事件名含点号，无法写成 on_<event> 方法名：在此映射；未知事件回带原因的 ack
        if event in ("connect", "disconnect"):
            return await super().trigger_event(event, *args)
        handler = self.handlers().get(event)
        if handler is None:
            return {"ok": False, "reason": "unknown_event", "error": f"没有事件 {event[:64]!r}"}
        return await handler(*args)

    def handlers(self) -> dict[str, Callable[..., Awaitable[Any]]]:
        return {
            ev.MONITOR_SUBSCRIBE: self.on_monitor_subscribe,
            ev.MONITOR_UNSUBSCRIBE: self.on_monitor_unsubscribe,
            ev.AUTH_RENEW: self.on_auth_renew,
            ev.MONITOR_TIMELINE: self.on_monitor_timeline,
            ev.MONITOR_REVIEW: self.on_monitor_review,
        }


class StudentNamespace(ViewerNamespace):
    """默认命名空间：教师连接之外，还有学生端连接（只属于自己的会话）的信令中继、心跳与皮肤颜色样本。"""

    def __init__(self, stores: Stores, credentials: Credentials, settings: Settings, metrics: GatewayMetrics,
                 timelines: TimelineService, relay: SignalingRelay, sessions: SessionService) -> None:
        super().__init__(ev.NS_DEFAULT, stores, credentials, settings, metrics, timelines)
        self.relay = relay
        self.sessions = sessions
        self.students: dict[str, Student] = {}  # 本实例上的学生连接

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
        if isinstance(auth, dict) and "publish_token" in auth and "token" not in auth:
            await self._admit_student(sid, auth)
        else:
            await super().on_connect(sid, environ, auth)

    async def _admit_student(self, sid: str, auth: Any) -> None:
        student = await self.checked(self.credentials.student(auth))
        self.students[sid] = student
        await self.enter_room(sid, ev.session_room(student.session_id))
        self.metrics.socket_clients.labels(self.namespace, "student").inc()

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        if self.students.pop(sid, None) is not None:
            self.metrics.socket_clients.labels(self.namespace, "student").dec()
        await super().on_disconnect(sid, reason)

    async def may_view(self, sid: str, session_id: str, exam_id: str | None) -> str | None:
        student = self.students.get(sid)
        if student is not None:
            return None if student.session_id == session_id else "forbidden: 学生端只能查看自己的会话"
        return await super().may_view(sid, session_id, exam_id)

    def _token(self, sid: str) -> str | None:
        student = self.students.get(sid)
        return student.token if student is not None else None

    async def on_signal_offer(self, sid: str, data: Any = None) -> dict:
        async def run(req: SignalOffer) -> None:
            answer = await self.relay.offer(req.session_id, self._token(sid), req.sdp)
            await self.emit(ev.SIGNAL_ANSWER, SignalAnswer(session_id=req.session_id, sdp=answer).model_dump(), to=sid)

        return await self._signal(sid, SignalOffer, data, run, notify=True)

    async def on_signal_ice(self, sid: str, data: Any = None) -> dict:
        async def run(req: SignalIce) -> None:
            await self.relay.ice(req.session_id, self._token(sid), req.candidate)

        return await self._signal(sid, SignalIce, data, run)

    async def on_signal_close(self, sid: str, data: Any = None) -> dict:
        async def run(req: SignalCloseRequest) -> None:
            await self.relay.close(req.session_id, self._token(sid))
            log.info("session %s: student closed the media session (%s)", req.session_id, req.reason or "no reason")

        return await self._signal(sid, SignalCloseRequest, data, run)

    async def on_session_heartbeat(self, sid: str, data: Any = None) -> dict:
        """学生端心跳：令牌须属于该会话；记录时间。"""

        async def run(beat: SessionHeartbeat) -> None:
            await self.sessions.heartbeat(beat.session_id)

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
            await self.relay.authorize(self._own(sid, req.session_id), self._token(sid))
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
        event = _EVENT_OF.get(model, model.__name__)
        try:
            self._own(sid, req.session_id)
            await run(req)
        except SignalingError as exc:
            self.metrics.signaling.labels(event, exc.reason).inc()
            log.info("%s for session %s refused: %s (%s)", model.__name__, req.session_id, exc.reason, exc.detail)
            if notify:
                close = SignalClose(session_id=req.session_id, reason=exc.reason).model_dump()
                await self.emit(ev.SIGNAL_CLOSE, close, to=sid)
            return SignalAck(ok=False, reason=exc.reason, error=exc.detail).model_dump()
        except RedisError as exc:
            self.metrics.signaling.labels(event, "server_unavailable").inc()
            return SignalAck(ok=False, reason="server_unavailable", error=str(exc)).model_dump()
        self.metrics.signaling.labels(event, "ok").inc()
        return SignalAck(ok=True).model_dump()

    def _own(self, sid: str, session_id: str) -> str:
        """学生连接只能为自己的会话发事件；否则 :class:`SignalingError`。"""
        student = self.students.get(sid)
        if student is None:
            raise SignalingError("forbidden", "该连接没有推流令牌（学生端连接时 auth.publish_token）")
        if student.session_id != session_id:
            raise SignalingError("forbidden", "推流令牌不属于该会话")
        return session_id
