"""ASGI 应用工厂。所有对象都在 ``create_app`` 中创建并挂在 app.state 上，没有模块级全局实例。

组装顺序即数据流：Redis 存储（store/）-> 流程服务（sessions/）与信令中继（signaling/）-> 入口：
REST 与 MediaMTX 回调（http/）、Socket.IO 命名空间（realtime/）；后台任务：心跳超时清理与 MediaMTX 路径轮询。
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import socketio
from fastapi import FastAPI

from shared import events as ev
from shared.keys import RedisKeys
from shared.settings import Settings

from .http import api, media_hooks, pages
from .http.headers import SecurityHeaders
from .media.mediamtx import MediaMtxApi
from .media.paths import PathWatcher
from .realtime.sockets import StreamNamespace, StudentNamespace
from .sessions.reaper import reap_silent_sessions
from .sessions.service import SessionService
from .sessions.streams import StreamService
from .signaling.relay import SignalingRelay
from .signaling.whip import WhipClient
from .store import Stores
from .store.client import connect


def create_app(settings: Settings) -> socketio.ASGIApp:
    if not settings.api_key:
        raise ValueError("必须设置环境变量 API_KEY（后端调用 REST 接口时放在 X-API-Key 头中）")
    keys = RedisKeys(settings.key_prefix)
    client = connect(settings)
    stores = Stores.open(client, keys)
    mediamtx = MediaMtxApi(settings.mediamtx_api_url) if settings.mediamtx_api_url else None
    whip = WhipClient(settings.mediamtx_whip_url, settings.whip_timeout_s) if settings.mediamtx_whip_url else None
    relay = SignalingRelay(stores.sessions, stores.whip, settings, whip)

    sio = _socketio_server(settings, keys)
    streams = StreamService(stores, settings.stop_wait_s, settings.allowed_rtsp_hosts)
    sessions = SessionService(stores, streams, settings, relay, sio, mediamtx)
    paths = PathWatcher(stores, streams, settings, mediamtx, sio)
    sio.register_namespace(StudentNamespace(stores, relay, sessions))
    sio.register_namespace(StreamNamespace(ev.NS_MONITOR, stores))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(reap_silent_sessions(sessions, stores.liveness, settings, stop)),
            asyncio.create_task(paths.poll_forever(stop)),
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
    app.state.settings = settings
    app.state.stores = stores
    app.state.sessions = sessions
    app.state.streams = streams
    app.state.paths = paths
    app.state.sio = sio
    api.install(app)
    media_hooks.install(app)
    pages.install(app)
    return socketio.ASGIApp(sio, other_asgi_app=app)


def _socketio_server(settings: Settings, keys: RedisKeys) -> socketio.AsyncServer:
    """经 Redis 跨网关实例广播的 Socket.IO 服务器。"""
    manager = socketio.AsyncRedisManager(
        settings.redis_url,
        channel=keys.socketio_channel,
        redis_options={"socket_connect_timeout": settings.redis_timeout_s},
    )
    # always_connect：连接在 connect 处理函数之前就确认，处理函数里可以先给新客户端发回放
    return socketio.AsyncServer(
        async_mode="asgi",
        client_manager=manager,
        always_connect=True,
        cors_allowed_origins=settings.cors_origins or None,  # None：只允许同源
    )
