"""把分析结果组装成公开契约的事件（纯函数），并给出每个事件发往的命名空间与房间。"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared import events as ev
from shared.messages import (
    EmotionResult,
    FaceMetrics,
    Metrics,
    MonitorUpdate,
    StreamResultEvent,
    SystemMetrics,
    iso_utc,
)

from .tracker import StreamTracker


@dataclass(frozen=True)
class Emission:
    event: str
    data: dict[str, Any]
    namespace: str
    room: str | list[str]


def build_monitor_update(
    session_id: str,
    tracker: StreamTracker,
    now_wall: float,
    latency_ms: float | None,
    cpu_util: float | None,
    dropped_frames: int,
) -> MonitorUpdate:
    obs = tracker.latest
    assert obs is not None
    face = FaceMetrics(
        detected=obs.faces.detected,
        multi_face_secs=round(tracker.multi_face_secs, 2),
        occlusion_ratio=None,
    )
    return MonitorUpdate(
        session_id=session_id,
        timestamp=iso_utc(now_wall),
        models=["face"],
        metrics=Metrics(face=face),
        anomalies=[],
        latency_ms=latency_ms,
        system=SystemMetrics(gpu_util=None, cpu_util=cpu_util, dropped_frames=dropped_frames),
    )


def build_emotion_event(session_id: str, stream_name: str, tracker: StreamTracker) -> StreamResultEvent:
    obs = tracker.latest
    assert obs is not None
    result = EmotionResult(face_detected=obs.faces.detected, face_count=obs.faces.count)
    return StreamResultEvent(
        session_id=session_id,
        stream_name=stream_name,
        result=result,
        video_timestamp=round(obs.frame_wall_time, 3),
    )


def route(stream_name: str, update: MonitorUpdate, emotion: StreamResultEvent) -> list[Emission]:
    """事件路由：

    - ``monitor.update``：/monitor 的全部未收窄连接与该流房间；默认命名空间中该流房间；
    - ``video_emotion_result`` / ``rtsp_video_analysis``：两个命名空间的全部未收窄连接与该流房间；
    - ``student.emotion``：两个命名空间中该流房间。
    """
    room = ev.stream_room(stream_name)
    both = [ev.ALL_ROOM, room]
    update_data = update.model_dump(mode="json")
    emotion_data = emotion.model_dump(mode="json")
    out = [
        Emission(ev.MONITOR_UPDATE, update_data, ev.NS_MONITOR, both),
        Emission(ev.MONITOR_UPDATE, update_data, ev.NS_DEFAULT, room),
    ]
    for namespace in ev.NAMESPACES:
        out.append(Emission(ev.VIDEO_EMOTION_RESULT, emotion_data, namespace, both))
        out.append(Emission(ev.RTSP_VIDEO_ANALYSIS, emotion_data, namespace, both))
        out.append(Emission(ev.STUDENT_EMOTION, emotion_data, namespace, room))
    return out
