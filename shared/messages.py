"""Socket.IO 事件负载模型（公开契约，见 DESIGN 第 3 节与两份种子文档）。

未计算的值一律为 null，绝不编造。
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator, model_validator

from .api import EpisodeReview, Identifier, IdentityReference, StreamName
from .events import ANALYSIS_EVENTS
from .risk import Risk

# 客户端发来的数：只收 JSON 数字（不把 "12.5"、"nan" 这样的字符串或 true/false 转成数），且必须有限
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


def iso_utc(ts: float) -> str:
    """Unix 时间戳 -> ISO-8601 UTC 字符串（毫秒精度，以 Z 结尾）。"""
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


# ---------------- monitor.update（种子 001 形状） ----------------


class AttentionMetrics(BaseModel):
    score: float | None = None
    confidence: float | None = None


class FaceMetrics(BaseModel):
    detected: bool | None = None
    multi_face_secs: float | None = None
    occlusion_ratio: float | None = None
    identity_distance: float | None = Field(
        None, description="最近一次身份比对：主人脸描述子与比对基准的距离（超过 IDENTITY_THRESHOLD 即不是同一人）"
    )
    identity_reference: IdentityReference | None = Field(
        None,
        description="比对基准：photo 创建会话时的参考照片；session_start 会话开头登记的人脸；"
        "photo_unusable 照片里没有恰好一张可用的人脸，改为会话开头登记；null 还没有基准",
    )


class PpgMetrics(BaseModel):
    hr_bpm: float | None = None
    signal_quality: float | None = None
    source: Literal["client", "video"] | None = Field(
        None,
        description="心率来自哪路信号：client = 学生端在编码前采样上传的皮肤颜色（ppg.samples），video = 服务器解码的视频",
    )


class AudioMetrics(BaseModel):
    """种子 001 的 ``dominant`` / ``confidence`` （语音情绪）之外，扩展了电平表与说话判定所需的字段。"""

    dominant: str | None = None
    confidence: float | None = None
    level_dbfs: float | None = Field(None, description="最近 0.3 秒的音频电平（dBFS）；只有电平，从不外发音频内容")
    speech_ratio: float | None = Field(None, description="最近 1 秒内判为语音的 30 ms 帧比例")
    talking: bool | None = None


class EmotionMetrics(BaseModel):
    """面部情绪（平滑后的主导情绪与其概率）；模型未就绪或没有人脸时为 null。"""

    dominant: str | None = None
    confidence: float | None = None


class Metrics(BaseModel):
    attention: AttentionMetrics = Field(default_factory=AttentionMetrics)
    face: FaceMetrics = Field(default_factory=FaceMetrics)
    emotion: EmotionMetrics = Field(default_factory=EmotionMetrics)
    ppg: PpgMetrics = Field(default_factory=PpgMetrics)
    audio: AudioMetrics = Field(default_factory=AudioMetrics)


AnomalyCode = Literal[
    "NO_FACE", "MULTI_FACE", "LOOK_AWAY", "LOOKING_DOWN", "OCCLUSION", "TALKING", "IDENTITY_CHANGED"
]
Severity = Literal["low", "medium", "high"]


class Anomaly(BaseModel):
    code: AnomalyCode
    severity: Severity
    duration_ms: int


class SystemMetrics(BaseModel):
    worker: str | None = Field(None, description="分析这一路的工作进程（教师墙据此数出在工作的进程数）")
    gpu_util: float | None = None
    cpu_util: float | None = None
    dropped_frames: int = Field(0, description="按目标分析帧率本应分析而没有分析的帧（累计）")
    degraded: bool = Field(False, description="所属工作进程跟不上：它的所有流一起降低了分析帧率（解码与 rPPG 采样照常）")
    analysis_fps: float | None = Field(None, description="所属工作进程当前每路流的分析帧率（降级时低于目标）")


class MonitorUpdate(BaseModel):
    session_id: str
    stream_name: str | None = None
    exam_id: str | None = Field(None, description="会话创建时给出的考试（教师墙按它筛选）")
    student_id: str | None = Field(None, description="会话创建时给出的考生（卡片标题；没有时用流名）")
    risk: Risk | None = Field(None, description="风险分（教师墙的排序依据，算法见 shared/risk.py 与 README “风险分”）")
    timestamp: str = Field(description="ISO-8601 UTC")
    models: list[str]
    metrics: Metrics
    anomalies: list[Anomaly] = Field(default_factory=list)
    latency_ms: float | None = None
    system: SystemMetrics = Field(default_factory=SystemMetrics)
    null_reasons: dict[str, str] = Field(
        default_factory=dict,
        description="metrics 中为 null 的字段（如 'ppg.hr_bpm'）-> 原因代码（README 列出全部代码）",
    )
    replay: bool = Field(False, description="true：客户端加入时补发的最近 10 秒快照（按时间顺序，先于实时事件）")


class MonitorPreview(BaseModel):
    """教师墙的预览小图：只发往 ``/monitor``（有权限的教师连接），不进回放缓冲、不写入 Redis。"""

    session_id: str
    stream_name: str | None = None
    exam_id: str | None = None
    student_id: str | None = None
    timestamp: str = Field(description="所取那一帧的时刻，ISO-8601 UTC")
    mode: Literal["mosaic", "plain"] = Field(description="mosaic：16x9 格的马赛克；plain：普通缩略图")
    image: str = Field(
        max_length=65536, pattern=r"^data:image/jpeg;base64,", description="160x90 的 JPEG（data URL），约 1–3 KB"
    )


# ---------------- 种子 000 事件 ----------------


class EmotionResult(BaseModel):
    """video_emotion_result / rtsp_video_analysis / student.emotion 的 result 字段。"""

    dominant_emotion: str | None = None
    face_detected: bool
    face_count: int = 0
    confidence: float | None = None
    emotions: dict[str, float] | None = None


class StreamResultEvent(BaseModel):
    session_id: str
    stream_name: str
    result: EmotionResult
    video_timestamp: float = Field(description="所分析帧被解码时的 Unix 时间（秒）")


class HeartRateResult(BaseModel):
    """heart_rate_result / rtsp_heart_rate_analysis / student.heart_rate 的 result 字段。"""

    hr_bpm: float | None = Field(None, description="心率；样本不足或信号质量过低时为 null")
    signal_quality: float | None = Field(None, description="0..1，由频谱信噪比换算；样本不足时为 null")
    face_detected: bool
    window_s: float = Field(description="本次估计所用的信号时长（秒）")
    source: Literal["client", "video"] | None = Field(None, description="同 monitor.update 的 metrics.ppg.source")


class HeartRateEvent(BaseModel):
    session_id: str
    stream_name: str
    result: HeartRateResult
    video_timestamp: float


# ---------------- 客户端 -> 服务端 ----------------


class MonitorSubscribe(BaseModel):
    """``monitor.subscribe`` / ``monitor.unsubscribe``：按会话 ID 或流名（二选一）。"""

    model_config = ConfigDict(extra="forbid")

    session_id: Identifier | None = None
    stream_name: StreamName | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> MonitorSubscribe:
        if (self.session_id is None) == (self.stream_name is None):
            raise ValueError("必须且只能提供 session_id 或 stream_name 之一")
        return self


class DeliveryOptions(BaseModel):
    """教师连接在 ``auth`` 里（与 ``token`` 并列）声明的投递方式；都不给时与以前一样逐条收全部事件。

    - ``events``：只收这些分析事件（``monitor.update``、兼容旧前端的事件名与 ``student.*``）；其他服务端事件
      （``auth.expired``、``rate_limited`` 等）照常收到；
    - ``batch``：分析事件（包括回放的 ``monitor.update``）攒成 ``monitor.batch {events: [[事件名, 负载], ...]}``，
      每 50 ms 至多一条；其他事件仍逐条发。
    """

    model_config = ConfigDict(extra="ignore")  # auth 里的 token 等其他字段不在这里

    events: list[str] | None = Field(None, max_length=16)
    batch: StrictBool = False

    @field_validator("events")
    @classmethod
    def _known_events(cls, events: list[str] | None) -> list[str] | None:
        unknown = sorted(set(events or ()) - ANALYSIS_EVENTS)
        if unknown:
            raise ValueError(f"未知的事件名 {unknown[:3]}，可选：{sorted(ANALYSIS_EVENTS)}")
        return events


class TimelineRequest(BaseModel):
    """``monitor.timeline``：会话页要整场的数据（ack 为 :class:`shared.api.SessionTimeline`）。"""

    model_config = ConfigDict(extra="forbid")

    session_id: Identifier


EPISODE_ID_PATTERN = r"^[A-Z_]{1,32}@[0-9T:.\-]{10,30}Z$"


class ReviewRequest(BaseModel):
    """``monitor.review``：把一个已结束的异常事件段标为已复核（或取消），附备注。"""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    session_id: Identifier
    episode_id: str = Field(pattern=EPISODE_ID_PATTERN, description="报告里事件段的 episode_id")
    reviewed: StrictBool
    note: str = Field("", max_length=500)


class ReviewAck(BaseModel):
    ok: bool
    review: EpisodeReview | None = None
    error: str | None = None


class SessionEnded(BaseModel):
    """``session.ended``（服务端 -> /monitor）：会话结束、报告已定稿；发往它的流房间与广播房间。"""

    session_id: str
    stream_name: str
    exam_id: str | None = None
    reason: str
    ended_at: str | None = None


class SubscribeAck(BaseModel):
    ok: bool
    stream_name: str | None = None
    session_id: str | None = None
    error: str | None = None


class SessionHeartbeat(BaseModel):
    """``session.heartbeat``：学生页每 2 秒一次。"""

    model_config = ConfigDict(extra="forbid")

    session_id: Identifier
    ts: Number | None = Field(None, description="客户端时间（毫秒或秒，仅记录）")


class HeartbeatAck(BaseModel):
    ok: bool
    error: str | None = None


class SignalClose(BaseModel):
    """``signal.close``：服务端通知学生端本次 AI 连接已关闭（原因见 reason），学生端可重新发起。"""

    session_id: str
    reason: str


# ---------------- 信令（学生端 <-> 网关 <-> MediaMTX WHIP） ----------------


class SignalOffer(BaseModel):
    """``signal.offer``：学生端的 SDP offer；推流令牌放在连接的 Socket.IO ``auth.publish_token`` 中。"""

    model_config = ConfigDict(extra="forbid")

    session_id: Identifier
    sdp: str = Field(min_length=1, max_length=262144)


class IceCandidate(BaseModel):
    """浏览器 ``RTCIceCandidate.toJSON()`` 的形状。"""

    model_config = ConfigDict(extra="ignore")

    candidate: str = Field(max_length=1024)
    sdpMid: str | None = None  # noqa: N815 - 浏览器的字段名
    sdpMLineIndex: StrictInt | None = None  # noqa: N815
    usernameFragment: str | None = None  # noqa: N815


class SignalIce(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: Identifier
    candidate: IceCandidate


class SignalCloseRequest(BaseModel):
    """学生端发来的 ``signal.close``：结束本次推流（交卷、离开页面）。"""

    model_config = ConfigDict(extra="forbid")

    session_id: Identifier
    reason: str | None = Field(None, max_length=64)


class SignalAnswer(BaseModel):
    session_id: str
    sdp: str


class SignalReady(BaseModel):
    """``signal.ready``：流已到达 MediaMTX、可被读取，分析开始。"""

    session_id: str


class SignalAck(BaseModel):
    """信令事件的 ack。失败时 ``reason`` 与随后的 ``signal.close`` 原因相同。"""

    ok: bool
    reason: str | None = None
    error: str | None = None


# ---------------- 学生端本地 rPPG 采样（编码前的皮肤颜色，只有数值） ----------------

PPG_MAX_ROWS = 64


class PpgRoi(BaseModel):
    """``ppg.roi``（服务端 -> 会话房间）：学生端应当采样的人脸区域。

    坐标是相对视频帧宽高的 0..1 浮点数；框比脸大，学生端用皮肤色度掩膜选出皮肤像素。``roi`` 为 null 表示没有人脸，停止采样。
    """

    session_id: str
    roi: tuple[float, float, float, float] | None
    seq: int


class PpgSamples(BaseModel):
    """``ppg.samples``（学生端 -> 服务端，每秒一批）：每行 ``[t_ms, r, g, b]``。

    ``t_ms`` 为该帧的采集时刻（页面 ``performance.now()``，毫秒，严格递增）；r/g/b 为 ROI 内皮肤像素的均值（0..255）。
    """

    model_config = ConfigDict(extra="forbid")

    session_id: Identifier
    roi_seq: StrictInt | None = None
    samples: list[tuple[Number, Number, Number, Number]] = Field(min_length=1, max_length=PPG_MAX_ROWS)

    @model_validator(mode="after")
    def _check_rows(self) -> PpgSamples:
        previous = None
        for t, *rgb in self.samples:
            if not all(0.0 <= v <= 255.0 for v in rgb):
                raise ValueError("r/g/b 必须在 0..255 之间")
            if not 0.0 <= t < 1e12 or (previous is not None and t <= previous):
                raise ValueError("t_ms 必须是非负且严格递增的毫秒时间")
            previous = t
        return self


class PpgSamplesAck(BaseModel):
    ok: bool
    accepted: int | None = None
    error: str | None = None
