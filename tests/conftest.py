"""测试用的真实服务：嵌入式 Redis、rtsp-server-perl、FFmpeg 推流、网关与工作进程子进程。

全部只监听 127.0.0.1 的空闲端口，测试结束时停止。测试按目录分组并自动加同名标记：``tests/unit``
（进程内，``pytest -m unit``）、``tests/integration``（真实服务、整段合成片段）、``tests/browser``（无头 Chromium）。
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import numpy as np
import pytest

from devtools.stack.processes import monitor_token, start_gateway, start_workers, stop_all, wait_healthy
from devtools.stack.servers import (
    CHROMIUM_ARGS,
    ClipPublisher,
    EmbeddedRedis,
    RtspServer,
    encode_clip,
    free_port,
    python_env,
    require_binary,
    stop_process,
)
from devtools.synthetic import empty_frames, face_frames, simulate_pulse
from shared import events as ev
from tests.helpers import Recorder

if TYPE_CHECKING:  # 浏览器与 WHIP 替身（aiortc）只在用到它们的测试里导入：pytest -m unit 启动更快
    from playwright.sync_api import Browser

    from devtools.stack.whip_ingest import WhipStandin

API_KEY = "test-api-key-0123456789"
MONITOR_TOKEN_SECRET = "test-monitor-token-secret-0123456789abcdef"
MEDIAMTX_AUTH_SECRET = "test-mediamtx-secret-0123"
GROUPS = ("unit", "integration", "browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        group = next((g for g in GROUPS if f"/tests/{g}/" in item.path.as_posix()), None)
        if group is not None:
            item.add_marker(group)
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
    two_faces: Path  # 画面左侧还有第二个人


PULSE_BPM = 72.0


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    root = tmp_path_factory.mktemp("clips")
    return Clips(
        face=encode_clip(root / "face.mp4", face_frames(60)),
        empty=encode_clip(root / "empty.mp4", empty_frames(30)),
        two_faces=encode_clip(root / "two_faces.mp4", face_frames(60, second_face=True)),
    )


@pytest.fixture(scope="session")
def pulse_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """恒定 72 bpm 脉搏的真实人脸片段（静止，30 秒），音轨是约 -60 dBFS 的底噪。

    高质量编码、关闭 AQ、10 秒一个关键帧：x264 默认的 AQ 会把平坦皮肤上约 0.3% 的脉搏变化量化掉，
    每秒一个 I 帧则会在 60 bpm 处造成谱线（见 README 的 rPPG 一节）。浏览器的 WebRTC 编码器同样是长 GOP。"""
    root = tmp_path_factory.mktemp("pulse")
    pulse = simulate_pulse(30, PULSE_BPM, seed=7, steady=True)
    frames = face_frames(int(30 * 15), 15.0, pulse=pulse, motion=False, noise=2.0, seed=7)
    quality = ["-crf", "12", "-x264-params", "aq-mode=0"]
    hiss = np.random.default_rng(7).normal(0, 30, 30 * 16000).astype(np.int16)
    return encode_clip(root / "pulse72.mp4", frames, gop=150, quality=quality, audio=hiss)


@dataclass
class Stack:
    """一套运行中的网关 + 工作进程（独立的 Redis 键前缀）。"""

    base_url: str
    gateway: subprocess.Popen
    workers: subprocess.Popen | None
    rtsp: RtspServer
    redis: EmbeddedRedis
    env: dict[str, str] = field(default_factory=dict)
    recorders: list[Recorder] = field(default_factory=list)
    publishers: list[ClipPublisher] = field(default_factory=list)
    streams: list[str] = field(default_factory=list)
    log_path: Path | None = None  # 网关与工作进程的输出写到这个文件（模块变量 LOG_TO_FILE）

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

    def restart_gateway(self, sig: int = signal.SIGKILL) -> None:
        """按信号结束网关进程并在同一端口、同一配置下重新启动。"""
        self.stop_gateway(sig)
        self.start_gateway()

    def stop_gateway(self, sig: int = signal.SIGKILL) -> None:
        stop_process(self.gateway, sig=sig)

    def start_gateway(self) -> None:
        """在同一端口、同一配置下启动网关（之前用 :meth:`stop_gateway` 停掉的）。"""
        self.gateway = start_gateway(self.env)
        wait_healthy(self.base_url, self.gateway, timeout=60)

    def monitor_token(self, teacher: str = "test-teacher", exam_id: str | None = None, ttl_s: int | None = None) -> dict:
        """``POST /api/monitor/token`` 的响应（教师监控令牌）。"""
        return monitor_token(self.base_url, API_KEY, teacher, exam_id, ttl_s)

    def recorder(self, namespace: str, reconnect: bool = False, auth: dict | None = None) -> Recorder:
        """连接 ``namespace`` 的客户端；``auth`` 省略时用一个新签发的教师监控令牌（不限考试）。"""
        if auth is None:
            auth = {"token": self.monitor_token()["token"]}
        rec = Recorder(self.base_url, namespace, reconnect=reconnect, auth=auth)
        self.recorders.append(rec)
        return rec

    def publish(self, clip: Path, name: str | None = None) -> tuple[str, ClipPublisher]:
        """把片段推成一路学生流，返回 (流名, 推流进程)。"""
        name = name or f"exam-{uuid.uuid4()}-user-{next(_names)}"
        pub = ClipPublisher(clip, self.rtsp.publish_url(name)).start()
        self.publishers.append(pub)
        return name, pub

    def student(self, session: dict) -> Recorder:
        """学生页的 Socket.IO 连接：auth 中带该会话的推流令牌。"""
        return self.recorder(ev.NS_DEFAULT, auth={"publish_token": session["publish_token"]})

    def start_stream(self, name: str, **extra: str) -> dict:
        resp = self.post("/api/rtsp/start", {"stream_name": name, "rtsp_url": self.rtsp.read_url(name), **extra})
        assert resp.status_code == 200, resp.text
        self.streams.append(name)
        return resp.json()

    def cleanup(self) -> None:
        """停止本测试启动的流、推流与客户端，让同一模块的下一个测试从空闲状态开始。"""
        for rec in self.recorders:
            rec.close()
        for name in self.streams:
            self.post("/api/rtsp/stop", {"stream_name": name})
        for pub in self.publishers:
            pub.stop()
        self.recorders.clear()
        self.streams.clear()
        self.publishers.clear()


def _make_stack(
    redis_server: EmbeddedRedis,
    rtsp: RtspServer,
    processes: int,
    extra_env: dict[str, str] | None = None,
    log_path: Path | None = None,
    redis_url: str | None = None,
) -> Stack:
    """``redis_url``：服务连接 Redis 的地址（默认 ``redis_server.url``；例如经 Sentinel 的地址）。"""
    port = free_port()
    env = python_env(
        **(extra_env or {}),
        REDIS_URL=redis_url or redis_server.url,
        KEY_PREFIX=f"t{uuid.uuid4().hex[:8]}:",
        API_KEY=API_KEY,
        MONITOR_TOKEN_SECRET=MONITOR_TOKEN_SECRET,
        MEDIAMTX_AUTH_SECRET=MEDIAMTX_AUTH_SECRET,
        GATEWAY_HOST="127.0.0.1",
        GATEWAY_PORT=str(port),
        WORKER_METRICS_HOST="127.0.0.1",
        WORKER_METRICS_PORT=str(free_port()),
        LOG_LEVEL="INFO",
    )
    log = log_path.open("ab") if log_path is not None else None
    gateway = start_gateway(env, log)
    workers = start_workers(env, processes, log) if processes else None
    stack = Stack(
        base_url=f"http://127.0.0.1:{port}", gateway=gateway, workers=workers, rtsp=rtsp, redis=redis_server, env=env,
        log_path=log_path,
    )
    try:
        wait_healthy(stack.base_url, gateway, timeout=60, workers=processes)
    except Exception:
        stop_all(workers, gateway)
        raise
    return stack


def _teardown(stack: Stack) -> None:
    stack.cleanup()
    stop_all(stack.workers, stack.gateway)


@pytest.fixture(scope="module")
def stack(
    rtsp_server: RtspServer, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """模块级：网关 + 工作进程。模块变量：WORKER_PROCESSES（进程数，默认 2）、WORKER_ENV（额外环境变量，
    或以 RTSP 服务器为参数返回它的函数）、
    OWN_REDIS（为 True 时用本模块独占的 Redis，测试可以重启它；否则用会话共享的 Redis）、
    LOG_TO_FILE（为 True 时网关与工作进程的输出写到 ``stack.log_path``）。"""
    processes = getattr(request.module, "WORKER_PROCESSES", 2)
    own = getattr(request.module, "OWN_REDIS", False)
    redis = EmbeddedRedis(tmp_path_factory.mktemp("redis-own")).start() if own else request.getfixturevalue("redis_server")
    try:
        env = getattr(request.module, "WORKER_ENV", None)
        if callable(env):  # 依赖 RTSP 服务器端口的配置：WORKER_ENV(rtsp_server) -> dict
            env = env(rtsp_server)
        log_path = tmp_path_factory.mktemp("logs") / "stack.log" if getattr(request.module, "LOG_TO_FILE", False) else None
        s = _make_stack(redis, rtsp_server, processes, env, log_path)
        yield s
        _teardown(s)
    finally:
        if own:
            redis.stop()


@pytest.fixture(autouse=True)
def _clean_stack_between_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack").cleanup()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """测试产物（页面截图）：``TEST_ARTIFACTS_DIR``，默认仓库下的 test-artifacts/（不入库）。"""
    path = Path(os.environ.get("TEST_ARTIFACTS_DIR", Path(__file__).resolve().parents[1] / "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian 的无头 Chromium（Playwright 自带浏览器的下载在这里不可用）。"""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=require_binary("chromium"), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def whip(stack: Stack, request: pytest.FixtureRequest) -> Iterator[WhipStandin]:
    """模块变量 WHIP_PORT 上的 WHIP 端点替身（aiortc），推流前调用本模块网关的鉴权接口。
    模块变量 WHIP_RELAY 为 True 时，替身像 MediaMTX 一样把每路视频转成 RTSP（推到测试的 rtsp-server-perl 同名路径）。"""
    from devtools.stack.whip_ingest import WhipStandin

    relay = stack.rtsp.publish_url("").rstrip("/") if getattr(request.module, "WHIP_RELAY", False) else None
    # 像 MediaMTX 的 authHTTPAddress 一样把共享密钥写在 userinfo 里（httpx 据此发 Basic 头）
    auth_url = stack.base_url.replace("http://", f"http://mediamtx:{MEDIAMTX_AUTH_SECRET}@") + "/api/mediamtx/auth"
    standin = WhipStandin(auth_url=auth_url, relay_rtsp=relay).start(
        port=request.module.WHIP_PORT
    )
    yield standin
    standin.stop()
