"""测试辅助：记录 Socket.IO 事件的真实客户端、等待条件。"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import socketio

from devtools.synthetic import face_frames, simulate_pulse
from shared import events as ev
from shared.api import StreamJob
from workers.analysis.face import FaceDetector
from workers.analysis.ppg import SkinSampler, face_roi

# 单元测试里组装事件用的流任务（考试 e1、考生 s1）
JOB = StreamJob(
    stream_name="exam-e1-user-s1", rtsp_url="rtsp://127.0.0.1:8554/exam-e1-user-s1", session_id="s-1",
    created_at="2026-12-01T08:00:00.000Z", exam_id="e1", student_id="s1",
)

RECORDED_EVENTS = (
    ev.MONITOR_UPDATE,
    ev.MONITOR_PREVIEW,
    ev.VIDEO_EMOTION_RESULT,
    ev.RTSP_VIDEO_ANALYSIS,
    ev.STUDENT_EMOTION,
    ev.HEART_RATE_RESULT,
    ev.RTSP_HEART_RATE_ANALYSIS,
    ev.STUDENT_HEART_RATE,
    ev.SIGNAL_CLOSE,
    ev.SIGNAL_ANSWER,
    ev.SIGNAL_READY,
    ev.PPG_ROI,
    ev.MONITOR_BATCH,
)


@dataclass
class Received:
    event: str
    data: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class Recorder:
    """连接到一个命名空间的 python-socketio 客户端（websocket 传输），记录收到的事件。"""

    def __init__(self, base_url: str, namespace: str, reconnect: bool = False, auth: dict | None = None) -> None:
        self.namespace = namespace
        self.client = socketio.Client(reconnection=reconnect, reconnection_delay=0.5, reconnection_delay_max=2)
        self.connected_at: list[float] = []  # 每次（重新）连接成功的时刻
        self.client.on("connect", self._connected, namespace=namespace)
        self.events: list[Received] = []
        self._lock = threading.Lock()
        for name in RECORDED_EVENTS:
            self.client.on(name, self._handler(name), namespace=namespace)
        self.client.connect(base_url, namespaces=[namespace], transports=["websocket"], wait_timeout=10, auth=auth)

    def _connected(self) -> None:
        with self._lock:
            self.connected_at.append(time.monotonic())

    def _handler(self, name: str) -> Callable[[Any], None]:
        def handle(data: Any) -> None:
            with self._lock:
                self.events.append(Received(name, data))

        return handle

    def call(self, event: str, data: Any) -> Any:
        return self.client.call(event, data, namespace=self.namespace, timeout=10)

    def subscribe(self, **target: str) -> dict:
        ack = self.call(ev.MONITOR_SUBSCRIBE, target)
        assert ack["ok"], ack
        return ack

    def matching(self, event: str, pred: Callable[[dict], bool] = lambda d: True, since: float = 0.0) -> list[dict]:
        with self._lock:
            return [r.data for r in self.events if r.event == event and r.at >= since and pred(r.data)]

    def wait_for(
        self, event: str, pred: Callable[[dict], bool] = lambda d: True, timeout: float = 20.0, since: float = 0.0
    ) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.matching(event, pred, since)
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"{self.namespace}: 在 {timeout}s 内没有收到满足条件的 {event}")

    def close(self) -> None:
        self.client.disconnect()


def connect_refusal(base_url: str, namespace: str, auth: dict | None) -> dict | None:
    """用 ``auth`` 连接 ``namespace``：被拒绝时返回 ``connect_error`` 的数据 ``{message, data: {reason}}``；
    连接成功时断开并返回 None。"""
    client = socketio.Client(reconnection=False)
    errors: list[dict] = []
    client.on("connect_error", lambda data=None: errors.append(data or {}), namespace=namespace)
    try:
        client.connect(base_url, namespaces=[namespace], transports=["websocket"], wait_timeout=10, auth=auth)
    except socketio.exceptions.ConnectionError:
        return errors[0] if errors else {"message": "connection failed", "data": {}}
    client.disconnect()
    return None


def wait_until(
    check: Callable[[], Any], timeout: float, message: str, interval: float = 0.2, state: Callable[[], Any] | None = None
) -> Any:
    """等 ``check()`` 为真并返回它；超时时 AssertionError（带最后一次的结果，给了 ``state`` 时带它的结果）。"""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{message}（{timeout}s 内未满足；最后一次：{state() if state else last!r}）")


class Heartbeats(threading.Thread):
    """学生端心跳：每 ``interval_s`` 秒发一次 ``session.heartbeat``，直到 ``stop()``。"""

    def __init__(self, rec: Recorder, session_id: str, interval_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.rec = rec
        self.session_id = session_id
        self.interval_s = interval_s
        self.acks: list[dict] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.acks.append(self.rec.call(ev.SESSION_HEARTBEAT, {"session_id": self.session_id, "ts": time.time() * 1000}))
            self._stop_event.wait(self.interval_s)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


def client_ppg_rows(detector: FaceDetector, hr: float, seconds: float, seed: int, fps: float = 15.0) -> list[list[float]]:
    """学生端的采样：未经编码的画面上，固定采样框内皮肤像素的 RGB 均值（与 dashboard/ppg-sampler.js 同一算法）。"""
    pulse = simulate_pulse(seconds, hr, seed=seed, steady=True)
    frames = list(face_frames(int(seconds * fps), fps, pulse=pulse, motion=False, drift=0.02, seed=seed, noise=4.0))
    roi = face_roi(detector.detect(frames[0]).faces[0].landmarks, (frames[0].shape[1], frames[0].shape[0]))
    sampler = SkinSampler()
    rows = []
    for i, frame in enumerate(frames):
        rgb = sampler.sample(frame, roi)
        rows.append([1000.0 * i / fps + 12345.0, *map(float, rgb)])
    return rows
