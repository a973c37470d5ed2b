"""网关的进程内单元测试（不启动 Redis 与任何服务）：后台循环的退避、MediaMTX API 与 WHIP 客户端的有限次重试、
/monitor 连接与订阅在 Redis 不可用时的处理、清理任务在结束会话失败时的重试。存储与会话服务是测试里的替身。"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Awaitable, Callable
from typing import cast

import httpx
import pytest
import socketio
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway import periodic
from gateway.auth.credentials import Credentials
from gateway.auth.tokens import Grant
from gateway.media.mediamtx import MediaMtxApi
from gateway.media.paths import PathWatcher
from gateway.metrics import GatewayMetrics
from gateway.realtime.sockets import ViewerNamespace
from gateway.sessions.reaper import reap_once
from gateway.sessions.service import SessionService
from gateway.sessions.streams import StreamService
from gateway.sessions.timeline import TimelineService
from gateway.signaling.whip import WhipClient, WhipError
from gateway.store import Stores
from gateway.store.liveness import LivenessStore
from shared import events as ev
from shared.settings import Settings


def test_run_every_backs_off_from_twice_the_interval_up_to_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes = [False, False, False, False, True, False]  # True：这一步成功
    waits: list[float] = []
    stop = asyncio.Event()

    async def step() -> None:
        if not outcomes.pop(0):
            raise RuntimeError("down")

    async def fake_wait_for(awaitable: Awaitable[object], timeout: float) -> None:
        waits.append(timeout)
        if hasattr(awaitable, "close"):
            awaitable.close()
        if not outcomes:
            stop.set()
        raise TimeoutError

    monkeypatch.setattr(periodic, "asyncio", types.SimpleNamespace(wait_for=fake_wait_for))
    asyncio.run(periodic.run_every(1.0, step, stop, "test loop", max_backoff_s=5.0))
    # 连续失败：2、4、5（上限）、5；成功后回到间隔 1；再失败从 2 起
    assert waits == [2.0, 4.0, 5.0, 5.0, 1.0, 2.0]


def _transport(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://mediamtx:9997")


def test_mediamtx_api_retries_transport_errors_a_bounded_number_of_times() -> None:
    calls: list[str] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) < 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"name": "p", "available": True})

    async def run(handler: Callable[[httpx.Request], httpx.Response]) -> bool:
        api = MediaMtxApi("http://mediamtx:9997")
        await api.client.aclose()
        api.client = _transport(handler)
        try:
            return await api.path_available("p")
        finally:
            await api.aclose()

    assert asyncio.run(run(flaky)) is True and calls == ["/v3/paths/get/p"] * 3
    calls.clear()

    def down(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(httpx.ConnectError):
        asyncio.run(run(down))
    assert len(calls) == 3  # 1 次 + 2 次重试


def _whip_delete(handler: Callable[[httpx.Request], httpx.Response]) -> None:
    async def run() -> None:
        whip = WhipClient("http://mediamtx:8889", timeout_s=1.0)
        await whip.client.aclose()
        whip.client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        try:
            await whip.delete("http://mediamtx:8889/p/whip/res-1", "token")
        finally:
            await whip.aclose()

    asyncio.run(run())


def test_whip_delete_retries_unreachable_but_not_timeouts_or_refusals() -> None:
    calls: list[str] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) < 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(404)  # 资源已不存在：视为成功

    _whip_delete(flaky)
    assert calls == ["DELETE"] * 3

    for error, reason in ((httpx.ConnectError, "whip_unreachable"), (httpx.ReadTimeout, "whip_timeout")):
        calls.clear()

        def failing(request: httpx.Request, error: type[httpx.TransportError] = error) -> httpx.Response:
            calls.append(request.method)
            raise error("no", request=request)

        with pytest.raises(WhipError) as caught:
            _whip_delete(failing)
        assert caught.value.reason == reason
        assert len(calls) == (3 if reason == "whip_unreachable" else 1)  # 超时不重试

    calls.clear()

    def refused(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return httpx.Response(500, text="boom")

    with pytest.raises(WhipError) as caught:
        _whip_delete(refused)
    assert caught.value.reason == "whip_status_500" and calls == ["DELETE"]


def _viewer_namespace(stores: object, grant: Grant | None = None) -> tuple[ViewerNamespace, list]:
    """进程内的 /monitor 命名空间：凭据总是给出 ``grant``，后台任务被收集起来由测试自己运行。"""

    class Creds:
        async def teacher(self, auth: object) -> Grant:
            assert grant is not None
            return grant

    tasks: list = []
    holds: list[tuple[str, list[dict] | None]] = []  # (sid, None) = hold；(sid, 回放) = release

    async def release(sid: str, namespace: str, replay: list[dict]) -> None:
        holds.append((sid, replay))

    ns = ViewerNamespace(ev.NS_MONITOR, cast(Stores, stores), cast(Credentials, Creds()), Settings(), GatewayMetrics(),
                         cast(TimelineService, None))
    ns.server = cast(socketio.AsyncServer, types.SimpleNamespace(
        start_background_task=lambda fn, *args: tasks.append(task := asyncio.ensure_future(fn(*args))) or task,
        manager=types.SimpleNamespace(is_connected=lambda sid, namespace: True, set_delivery=lambda *args: None,
                                      hold=lambda sid, namespace: holds.append((sid, None)), release=release,
                                      holds=holds),
    ))
    return ns, tasks


def test_monitor_client_joins_the_all_room_even_when_replay_cannot_be_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis 暂时不可用时 /monitor 的新连接跳过回放，但仍进入 all 房间，排队的实时事件也被放开
    （否则它此后收不到任何实时事件）。"""

    class DownStreams:
        async def live_sessions(self, exam_id: str | None = None) -> list[str]:
            raise RedisConnectionError("redis down")

    grant = Grant("g-1", "teacher-1", None, expires_at=2e9, renew_until=2e9)
    ns, tasks = _viewer_namespace(types.SimpleNamespace(streams=DownStreams()), grant)
    rooms: list[str] = []
    emitted: list[str] = []

    async def enter_room(sid: str, room: str, namespace: str | None = None) -> None:
        rooms.append(room)

    async def emit(event: str, *args: object, **kwargs: object) -> None:
        emitted.append(event)

    monkeypatch.setattr(ns, "enter_room", enter_room)
    monkeypatch.setattr(ns, "emit", emit)

    async def connect_then_replay() -> None:
        await ns.on_connect("sid-1", {}, {"token": "x"})
        await asyncio.gather(*tasks)

    asyncio.run(connect_then_replay())
    assert rooms == [ev.ALL_ROOM] and emitted == []
    assert ns.server.manager.holds == [("sid-1", None), ("sid-1", [])]  # hold 住，再以空回放放开


