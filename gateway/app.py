"""ASGI 应用工厂。所有对象都在 ``create_app`` 中创建并挂在 app.state 上，没有模块级全局实例。

组装顺序即数据流：Redis 存储（store/）-> 访问控制（auth/）-> 流程服务（sessions/）与信令中继（signaling/）-> 入口：
REST 与 MediaMTX 回调（http/）、Socket.IO 命名空间（realtime/）；后台任务：心跳超时清理、MediaMTX 路径轮询、
过期或被撤销的教师连接的断开。

开发模式（``DEV_MODE``）之外，缺少或过短的密钥让网关拒绝启动（见 :meth:`Settings.secret_problems`）。
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import get_args

import socketio
from fastapi import FastAPI

from shared import events as ev
from shared.api import ConsumerState
from shared.keys import RedisKeys
from shared.settings import Settings

from .auth.credentials import Credentials
from .auth.limits import KeyedLimiter
from .auth.tokens import MonitorTokens
from .http import api, media_hooks, metrics_page, monitor_tokens, pages
from .http.headers import SecurityHeaders
from .http.request_metrics import RequestMetrics
from .media.mediamtx import MediaMtxApi
from .media.paths import PathWatcher
from .metrics import GatewayMetrics
from .periodic import run_every
from .realtime.fanout import FanoutManager
from .realtime.server import GuardedServer
from .realtime.sockets import StudentNamespace, ViewerNamespace
from .sessions.reaper import reap_silent_sessions
from .sessions.service import SessionService
from .sessions.streams import StreamService
from .sessions.timeline import TimelineService
from .signaling.relay import SignalingRelay
from .signaling.whip import WhipClient
from .store import Stores
from .store.client import connect

# 检查教师连接的令牌是否过期或被撤销（并补写监控墙的审计记录）的周期
VIEWER_CHECK_S = 5.0
# 为监控墙连接补写审计记录（之后才开始的会话）的周期
AUDIT_WALLS_S = 30.0


def create_app(settings: Settings) -> socketio.ASGIApp:
    problems = settings.secret_problems()
    if not settings.api_key or (problems and not settings.dev_mode):
        raise ValueError("密钥不合格（开发时可设 DEV_MODE=1）：" + "；".join(problems))
    keys = RedisKeys(settings.key_prefix)
    client = connect(settings)
    stores = Stores.open(client, keys)
    metrics = GatewayMetrics()
    tokens = MonitorTokens(settings.monitor_token_secret or settings.api_key, settings.monitor_token_ttl_s,
                           settings.monitor_token_max_age_s)
    credentials = Credentials(tokens, stores)
    mediamtx = MediaMtxApi(settings.mediamtx_api_url) if settings.mediamtx_api_url else None
    whip = WhipClient(settings.mediamtx_whip_url, settings.whip_timeout_s) if settings.mediamtx_whip_url else None
    relay = SignalingRelay(stores.sessions, stores.whip, settings, whip)

    sio = _socketio_server(settings, keys, metrics)
    streams = StreamService(stores, settings.stop_wait_s, settings.allowed_rtsp_hosts)
    sessions = SessionService(stores, streams, settings, relay, sio, mediamtx)
    timelines = TimelineService(stores, sessions, sio)
    paths = PathWatcher(stores, streams, settings, mediamtx, sio)
    viewer_namespaces = [
        StudentNamespace(stores, credentials, settings, metrics, timelines, relay, sessions),
        ViewerNamespace(ev.NS_MONITOR, stores, credentials, settings, metrics, timelines),
    ]
    for namespace in viewer_namespaces:
        sio.register_namespace(namespace)

    async def expire_viewers() -> None:
        for namespace in viewer_namespaces:
            await namespace.expire(time.time())

    async def audit_walls() -> None:
        for namespace in viewer_namespaces:
            await namespace.audit_walls()

    async def sample_stats() -> None:
        up = await stores.workers.ping()
        metrics.redis_up.set(1 if up else 0)
        if up:
            states = Counter(s.state for s in (await streams.status()).streams)
            for state in get_args(ConsumerState):
                metrics.streams.labels(state).set(states.get(state, 0))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(reap_silent_sessions(sessions, stores.liveness, settings, stop)),
            asyncio.create_task(paths.poll_forever(stop)),
            asyncio.create_task(run_every(VIEWER_CHECK_S, expire_viewers, stop, "viewer token check")),
            asyncio.create_task(run_every(VIEWER_CHECK_S, sample_stats, stop, "gateway stats")),
            asyncio.create_task(run_every(AUDIT_WALLS_S, audit_walls, stop, "wall audit")),
        ]
        yield
        stop.set()
        await asyncio.gather(*tasks)
        for http_client in (mediamtx, whip):
            if http_client is not None:
                await http_client.aclose()
        await client.aclose()

    docs = "/docs" if settings.api_docs else None
    app = FastAPI(title="AI 监考服务网关", version="0.1.0", lifespan=lifespan, docs_url=docs, redoc_url=None)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.state.settings = settings
    app.state.stores = stores
    app.state.sessions = sessions
    app.state.streams = streams
    app.state.paths = paths
    app.state.sio = sio
    app.state.metrics = metrics
    app.state.tokens = tokens
    app.state.viewer_namespaces = viewer_namespaces
    app.state.auth_failures = KeyedLimiter(settings.auth_failures_per_minute / 60.0, settings.auth_failures_per_minute)
    api.install(app)
    monitor_tokens.install(app)
    media_hooks.install(app)
    metrics_page.install(app)
    pages.install(app)
    return socketio.ASGIApp(sio, other_asgi_app=app)


def _socketio_server(settings: Settings, keys: RedisKeys, metrics: GatewayMetrics) -> socketio.AsyncServer:
    """经 Redis 跨网关实例广播的 Socket.IO 服务器（限速与保留事件名见 :class:`GuardedServer`）。"""
    manager = FanoutManager(
        metrics,
        settings.redis_url,
        channel=keys.socketio_channel,
        redis_options={"socket_connect_timeout": settings.redis_timeout_s},
    )
    return GuardedServer(
        settings.socket_events_per_s,
        metrics,
        async_mode="asgi",
        client_manager=manager,
        cors_allowed_origins=settings.cors_origins or None,  # None：只允许同源
        max_http_buffer_size=settings.socket_max_message_bytes,
    )
