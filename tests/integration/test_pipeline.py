"""端到端：真实人脸的 H.264 流 -> RTSP 服务器 -> 工作进程 -> Redis -> Socket.IO 客户端。"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from shared import events as ev
from shared.messages import MonitorUpdate, StreamResultEvent
from tests.conftest import PULSE_BPM, Clips, Stack
from tests.helpers import wait_until

WORKER_PROCESSES = 2


def _for_session(session_id: str):
    return lambda d: d.get("session_id") == session_id


def _for_stream(stream_name: str):
    return lambda d: d.get("stream_name") == stream_name


def test_face_stream_reaches_monitor_default_and_room_clients(stack: Stack, clips: Clips) -> None:
    face_name, _ = stack.publish(clips.face)
    other_name, _ = stack.publish(clips.empty)

    monitor = stack.recorder(ev.NS_MONITOR)
    default = stack.recorder(ev.NS_DEFAULT)
    room = stack.recorder(ev.NS_DEFAULT)
    other_room = stack.recorder(ev.NS_DEFAULT)
    assert room.subscribe(stream_name=face_name)["stream_name"] == face_name
    assert other_room.subscribe(stream_name=other_name)["stream_name"] == other_name

    t0 = time.monotonic()
    job = stack.start_stream(face_name)
    stack.start_stream(other_name)
    session_id = job["session_id"]

    update = monitor.wait_for(
        ev.MONITOR_UPDATE, lambda d: d["session_id"] == session_id and d["metrics"]["face"]["detected"], timeout=20
    )
    first_update_s = time.monotonic() - t0
    emotion = default.wait_for(ev.VIDEO_EMOTION_RESULT, _for_stream(face_name), timeout=20)
    student = room.wait_for(ev.STUDENT_EMOTION, _for_stream(face_name), timeout=20)
    assert first_update_s < 20

    # 负载符合公开契约（pydantic 模型严格解析），未计算的字段为 null
    parsed = MonitorUpdate.model_validate(update)
    assert parsed.models[:2] == ["face", "attention"] and "ppg" in parsed.models
    assert parsed.metrics.face.detected is True
    assert parsed.metrics.attention.score is not None and parsed.metrics.attention.score > 0.8
    assert parsed.metrics.audio.dominant is None  # 尚未计算的值为 null
    assert parsed.timestamp.endswith("Z") and parsed.latency_ms is not None and parsed.latency_ms >= 0
    for payload in (emotion, student):
        event = StreamResultEvent.model_validate(payload)
        assert event.session_id == session_id and event.stream_name == face_name
        assert event.result.face_detected is True and event.result.face_count == 1
        assert event.video_timestamp > 1.6e9
    assert default.wait_for(ev.RTSP_VIDEO_ANALYSIS, _for_stream(face_name), timeout=5)
    # 情绪：fer 自带模型（TensorFlow 在后台加载）经整条管线判定真实人脸为 happy
    happy = default.wait_for(
        ev.VIDEO_EMOTION_RESULT,
        lambda d: d["stream_name"] == face_name and d["result"]["dominant_emotion"] is not None,
        timeout=40,
    )
    assert happy["result"]["dominant_emotion"] == "happy" and happy["result"]["confidence"] > 0.8
    assert set(happy["result"]["emotions"]) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    assert room.wait_for(ev.STUDENT_HEART_RATE, _for_stream(face_name), timeout=5)["result"]["face_detected"]
    # 默认命名空间的房间成员也收到该流的 monitor.update
    assert room.wait_for(ev.MONITOR_UPDATE, _for_session(session_id), timeout=5)

    # 订阅了另一路流的客户端：收到那一路的事件，但收不到这一路的任何事件
    other_room.wait_for(ev.STUDENT_EMOTION, _for_stream(other_name), timeout=20)
    time.sleep(1.0)
    for event in (ev.MONITOR_UPDATE, ev.VIDEO_EMOTION_RESULT, ev.RTSP_VIDEO_ANALYSIS, ev.STUDENT_EMOTION):
        assert other_room.matching(event, lambda d: d.get("session_id") == session_id) == []
    # 订阅了本流的客户端也收不到另一路流的事件
    assert room.matching(ev.STUDENT_EMOTION, _for_stream(other_name)) == []
    # 节流：同一会话相邻 monitor.update 的发出时刻（payload.timestamp）间隔不少于 250ms，稳态约 400ms
    # （只看情绪模型加载完成之后：两个工作进程同时导入 TensorFlow 时 2 核机器上分析会暂时放慢）
    time.sleep(3.0)
    stamps = [
        datetime.fromisoformat(d["timestamp"].replace("Z", "+00:00")).timestamp()
        for d in monitor.matching(ev.MONITOR_UPDATE, lambda d: d["session_id"] == session_id and "emotion" in d["models"])
    ]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert gaps and min(gaps) >= 0.249 and sorted(gaps)[len(gaps) // 2] <= 0.5, gaps


def test_scene_without_face_reports_no_face(stack: Stack, clips: Clips) -> None:
    name, _ = stack.publish(clips.empty)
    monitor = stack.recorder(ev.NS_MONITOR)
    session_id = stack.start_stream(name)["session_id"]
    updates = wait_until(
        lambda: monitor.matching(ev.MONITOR_UPDATE, _for_session(session_id))[:3] if len(
            monitor.matching(ev.MONITOR_UPDATE, _for_session(session_id))) >= 3 else None,
        timeout=20,
        message="无人脸流的 monitor.update",
    )
    assert [u["metrics"]["face"]["detected"] for u in updates] == [False, False, False]
    assert [u["metrics"]["attention"]["score"] for u in updates] == [0.0, 0.0, 0.0]
    no_face = monitor.wait_for(
        ev.MONITOR_UPDATE, lambda d: d["session_id"] == session_id and d["anomalies"], timeout=10
    )
    assert no_face["anomalies"][0]["code"] == "NO_FACE" and no_face["anomalies"][0]["duration_ms"] >= 2000


def test_subscribe_errors_come_back_in_the_ack(stack: Stack) -> None:
    client = stack.recorder(ev.NS_MONITOR)
    bad = [
        {},
        {"session_id": "s-1", "stream_name": "exam-a-user-1"},
        {"stream_name": "../../etc"},
        "not-an-object",
        {"session_id": "s-does-not-exist"},
    ]
    for payload in bad:
        ack = client.call(ev.MONITOR_SUBSCRIBE, payload)
        assert ack["ok"] is False and ack["error"], (payload, ack)


def test_pulse_clip_through_rtsp_yields_heart_rate(stack: Stack, pulse_clip: Path) -> None:
    name, _ = stack.publish(pulse_clip)
    monitor = stack.recorder(ev.NS_MONITOR)
    session_id = stack.start_stream(name)["session_id"]
    update = monitor.wait_for(
        ev.MONITOR_UPDATE,
        lambda d: d["session_id"] == session_id and d["metrics"]["ppg"]["hr_bpm"] is not None,
        timeout=40,
    )
    metrics = update["metrics"]
    assert abs(metrics["ppg"]["hr_bpm"] - PULSE_BPM) <= 5.0, metrics["ppg"]
    assert metrics["ppg"]["signal_quality"] >= 0.4
    # 其余字段都已计算；为 null 的字段必须在 null_reasons 里给出原因
    assert metrics["face"]["detected"] is True and metrics["face"]["occlusion_ratio"] is not None
    assert metrics["face"]["occlusion_ratio"] <= 0.15
    assert metrics["attention"]["score"] > 0.8 and metrics["attention"]["confidence"] > 0
    assert metrics["audio"]["level_dbfs"] < -45 and metrics["audio"]["talking"] is False  # 片段音轨只有底噪
    nulls = {f"{group}.{name}" for group, fields in metrics.items() for name, value in fields.items() if value is None}
    assert nulls == set(update["null_reasons"]) == {"audio.dominant", "audio.confidence"}
    assert update["null_reasons"]["audio.dominant"] == "audio_emotion_model_not_installed"
    assert {"face", "attention", "ppg", "audio"} <= set(update["models"]) and "audio_emotion" not in update["models"]
    assert update["anomalies"] == []
