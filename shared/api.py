"""REST 接口的请求/响应模型（JSON，snake_case）。"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from .streams import ID_PATTERN, STREAM_NAME_PATTERN

StreamName = Annotated[
    str,
    Field(
        pattern=STREAM_NAME_PATTERN,
        description="流名（MediaMTX 路径），通常为 exam-<uuid>-user-<id>",
        examples=["exam-0f8fad5b-d9cb-469f-a165-70867728950e-user-42"],
    ),
]
Identifier = Annotated[str, Field(pattern=ID_PATTERN)]


def _check_rtsp_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("rtsp", "rtsps"):
        raise ValueError("rtsp_url 必须以 rtsp:// 或 rtsps:// 开头")
    if not parts.hostname:
        raise ValueError("rtsp_url 缺少主机名")
    try:
        parts.port  # noqa: B018 - 触发端口合法性检查
    except ValueError as exc:
        raise ValueError(f"rtsp_url 端口无效: {exc}") from None
    return value


RtspUrl = Annotated[
    str,
    Field(max_length=2048, examples=["rtsp://192.168.0.112:8554/exam-xxxx-user-yyyy"]),
    AfterValidator(_check_rtsp_url),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ---------------- 会话 ----------------

SessionStatus = Literal["CREATED", "ACTIVE", "STREAMING", "DEGRADED", "ENDED"]


class CreateSessionRequest(_Request):
    """创建 AI 会话。给出 exam_id + student_id 时流名为 exam-<exam_id>-user-<student_id>。"""

    exam_id: Identifier | None = None
    student_id: Identifier | None = None
    stream_name: StreamName | None = None
    rtsp_url: RtspUrl | None = Field(None, description="给出时立即开始拉流分析")

    @model_validator(mode="after")
    def _exam_and_student_together(self) -> "CreateSessionRequest":
        if (self.exam_id is None) != (self.student_id is None):
            raise ValueError("exam_id 与 student_id 必须同时提供或同时省略")
        return self


class SessionInfo(BaseModel):
    session_id: str
    stream_name: str
    exam_id: str | None = None
    student_id: str | None = None
    publish_token: str
    status: SessionStatus
    created_at: str
    ended_at: str | None = None
    end_reason: str | None = None
    rtsp_url: str | None = None


class CreateSessionResponse(SessionInfo):
    stream_started: bool = False


class EndSessionRequest(_Request):
    session_id: Identifier


class SessionReport(BaseModel):
    """会话汇总报告（AiAggregate）。本版本包含时间与结束原因；分析汇总随分析器补全。"""

    session_id: str
    stream_name: str
    status: SessionStatus
    created_at: str
    ended_at: str | None
    end_reason: str | None

    @classmethod
    def of(cls, info: SessionInfo) -> "SessionReport":
        return cls(**info.model_dump(include=set(cls.model_fields)))


# ---------------- RTSP 消费 ----------------


class RtspStartRequest(_Request):
    stream_name: StreamName
    rtsp_url: RtspUrl
    session_id: Identifier | None = Field(None, description="显式绑定的会话 ID（可选）")


class StreamJob(BaseModel):
    """Redis 中一条期望运行的流任务。"""

    stream_name: str
    rtsp_url: str
    session_id: str
    created_at: str


class RtspStartResponse(StreamJob):
    created: bool = Field(description="false 表示该流已在运行（幂等）")


class RtspStopRequest(_Request):
    stream_name: StreamName


class RtspStopResponse(BaseModel):
    stream_name: str
    stopped: bool = Field(description="所属工作进程已确认释放该流")
    owner: str | None = Field(None, description="停止前的所属工作进程")


ConsumerState = Literal["pending", "connecting", "streaming", "reconnecting", "failed"]


class ConsumerStatus(BaseModel):
    """单路流的消费状态（所属工作进程上报）。"""

    stream_name: str
    session_id: str | None = None
    rtsp_url: str | None = None
    owner: str | None = None
    owner_alive: bool = False
    state: ConsumerState = "pending"
    transport: str | None = None
    fps: float | None = Field(None, description="近几秒的解码帧率")
    analysis_fps: float | None = None
    frames_decoded: int = 0
    frames_analyzed: int = 0
    dropped_frames: int = Field(0, description="因分析来不及而被新帧覆盖的待分析帧数")
    reconnects: int = 0
    latency_ms: float | None = Field(None, description="最近一次推送时：帧解码 -> 事件发出")
    last_frame_age_ms: float | None = None
    last_error: str | None = None
    updated_at: str | None = None


class WorkerStatus(BaseModel):
    worker_id: str
    host: str
    pid: int
    capacity: int
    streams: list[str]
    alive: bool
    last_seen_ms: int | None = None
    cpu_util: float | None = None


class RtspStatusResponse(BaseModel):
    workers: list[WorkerStatus]
    streams: list[ConsumerStatus]


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    redis: bool
    workers_alive: int
