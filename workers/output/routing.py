"""工作进程发出的全部事件各自发往哪个命名空间与房间（只在这里决定）。"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared import events as ev
from shared.messages import HeartRateEvent, MonitorPreview, MonitorUpdate, PpgRoi, SignalClose, StreamResultEvent


@dataclass(frozen=True)
class Emission:
    event: str
    data: dict[str, Any]
    namespace: str
    room: str | list[str]


def route(
    stream_name: str,
    update: MonitorUpdate,
    emotion: StreamResultEvent,
    heart_rate: HeartRateEvent | None = None,
    exam_id: str | None = None,
) -> list[Emission]:
    """一次分析之后该流的事件（“广播”指 ``ALL_ROOM`` 与该流所属考试的 ``exam_room``，即未收窄的教师连接）：

    - ``monitor.update``：/monitor 的广播与该流房间；默认命名空间中该流房间；
    - ``video_emotion_result`` / ``rtsp_video_analysis``（及心率的 ``heart_rate_result`` /
      ``rtsp_heart_rate_analysis``）：两个命名空间的广播与该流房间；
    - ``student.emotion`` / ``student.heart_rate``：两个命名空间中该流房间。
    """
    room = ev.stream_room(stream_name)
    both = [ev.ALL_ROOM, room] + ([ev.exam_room(exam_id)] if exam_id else [])
    update_data = update.model_dump(mode="json")
    out = [
        Emission(ev.MONITOR_UPDATE, update_data, ev.NS_MONITOR, both),
        Emission(ev.MONITOR_UPDATE, update_data, ev.NS_DEFAULT, room),
    ]
    families: list[tuple[StreamResultEvent | HeartRateEvent, tuple[str, str], str]] = [
        (emotion, (ev.VIDEO_EMOTION_RESULT, ev.RTSP_VIDEO_ANALYSIS), ev.STUDENT_EMOTION)
    ]
    if heart_rate is not None:
        families.append((heart_rate, (ev.HEART_RATE_RESULT, ev.RTSP_HEART_RATE_ANALYSIS), ev.STUDENT_HEART_RATE))
    for payload, broadcast_names, room_name in families:
        data = payload.model_dump(mode="json")
        for namespace in ev.NAMESPACES:
            out.extend(Emission(name, data, namespace, both) for name in broadcast_names)
            out.append(Emission(room_name, data, namespace, room))
    return out


def preview(stream_name: str, message: MonitorPreview) -> Emission:
    """``monitor.preview``：只发往 /monitor 的广播与该流房间（教师连接），默认命名空间（学生端、旧前端）收不到。"""
    rooms = [ev.ALL_ROOM, ev.stream_room(stream_name)] + ([ev.exam_room(message.exam_id)] if message.exam_id else [])
    return Emission(ev.MONITOR_PREVIEW, message.model_dump(mode="json"), ev.NS_MONITOR, rooms)


def ppg_roi(session_id: str, seq: int, roi: tuple[float, float, float, float] | None) -> Emission:
    """``ppg.roi``：发给该会话的学生端（会话房间），学生端据此在编码前的画面上采样皮肤颜色。"""
    message = PpgRoi(session_id=session_id, seq=seq, roi=roi).model_dump(mode="json")
    return Emission(ev.PPG_ROI, message, ev.NS_DEFAULT, ev.session_room(session_id))


def signal_close(session_id: str, reason: str) -> Emission:
    """``signal.close``：推流中断时通知该会话的学生端（会话房间），学生端据此重新发起推流。"""
    message = SignalClose(session_id=session_id, reason=reason).model_dump()
    return Emission(ev.SIGNAL_CLOSE, message, ev.NS_DEFAULT, ev.session_room(session_id))
