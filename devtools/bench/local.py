"""基准用的本机完整部署：嵌入式 Redis、rtsp-server-perl、网关、工作进程、FFmpeg 推流与 /monitor 客户端。"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from subprocess import Popen

import httpx
import numpy as np
import socketio

from devtools.stack.processes import gateway_secrets, monitor_token, start_gateway, start_workers, stop_all, wait_healthy
from devtools.stack.servers import ClipPublisher, EmbeddedRedis, RtspServer, encode_clip, free_port, python_env
from devtools.synthetic import face_frames
from shared import events as ev


def percentile(values: list[float], q: float) -> float | None:
    """``q``（0..1）分位数，保留 1 位小数；没有数据时 None。"""
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 1)


def delivery_ms(received_wall: float, payload: dict) -> float:
    """投递延迟：事件的 ``timestamp``（工作进程发出时，ISO-8601 UTC）到客户端收到（同一台机器同一时钟）。"""
    sent = datetime.fromisoformat(payload["timestamp"].replace("Z", "+00:00")).timestamp()
    return (received_wall - sent) * 1000.0


class UpdateLog:
    """/monitor 上的 python-socketio 客户端（自动重连，只订阅 monitor.update），记录每条：(monotonic, wall, payload)。"""

    def __init__(self, base_url: str, token: str) -> None:
        self.client = socketio.Client(reconnection=True, reconnection_delay=0.5, reconnection_delay_max=2)
        self._lock = threading.Lock()
        self.received: list[tuple[float, float, dict]] = []
        self.client.on(ev.MONITOR_UPDATE, self._on_update, namespace=ev.NS_MONITOR)
        # 像 /monitor 页面一样只订阅 monitor.update：不为用不到的旧事件在这台共用的机器上多花解析的 CPU
        auth = {"token": token, "events": [ev.MONITOR_UPDATE]}
        self.client.connect(base_url, namespaces=[ev.NS_MONITOR], transports=["websocket"], auth=auth)

    def _on_update(self, data: dict) -> None:
        with self._lock:
            self.received.append((time.monotonic(), time.time(), data))

    def snapshot(self, start: int = 0) -> list[tuple[float, float, dict]]:
        with self._lock:
            return self.received[start:]

    def close(self) -> None:
        if self.client.connected:
            self.client.disconnect()


@dataclass
class LocalStack:
    base: str
    api_key: str
    rtsp: RtspServer
    clip: Path
    gateway: Popen
    workers: Popen | None
    env: dict[str, str] = field(default_factory=dict)
    publishers: list[ClipPublisher] = field(default_factory=list)

    def post(self, path: str, body: dict) -> dict:
        resp = httpx.post(f"{self.base}{path}", json=body, headers={"X-API-Key": self.api_key}, timeout=15)
        resp.raise_for_status()
        return resp.json()

    def get(self, path: str) -> dict:
        resp = httpx.get(f"{self.base}{path}", headers={"X-API-Key": self.api_key}, timeout=15)
        resp.raise_for_status()
        return resp.json()

    def monitor_token(self) -> str:
        return monitor_token(self.base, self.api_key, teacher="bench", ttl_s=86400)["token"]

    def publish(self, count: int) -> list[str]:
        """推 ``count`` 路循环的人脸流，返回流名。"""
        names = [f"exam-{uuid.uuid4()}-user-{i}" for i in range(count)]
        for name in names:
            self.publishers.append(ClipPublisher(self.clip, self.rtsp.publish_url(name)).start())
        time.sleep(1.0)  # 推流端就绪
        return names


@contextmanager
def local_stack(processes: int, audio: np.ndarray | None = None, **env_overrides: str) -> Iterator[LocalStack]:
    """``processes`` 为 0 时不启动工作进程池（基准自己接上别的分析进程）；``audio``：推流片段的音轨（16 kHz int16）。"""
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    redis_server = EmbeddedRedis(tmp / "redis").start()
    rtsp = RtspServer().start()
    clip = encode_clip(tmp / "face.mp4", face_frames(60), audio=audio)
    port = free_port()
    secrets = gateway_secrets()
    api_key = secrets["API_KEY"]
    env = python_env(
        **secrets,
        REDIS_URL=redis_server.url,
        GATEWAY_HOST="127.0.0.1",
        GATEWAY_PORT=str(port),
        WORKER_METRICS_HOST="127.0.0.1",
        WORKER_METRICS_PORT=str(free_port()),
        LOG_LEVEL="WARNING",
        **env_overrides,
    )
    gateway = start_gateway(env)
    workers = start_workers(env, processes) if processes else None
    stack = LocalStack(f"http://127.0.0.1:{port}", api_key, rtsp, clip, gateway, workers, env=env)
    try:
        wait_healthy(stack.base, gateway, timeout=60, workers=processes)
        yield stack
    finally:
        for pub in stack.publishers:
            pub.stop()
        stop_all(workers, gateway)
        rtsp.stop()
        redis_server.stop()
