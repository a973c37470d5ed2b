"""Socket.IO 命名空间、房间与事件名（公开契约，见 README “Socket.IO 事件”）。

房间语义：教师连接（监控令牌）进入所在命名空间时默认在 ``ALL_ROOM``（接收全部流的广播事件；限定考试的令牌
改在 ``exam_room``，只收该考试的）；学生连接（推流令牌）只在自己的 ``session_room``；
发送 ``monitor.subscribe`` 后改为只接收所订阅流的事件（离开 ``ALL_ROOM``，进入各流房间），
``monitor.unsubscribe`` 取消最后一个订阅时回到 ``ALL_ROOM``。
"""

from __future__ import annotations

NS_DEFAULT = "/"
NS_MONITOR = "/monitor"
NAMESPACES = (NS_DEFAULT, NS_MONITOR)

ALL_ROOM = "all"


STREAM_ROOM_PREFIX = "stream:"


def stream_room(stream_name: str) -> str:
    return f"{STREAM_ROOM_PREFIX}{stream_name}"


def session_room(session_id: str) -> str:
    """学生端连接（令牌通过校验的 offer 或心跳之后）所在的房间：``signal.ready`` / ``signal.close`` 发往这里。"""
    return f"session:{session_id}"


def exam_room(exam_id: str) -> str:
    """限定考试的监控连接所在的房间（代替 ``ALL_ROOM``）：只收该考试各流的广播事件。"""
    return f"exam:{exam_id}"


# 客户端不能发送的事件名（Socket.IO 保留名）：收到时忽略，不会再次触发连接处理
RESERVED_EVENTS = frozenset({"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"})


# 服务端 -> 客户端
MONITOR_UPDATE = "monitor.update"
VIDEO_EMOTION_RESULT = "video_emotion_result"
RTSP_VIDEO_ANALYSIS = "rtsp_video_analysis"
STUDENT_EMOTION = "student.emotion"
HEART_RATE_RESULT = "heart_rate_result"
RTSP_HEART_RATE_ANALYSIS = "rtsp_heart_rate_analysis"
STUDENT_HEART_RATE = "student.heart_rate"
SIGNAL_CLOSE = "signal.close"
SIGNAL_ANSWER = "signal.answer"
SIGNAL_READY = "signal.ready"
PPG_ROI = "ppg.roi"
AUTH_EXPIRED = "auth.expired"  # 连接的令牌过期或被撤销：随后断开
RATE_LIMITED = "rate_limited"  # 连接发得太快：先告知，持续超限则断开
MONITOR_BATCH = "monitor.batch"  # 声明了 batch 的教师连接：{events: [[事件名, 负载], ...]}，每 50 ms 至多一条
MONITOR_REVIEW = "monitor.review"  # 双向：教师发来复核标记（ack）；服务端把保存的标记发给看这个会话的教师
SESSION_ENDED = "session.ended"  # /monitor：会话结束、报告已定稿
MONITOR_PREVIEW = "monitor.preview"  # /monitor：教师墙的预览小图（默认马赛克），每路每 PREVIEW_INTERVAL_S 一次

# 工作进程发出、连接可以在 DeliveryOptions.events 里选择的事件
ANALYSIS_EVENTS = frozenset({
    MONITOR_UPDATE, VIDEO_EMOTION_RESULT, RTSP_VIDEO_ANALYSIS, STUDENT_EMOTION, HEART_RATE_RESULT, RTSP_HEART_RATE_ANALYSIS,
    STUDENT_HEART_RATE, MONITOR_PREVIEW,
})
SERVER_EVENTS = ANALYSIS_EVENTS | {
    SIGNAL_CLOSE, SIGNAL_ANSWER, SIGNAL_READY, PPG_ROI, AUTH_EXPIRED, RATE_LIMITED, MONITOR_BATCH, MONITOR_REVIEW, SESSION_ENDED,
}

# 客户端 -> 服务端
MONITOR_SUBSCRIBE = "monitor.subscribe"
MONITOR_UNSUBSCRIBE = "monitor.unsubscribe"
SESSION_HEARTBEAT = "session.heartbeat"
SIGNAL_OFFER = "signal.offer"
SIGNAL_ICE = "signal.ice"
PPG_SAMPLES = "ppg.samples"
AUTH_RENEW = "auth.renew"  # 教师连接续期：ack {ok, token, expires_at}
MONITOR_TIMELINE = "monitor.timeline"  # 会话页：整场的时间序列、报告与复核标记（ack）
# signal.close 双向：学生端发来表示结束本次推流
