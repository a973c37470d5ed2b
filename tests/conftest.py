"""测试用的真实服务：嵌入式 Redis、rtsp-server-perl、FFmpeg 推流、网关与工作进程子进程。

全部只监听 127.0.0.1 的空闲端口，测试结束时停止。
"""

from __future__ import annotations

import itertools
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from workers.devstack.servers import (
    ClipPublisher,
    EmbeddedRedis,
    RtspServer,
    encode_clip,
    free_port,
    python_env,
)
from workers.devstack.stack import start_gateway, start_workers, stop_all, wait_healthy
from workers.synthetic import empty_frames, face_frames

from .helpers import Recorder

API_KEY = "test-api-key-0123456789"
_names = itertools.count(1)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def rtsp_server() -> Iterator[RtspServer]:
    server = RtspServer().start()
    yield server
    server.stop()


@dataclass(frozen=True)
class Clips:
    face: Path
    empty: Path


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    root = tmp_path_factory.mktemp("clips")
    return Clips(
        face=encode_clip(root / "face.mp4", face_frames(60)),
        empty=encode_clip(root / "empty.mp4", empty_frames(30)),
    )


@dataclass
class Stack:
    """一套运行中的网关 + 工作进程（独立的 Redis 键前缀）。"""

    base_url: str
    gateway: subprocess.Popen
    workers: subprocess.Popen | None
    rtsp: RtspServer
    recorders: list[Recorder] = field(default_factory=list)
    publishers: list[ClipPublisher] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": API_KEY}

    def post(self, path: str, json: object, **kw: object) -> httpx.Response:
        return httpx.post(f"{self.base_url}{path}", json=json, headers=kw.pop("headers", self.headers), timeout=15, **kw)

    def get(self, path: str, **kw: object) -> httpx.Response:
        return httpx.get(f"{self.base_url}{path}", headers=kw.pop("headers", self.headers), timeout=15, **kw)

    def status(self) -> dict:
        resp = self.get("/api/rtsp/status")
        assert resp.status_code == 200, resp.text
        return resp.json()

    def stream_status(self, name: str) -> dict | None:
        return next((s for s in self.status()["streams"] if s["stream_name"] == name), None)

    def recorder(self, namespace: str) -> Recorder:
        rec = Recorder(self.base_url, namespace)
        self.recorders.append(rec)
        return rec

    def publish(self, clip: Path, name: str | None = None) -> tuple[str, ClipPublisher]:
        """把片段推成一路学生流，返回 (流名, 推流进程)。"""
        name = name or f"exam-{uuid.uuid4()}-user-{next(_names)}"
        pub = ClipPublisher(clip, self.rtsp.publish_url(name)).start()
        self.publishers.append(pub)
        return name, pub

    def start_stream(self, name: str, **extra: str) -> dict:
        resp = self.post("/api/rtsp/start", {"stream_name": name, "rtsp_url": self.rtsp.read_url(name), **extra})
        assert resp.status_code == 200, resp.text
        return resp.json()


def _make_stack(redis_server: EmbeddedRedis, rtsp: RtspServer, processes: int) -> Stack:
    port = free_port()
    env = python_env(
        REDIS_URL=redis_server.url,
        KEY_PREFIX=f"t{uuid.uuid4().hex[:8]}:",
        API_KEY=API_KEY,
        GATEWAY_HOST="127.0.0.1",
        GATEWAY_PORT=str(port),
        LOG_LEVEL="INFO",
    )
    gateway = start_gateway(env)
    workers = start_workers(env, processes) if processes else None
    stack = Stack(base_url=f"http://127.0.0.1:{port}", gateway=gateway, workers=workers, rtsp=rtsp)
    try:
        wait_healthy(stack.base_url, gateway, timeout=60, workers=processes)
    except Exception:
        stop_all(workers, gateway)
        raise
    return stack


def _teardown(stack: Stack) -> None:
    for rec in stack.recorders:
        rec.close()
    for pub in stack.publishers:
        pub.stop()
    stop_all(stack.workers, stack.gateway)


@pytest.fixture(scope="module")
def stack(redis_server: EmbeddedRedis, rtsp_server: RtspServer, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """模块级：网关 + 工作进程（进程数取模块变量 WORKER_PROCESSES，默认 2）。"""
    processes = getattr(request.module, "WORKER_PROCESSES", 2)
    s = _make_stack(redis_server, rtsp_server, processes)
    yield s
    _teardown(s)