def test_subscribe_while_redis_is_down_gets_an_error_ack_instead_of_none() -> None:
    class DownSessions:
        async def require(self, session_id: str) -> object:
            raise RedisConnectionError("redis down")

        async def resolve(self, stream_name: str) -> str:
            raise RedisConnectionError("redis down")

    ns, _ = _viewer_namespace(types.SimpleNamespace(sessions=DownSessions()))
    for request in ({"session_id": "3f2b8c1e-0000-4000-8000-000000000001"}, {"stream_name": "exam-a-user-1"}):
        ack = asyncio.run(ns.on_monitor_subscribe("sid-1", request))
        assert ack["ok"] is False and ack["error"].startswith("server_unavailable"), ack


def test_reaper_retries_a_session_whose_end_failed_and_still_ends_the_rest_of_the_batch() -> None:
    """清理任务认领（ZREM）后结束会话失败：该会话放回集合、下一次扫描再结束；同批其他会话不受影响。"""

    class Liveness:
        def __init__(self) -> None:
            self.silent = ["s-a", "s-b", "s-c"]

        async def claim_silent(self, timeout_s: float) -> list[str]:
            claimed, self.silent = self.silent, []
            return claimed

        async def claim_without_media(self, timeout_s: float) -> list[str]:
            return []

        async def requeue_silent(self, session_id: str) -> None:
            self.silent.append(session_id)

        async def requeue_awaiting_media(self, session_id: str) -> None:
            raise AssertionError("不应放回等待媒体集合")

    class Sessions:
        def __init__(self) -> None:
            self.ended: list[str] = []
            self.failures = {"s-b": 1}

        async def end(self, session_id: str, reason: str) -> None:
            if self.failures.pop(session_id, 0):
                raise RedisConnectionError("redis blip")
            self.ended.append(f"{session_id}:{reason}")

    liveness, sessions = Liveness(), Sessions()
    settings = Settings(api_key="k")
    run = lambda: reap_once(cast(SessionService, sessions), cast(LivenessStore, liveness), settings)  # noqa: E731
    asyncio.run(run())
    assert sessions.ended == ["s-a:heartbeat_timeout", "s-c:heartbeat_timeout"] and liveness.silent == ["s-b"]
    asyncio.run(run())
    assert sessions.ended[-1] == "s-b:heartbeat_timeout" and liveness.silent == []


def test_hook_that_the_mediamtx_api_cannot_confirm_changes_nothing() -> None:
    """钩子没有身份：配置了 MediaMTX API 时以它为准；API 不可达时失败即拒绝（不启动也不停止分析），由对账补上。"""

    class DownApi:
        async def path_available(self, path: str) -> bool:
            raise httpx.ConnectError("mediamtx api down")

    class NoStreams:
        async def start(self, *args: object) -> None:
            raise AssertionError("不应启动分析")

    class Sessions:
        async def for_path(self, path: str) -> object:
            raise AssertionError("核实不了时不应再查会话")

    stores = cast(Stores, types.SimpleNamespace(sessions=Sessions(), streams=types.SimpleNamespace()))
    watcher = PathWatcher(stores, cast(StreamService, NoStreams()), Settings(api_key="k"), cast(MediaMtxApi, DownApi()), None)
    for available in (True, False):
        result = asyncio.run(watcher.on_hook("exam-a-user-1", available))
        assert result.action == "none" and result.session_id is None

