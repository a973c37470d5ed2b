"""REST 接口的请求/响应模型（JSON，snake_case）。"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, computed_field, model_validator

from .risk import Risk
from .streams import ID_PATTERN, STREAM_NAME_PATTERN, check_rtsp_url

StreamName = Annotated[
    str,
    Field(
        pattern=STREAM_NAME_PATTERN,
        description="流名（MediaMTX 路径），通常为 exam-<uuid>-user-<id>",
        examples=["exam-0f8fad5b-d9cb-469f-a165-70867728950e-user-42"],
    ),
]
Identifier = Annotated[str, Field(pattern=ID_PATTERN)]


def _rtsp_url(value: object) -> object:
    # 在原始字符串上检查（早于去除首尾空白）：存下来、交给工作进程的就是检查过的这一串
    return check_rtsp_url(value) if isinstance(value, str) else value


RtspUrl = Annotated[
    str,
    Field(max_length=2048, examples=["rtsp://192.168.0.112:8554/exam-xxxx-user-yyyy"]),
    BeforeValidator(_rtsp_url),
]


# 参考照片（``create_session`` 的 ``reference_photo``）解码后的上限：一张 640x480 的 JPEG 通常 30–80 KB
MAX_REFERENCE_PHOTO_BYTES = 256 * 1024
_PHOTO_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")


def reference_photo_bytes(value: str) -> bytes:
    """``reference_photo`` 的字符串（base64，可带 ``data:image/...;base64,`` 前缀）-> 图片字节；
    不是 base64、不是 JPEG / PNG 或超过 ``MAX_REFERENCE_PHOTO_BYTES`` 时 ValueError（说明原因）。"""
    text = value.split(",", 1)[1] if value.startswith("data:") else value
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("reference_photo 不是合法的 base64") from None
    if len(data) > MAX_REFERENCE_PHOTO_BYTES:
        raise ValueError(f"reference_photo 解码后 {len(data)} 字节，超过上限 {MAX_REFERENCE_PHOTO_BYTES}")
    if not data.startswith(_PHOTO_MAGIC):
        raise ValueError("reference_photo 必须是 JPEG 或 PNG 图片")
    return data


def _reference_photo(value: object) -> object:
    if isinstance(value, str):
        reference_photo_bytes(value)
    return value


ReferencePhoto = Annotated[
    str,
    Field(
        max_length=4 * MAX_REFERENCE_PHOTO_BYTES // 3 + 64,
        description="考生的参考照片（base64 的 JPEG / PNG，可带 data URL 前缀，解码后至多 256 KB），照片里恰好一张正脸："
        "工作进程拿它而不是会话开头的画面作为“同一个学生”的比对基准。只存在服务端，会话结束时删除，任何接口都不返回它",
    ),
    AfterValidator(_reference_photo),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ---------------- 会话 ----------------

SessionStatus = Literal["CREATED", "ACTIVE", "STREAMING", "DEGRADED", "ENDED"]
# 身份比对的基准：photo 创建会话时的参考照片；session_start 会话开头登记的人脸；
# photo_unusable 给了照片但其中没有恰好一张可用的人脸（改为会话开头登记）
IdentityReference = Literal["photo", "session_start", "photo_unusable"]


class CreateSessionRequest(_Request):
    """创建 AI 会话。给出 exam_id + student_id 时流名为 exam-<exam_id>-user-<student_id>。"""

    exam_id: Identifier | None = None
    student_id: Identifier | None = None
    stream_name: StreamName | None = None
    rtsp_url: RtspUrl | None = Field(None, description="给出时立即开始拉流分析")
    reference_photo: ReferencePhoto | None = None

    @model_validator(mode="after")
    def _exam_and_student_together(self) -> CreateSessionRequest:
        if (self.exam_id is None) != (self.student_id is None):
            raise ValueError("exam_id 与 student_id 必须同时提供或同时省略")
        return self


class SessionBase(BaseModel):
    session_id: str
    stream_name: str
    exam_id: str | None = None
    student_id: str | None = None
    publish_token_expires_at: str | None = Field(None, description="推流令牌过期时间（ISO-8601 UTC）；会话结束时立即失效")
    status: SessionStatus
    created_at: str
    ended_at: str | None = None
    end_reason: str | None = None
    rtsp_url: str | None = None
    reference_photo: bool = Field(False, description="创建时给了参考照片（照片本身不返回）")


class SessionInfo(SessionBase):
    """Redis 中的会话记录：推流令牌只存 SHA-256 摘要。"""

    publish_token_sha256: str = ""


class OfferSummary(BaseModel):
    """学生端 offer 中中继需要的信息：各媒体段的类型与 mid（按出现顺序）、ICE 凭据。"""

    kinds: list[str]
    mids: list[str]
    ice_ufrag: str
    ice_pwd: str


class WhipResource(BaseModel):
    """网关代学生端建立的 WHIP 会话（Redis 中按会话保存，任一网关都能补充候选或结束它）。"""

    location: str
    offer: OfferSummary


class CreateSessionResponse(SessionBase):
    publish_token: str = Field(
        description="推流令牌（只在这里返回一次）：学生端放在 Socket.IO auth.publish_token 中；只对本会话的流路径有效"
    )
    stream_started: bool = False


class EndSessionRequest(_Request):
    session_id: Identifier


class AnomalyEpisode(BaseModel):
    code: str
    start: str = Field(description="ISO-8601 UTC")
    end: str
    duration_s: float
    peak_severity: Literal["low", "medium", "high"]

    @computed_field(description="事件段 ID（异常代码@开始时刻）：教师的复核标记按它记录")  # type: ignore[prop-decorator]
    @property
    def episode_id(self) -> str:
        return f"{self.code}@{self.start}"


class EpisodeReview(BaseModel):
    """教师对一个异常事件段的复核：是否已复核、备注、谁、何时（保存在服务端，所有教师都看得到）。"""

    session_id: str
    episode_id: str
    reviewed: bool
    note: str = ""
    teacher: str
    at: str = Field(description="ISO-8601 UTC")


class HeartRateSummary(BaseModel):
    """只统计给出了心率的时间；没有任何心率时各值为 null。"""

    mean_bpm: float | None = None
    min_bpm: float | None = None
    max_bpm: float | None = None
    quality_mean: float | None = Field(None, description="给出心率期间 signal_quality 的时间加权均值")
    seconds_with_hr: float = 0.0


class MediaSummary(BaseModel):
    reconnects: int = Field(0, description="拉流重连次数")
    dropped_frames: int = Field(0, description="分析来不及而丢弃的待分析帧")
    degraded_episodes: int = Field(0, description="进入 DEGRADED（推流中断）的次数")


class StateTransition(BaseModel):
    state: SessionStatus
    at: str = Field(description="ISO-8601 UTC")
    reason: str


class Viewer(BaseModel):
    """审计：看过该会话的一次教师授权。"""

    teacher: str
    grant_id: str
    how: Literal["wall", "subscribe"] = Field(description="wall：在监控墙上（广播）；subscribe：单独订阅了该会话")
    first_at: str = Field(description="首次看到的时刻（ISO-8601 UTC）")


class SessionReport(BaseModel):
    """会话汇总报告（种子文档中的 AiAggregate）。时长单位为秒；未能计算的值为 null。"""

    session_id: str
    stream_name: str
    status: SessionStatus
    final: bool = Field(description="true：会话已结束、报告已定稿；false：进行中的临时汇总")
    created_at: str
    started_at: str | None = Field(None, description="首次收到视频帧（STREAMING）的时刻")
    ended_at: str | None
    end_reason: str | None
    streaming_seconds: float = Field(0.0, description="被分析的时长（断流期间不计）")
    face_present_seconds: float = 0.0
    attention_mean: float | None = Field(None, description="专注度的时间加权均值 0..1")
    look_away_seconds: float = Field(0.0, description="LOOK_AWAY 异常处于报告状态的时长")
    looking_down_seconds: float = Field(0.0, description="LOOKING_DOWN 异常处于报告状态的时长")
    talking_seconds: float = Field(0.0, description="TALKING 异常处于报告状态的时长")
    multi_face_seconds: float = 0.0
    identity_held: bool | None = Field(
        None,
        description="整场坐着的是否一直是比对基准（identity_reference）上的那个人：true 是；false 出现过 IDENTITY_CHANGED；"
        "null 从未比对（没有可用的正脸，或关闭了身份比对）",
    )
    identity_reference: IdentityReference | None = Field(
        None,
        description="身份比对的基准：photo 创建会话时给的参考照片；session_start 会话开头登记的人脸；"
        "photo_unusable 给了照片但其中没有恰好一张可用的人脸（改为会话开头登记）；null 从未比对",
    )
    emotion_distribution: dict[str, float] = Field(
        default_factory=dict, description="面部主导情绪的时间占比（只统计有情绪结果的时间）"
    )
    heart_rate: HeartRateSummary = Field(default_factory=HeartRateSummary)
    anomalies: list[AnomalyEpisode] = Field(default_factory=list, description="全部已结束的异常事件段，按开始时间排序")
    risk: Risk = Field(
        default_factory=lambda: Risk(score=0.0, level="none"),
        description="整场的复核优先级：与教师墙同一算法（shared/risk.py），已结束的事件段不衰减",
    )
    media: MediaSummary = Field(default_factory=MediaSummary)
    transitions: list[StateTransition] = Field(default_factory=list, description="会话状态变化及原因")
    viewers: list[Viewer] = Field(default_factory=list, description="看过该会话的教师授权（审计记录，随报告保留）")


# 会话时间序列的列（history:<id> 的每一行是按这个顺序的数组；未知的值为 null）：
# 时刻（Unix 毫秒）、专注度 0..1、心率、心率信号质量、面部主导情绪与置信度、音频电平（dBFS）、风险分、
# 延迟（毫秒）、累计丢帧、所属进程当前的分析帧率
HISTORY_FIELDS = (
    "t_ms", "attention", "hr_bpm", "hr_quality", "emotion", "emotion_confidence", "audio_dbfs", "risk",
    "latency_ms", "dropped_frames", "analysis_fps",
)


class SessionTimeline(BaseModel):
    """会话页的数据（``monitor.timeline`` 的 ack）：整场的时间序列、报告（进行中为临时汇总，其中有已结束的
    异常事件段、状态变化与媒体统计）与教师的复核标记。"""

    ok: bool = True
    session_id: str
    stream_name: str
    exam_id: str | None = None
    student_id: str | None = None
    status: SessionStatus
    history: dict[str, list] = Field(description="按列：HISTORY_FIELDS 的每一列一个数组（等长，按时间顺序）")
    history_interval_s: float
    report: SessionReport
    reviews: list[EpisodeReview] = Field(default_factory=list)


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
    exam_id: str | None = Field(None, description="会话所属考试（限定考试的监控令牌据此收到该流的广播）")
    student_id: str | None = Field(None, description="会话所属考生（教师墙的卡片标题）")


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
    analysis_fps: float | None = Field(None, description="近几秒实际的分析帧率")
    analysis_fps_target: float | None = Field(None, description="配置的目标分析帧率（ANALYSIS_FPS）")
    degraded: bool = Field(False, description="所属工作进程跟不上，所有流一起降低了分析帧率")
    frames_decoded: int = 0
    frames_analyzed: int = 0
    dropped_frames: int = Field(0, description="按目标分析帧率本应分析而没有分析的帧数（降级时）")
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
    headroom: float | None = Field(
        None, description="按目标分析帧率还能多承担的负载比例（1 空闲，0 刚好满，负数已降级）；还没测到时 null"
    )
    degraded: bool = Field(False, description="跟不上目标分析帧率，所有流一起降低了分析帧率")
    analysis_fps: float | None = Field(None, description="当前每路流的分析帧率")


class RtspStatusResponse(BaseModel):
    workers: list[WorkerStatus]
    streams: list[ConsumerStatus]


class ErrorResponse(BaseModel):
    """4xx / 5xx 的响应体（FastAPI 的形状）：``detail`` 是说明；请求体校验错误（422）时是错误列表。"""

    detail: str | list[dict]


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    redis: bool
    workers_alive: int


# ---------------- MediaMTX 回调 ----------------


class MediaMtxAuthRequest(BaseModel):
    """MediaMTX ``authMethod: http`` 发来的鉴权请求（v1.20 的字段）。任何 2xx 表示允许。"""

    model_config = ConfigDict(extra="ignore")

    ip: str | None = Field(None, max_length=64)
    user: str | None = Field(None, max_length=512)
    password: str | None = Field(None, max_length=512)
    token: str | None = Field(None, max_length=4096)
    action: str = Field(max_length=32, description="publish / read / playback / api / metrics / pprof")
    path: str | None = Field(None, max_length=256)
    protocol: str | None = Field(None, max_length=32)
    id: str | None = Field(None, max_length=64)
    query: str | None = Field(None, max_length=4096)
    userAgent: str | None = Field(None, max_length=1024)  # noqa: N815 - MediaMTX 的字段名


class MediaMtxAuthResponse(BaseModel):
    allowed: bool
    reason: str | None = None


class PathHookRequest(_Request):
    """MediaMTX 的 runOnAvailable / runOnUnavailable 钩子通知：某路径变为可读 / 不可读。"""

    path: StreamName
    event: Literal["available", "unavailable"]


class PathHookResponse(BaseModel):
    path: str
    available: bool = Field(description="网关核实后的可读状态（配置了 MEDIAMTX_API_URL 时以 MediaMTX API 为准）")
    action: Literal["started", "stopped", "none"] = Field(description="本次通知引起的动作；重复通知为 none")
    session_id: str | None = None


# ---------------- 教师监控令牌 ----------------


class MonitorTokenRequest(_Request):
    """为一名教师签发监控令牌（后端用 API Key 调用，再把令牌交给教师的浏览器）。"""

    teacher: Identifier = Field(description="教师标识（写入审计记录）")
    exam_id: Identifier | None = Field(None, description="只看这场考试的会话；省略时看全部会话")
    ttl_s: int | None = Field(None, ge=30, le=86400, description="有效期（秒），默认 MONITOR_TOKEN_TTL_S；页面在过期前续期")


class MonitorTokenResponse(BaseModel):
    token: str = Field(description="Socket.IO auth.token；打开监控页时放在地址的 # 之后：/monitor#token=...")
    grant_id: str = Field(description="授权 ID：续期不变，撤销时使用")
    teacher: str
    exam_id: str | None = None
    expires_at: str = Field(description="ISO-8601 UTC")
    renew_until: str = Field(description="最多能续期到的时刻（ISO-8601 UTC）")


class RevokeGrantRequest(_Request):
    grant_id: Identifier


class RevokeGrantResponse(BaseModel):
    grant_id: str
    revoked: bool = True
    disconnected: int = Field(description="本网关实例上因此断开的连接数（其他实例在下一次检查时断开）")
