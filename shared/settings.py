"""从环境变量读取的全部配置（网关与工作进程共用）。

每个字段对应一个同名的大写环境变量，例如 ``redis_url`` <- ``REDIS_URL``。
README.md 的“配置”一节列出了全部变量；新增字段时请同步更新文档。
"""

from __future__ import annotations

from typing import get_args
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .messages import AnomalyCode

DEFAULT_SECRETS = frozenset({"change-me", "changeme", "secret", "password", "please-change-me", "dev", "test"})


class Settings(BaseSettings):
    """服务配置。导入本模块不做任何 I/O；调用方显式构造 ``Settings()``。"""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    # --- Redis ---
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis 连接地址；经 Sentinel（没有单点故障）：redis+sentinel://主机1:26379,主机2:26379/0/mymaster",
    )
    key_prefix: str = Field("proctor:", description="所有 Redis 键与 Socket.IO 频道的前缀")
    redis_timeout_s: float = Field(3.0, gt=0, description="单次 Redis 操作的套接字超时（秒）")
    gateway_redis_connections: int = Field(
        64, ge=4, le=10000,
        description="网关到 Redis 的连接数上限：几百个客户端同时连接时排队等连接（最多 redis_timeout_s 秒），"
        "而不是同时新开几百条连接、在满载的事件循环里超时（经 Sentinel 时不限）",
    )

    # --- 网关 ---
    gateway_host: str = Field("0.0.0.0", description="网关监听地址")
    gateway_port: int = Field(8000, ge=1, le=65535, description="网关监听端口")
    api_docs: bool = Field(
        False, description="提供 /docs 交互式接口文档（Swagger 页面从 CDN 加载脚本，只适合能上网的开发机；make run 打开）"
    )
    cors_allowed_origins: str = Field(
        "", description="允许跨域连接 Socket.IO 的来源（逗号分隔，如考试系统的 https://exam.school.lan）；空为仅同源"
    )
    api_key: str = Field("", description="后端调用 REST 接口所需的 X-API-Key（至少 16 个字符）；为空时网关拒绝启动")
    dev_mode: bool = Field(
        False, description="开发模式（make run 打开）：只在这时允许缺少或过短的密钥（见 README 的“访问控制”）"
    )
    monitor_token_secret: str = Field("", description="签发教师监控令牌的 HMAC 密钥（至少 32 个字符）")
    monitor_token_ttl_s: float = Field(900.0, ge=30, le=86400, description="监控令牌的默认有效期（秒）；页面在过期前续期")
    monitor_token_max_age_s: float = Field(
        12 * 3600.0, ge=60, description="一次签发的监控令牌最多能续期到签发后多久（秒）；之后须重新签发"
    )
    mediamtx_auth_secret: str = Field(
        "", description="MediaMTX 调用网关鉴权接口时带的共享密钥（HTTP Basic 密码，写在 authHTTPAddress 的 userinfo 中）"
    )
    auth_failures_per_minute: float = Field(
        20.0, gt=0, description="每个来源 IP 每分钟允许的鉴权失败次数（推流鉴权、API Key、监控令牌），超过后 429"
    )
    socket_events_per_s: float = Field(20.0, gt=0, description="每个 Socket.IO 连接每秒允许的事件数（可短时突发到 2 倍）")
    replay_max_bytes: int = Field(
        262144, ge=4096, description="一次回放（连接或订阅时补发的最近 10 秒 monitor.update）的最大字节数，超过时只发最新的"
    )
    socket_max_message_bytes: int = Field(
        65536, ge=4096, description="Socket.IO 单条消息的最大字节数（须大于 OFFER_MAX_BYTES）；超过即断开该连接"
    )
    stop_wait_s: float = Field(5.0, ge=0, description="rtsp/stop 等待所属工作进程释放流的最长时间")
    mediamtx_host: str | None = Field(
        None,
        description="MediaMTX 的主机名（种子 000 的写法）：给出时 RTSP、API、WHIP 地址按默认端口从它推出"
        "（rtsp://<主机>:8554、http://<主机>:9997、http://<主机>:8889），明确设置的地址优先",
    )
    mediamtx_api_url: str | None = Field(
        None,
        description="MediaMTX 控制 API 地址（如 http://mediamtx:9997）；设置后结束会话时踢掉该路径的发布端，"
        "并每 MEDIAMTX_POLL_S 秒查询哪些路径可读，据此启动/停止分析",
    )
    mediamtx_whip_url: str | None = Field(
        None, description="MediaMTX 的 WebRTC 地址（如 http://mediamtx:8889）；信令中继向 <地址>/<流名>/whip 发起 WHIP"
    )
    mediamtx_rtsp_url: str = Field(
        "rtsp://127.0.0.1:8554", description="工作进程读取 MediaMTX 的 RTSP 地址前缀；路径可读时按 <前缀>/<流名> 启动分析"
    )
    rtsp_allowed_hosts: str = Field(
        "",
        description="rtsp/start 与 create_session 的 rtsp_url 允许的主机，逗号分隔（不区分大小写）；为空时不限主机。"
        "MEDIAMTX_RTSP_URL 的主机总是允许",
    )
    mediamtx_read_user: str = Field("", description="工作进程读取 MediaMTX 时使用的用户名（鉴权接口只允许它读取）")
    mediamtx_read_password: str = Field("", description="工作进程读取 MediaMTX 时使用的密码")
    mediamtx_poll_s: float = Field(2.0, gt=0, description="查询 MediaMTX 路径可用性的周期（补充 runOnAvailable 钩子）")
    publish_token_ttl_s: float = Field(
        4 * 3600.0, gt=0, description="create_session 返回的推流令牌有效期（秒）；会话结束时立即失效"
    )
    whip_timeout_s: float = Field(8.0, gt=0, description="网关向 MediaMTX 发 WHIP 请求的超时")
    offer_max_bytes: int = Field(32768, ge=1024, description="signal.offer 中 SDP 的最大字节数")

    # --- 工作进程与任务租约 ---
    worker_capacity: int = Field(
        24, ge=1, description="每个工作进程最多同时处理的流数（上限；实际按实测余量认领，见 pipeline/pacing.py）"
    )
    lease_ttl_ms: int = Field(3000, ge=500, description="流租约有效期；所属进程失联超过该时间后流可被他人接管")
    claim_interval_ms: int = Field(500, ge=50, description="工作进程认领/续约/对账的周期")
    worker_metrics_host: str = Field("0.0.0.0", description="监督进程提供 /metrics（全部工作进程的指标）的监听地址")
    worker_metrics_port: int = Field(9101, ge=0, le=65535, description="监督进程的 /metrics 端口；0 为不提供")
    worker_metrics_dir: str | None = Field(
        None, description="多进程指标文件的目录（启动时清空）；默认系统临时目录下按监督进程 PID 新建"
    )

    # --- 拉流 ---
    rtsp_transports: str = Field("tcp,udp", description="依次尝试的 RTSP 传输方式")
    rtsp_open_timeout_s: float = Field(5.0, gt=0, description="打开 RTSP 流的超时")
    rtsp_read_timeout_s: float = Field(3.0, gt=0, description="读取数据包的超时；超时即视为断流并重连")
    reconnect_base_s: float = Field(0.5, gt=0, description="重连退避的初始间隔")
    reconnect_max_s: float = Field(4.0, gt=0, description="重连退避的最大间隔")
    reconnect_max_attempts: int = Field(
        200, ge=1, description="连续失败多少次后放弃该流（状态变为 failed）"
    )
    frame_max_width: int = Field(640, ge=64, description="解码后缩放的最大宽度")
    frame_max_height: int = Field(360, ge=64, description="解码后缩放的最大高度")

    # --- 分析与推送 ---
    analysis_fps: float = Field(5.0, gt=0, le=30, description="人脸级模型的分析帧率（每路流）")
    face_detect_width: int = Field(
        320, ge=96, description="人脸检测输入宽度（按比例缩放；更小时关键点抖动让心率采样框频繁移动，见 docs/benchmarks.md）"
    )
    face_min_score: float = Field(0.6, ge=0, le=1, description="人脸检测置信度阈值")
    emotion_backend: str = Field(
        "auto", description="情绪后端 auto / deepface / fer / none（auto：有 DeepFace 权重用 deepface，否则 fer）"
    )
    deepface_home: str | None = Field(None, description="DeepFace 权重根目录（含 .deepface/weights/）；默认 ~")
    audio_emotion_model: str | None = Field(
        None, description="emotion2vec 模型的本地目录（可选扩展 audio-emotion）；不设置则不做语音情绪"
    )
    look_away_deg: float = Field(
        25.0, gt=0, le=90, description="头部相对看屏幕时的姿态左右转过（或抬头超过）该角度视为视线偏离"
    )
    looking_down_deg: float = Field(18.0, gt=0, le=90, description="头部相对看屏幕时的姿态低头超过该角度视为低头")
    occlusion_threshold: float = Field(0.3, gt=0, le=1, description="遮挡比例达到该值视为遮挡")
    preview_mode: str = Field(
        "mosaic", description="教师墙的预览小图：mosaic（16x9 格马赛克，默认）/ plain（普通缩略图）/ off（不发）"
    )
    preview_interval_s: float = Field(15.0, ge=2, le=600, description="每路流隔这么久发一张预览小图")
    identity_check_s: float = Field(
        5.0, ge=0, description="每路流隔这么久比对一次主人脸与会话开头登记的是否同一人（每次约 0.1 核秒）；0 关闭"
    )
    identity_budget_cores: float = Field(
        0.05, gt=0, le=4, description="每个工作进程的身份比对至多用这么多核（流多时每路的比对间隔随之拉长）"
    )
    identity_threshold: float = Field(0.6, gt=0, le=2, description="人脸描述子距离超过该值视为换了人（dlib 的惯用值 0.6）")
    anomaly_onset_s: str = Field(
        "NO_FACE:2,MULTI_FACE:1,LOOK_AWAY:3,LOOKING_DOWN:3,OCCLUSION:2,TALKING:0.5,IDENTITY_CHANGED:2",
        description="各异常的触发时长（条件持续多久才报告），CODE:秒 逗号分隔",
    )
    anomaly_offset_s: float = Field(1.5, ge=0, description="异常条件消失多久后结束该异常")
    monitor_interval_ms: int = Field(
        400, ge=250, le=500, description="monitor.update 的节流间隔（每会话，250-500ms）"
    )
    publish_queue_size: int = Field(256, ge=1, description="发布队列长度；Redis 变慢时丢弃最旧事件")

    # --- 会话与报告 ---
    degraded_after_s: float = Field(10.0, gt=0, description="推流中断（没有新帧）多久后会话标为 DEGRADED")
    heartbeat_timeout_s: float = Field(
        30.0, gt=0, description="学生端发过心跳后，超过该时长没有新心跳即结束会话（原因 heartbeat_timeout）"
    )
    no_media_timeout_s: float = Field(
        300.0, gt=0, description="创建后这么久既没有媒体到达、也没有学生端心跳的会话被结束（原因 no_media）"
    )
    report_retention_days: float = Field(30.0, gt=0, description="已结束会话的报告与汇总在 Redis 中保留的天数")
    aggregate_flush_s: float = Field(2.0, gt=0, le=30, description="工作进程把会话汇总增量写入 Redis 的周期")

    # --- 日志 ---
    log_level: str = Field("INFO", description="日志级别")

    @model_validator(mode="after")
    def _derive_from_mediamtx_host(self) -> Settings:
        host = self.mediamtx_host
        if host:
            derived = {
                "mediamtx_rtsp_url": f"rtsp://{host}:8554",
                "mediamtx_api_url": f"http://{host}:9997",
                "mediamtx_whip_url": f"http://{host}:8889",
            }
            for name, url in derived.items():
                if name not in self.model_fields_set:
                    setattr(self, name, url)
        return self

    @field_validator("key_prefix")
    @classmethod
    def _prefix_ends_with_colon(cls, value: str) -> str:
        if value and not value.endswith(":"):
            value += ":"
        return value

    @field_validator("rtsp_transports")
    @classmethod
    def _known_transports(cls, value: str) -> str:
        items = [t.strip().lower() for t in value.split(",") if t.strip()]
        unknown = [t for t in items if t not in ("tcp", "udp")]
        if not items or unknown:
            raise ValueError(f"RTSP_TRANSPORTS 只能是 tcp/udp 的组合，收到 {value!r}")
        return ",".join(items)

    @field_validator("emotion_backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ("auto", "deepface", "fer", "none"):
            raise ValueError(f"EMOTION_BACKEND 只能是 auto / deepface / fer / none，收到 {value!r}")
        return value

    @field_validator("preview_mode")
    @classmethod
    def _known_preview(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ("mosaic", "plain", "off"):
            raise ValueError(f"PREVIEW_MODE 只能是 mosaic / plain / off，收到 {value!r}")
        return value

    @field_validator("anomaly_onset_s")
    @classmethod
    def _onsets(cls, value: str) -> str:
        known = set(get_args(AnomalyCode))
        for item in filter(None, (x.strip() for x in value.split(","))):
            code, _, seconds = item.partition(":")
            if code not in known:
                raise ValueError(f"ANOMALY_ONSET_S 中未知的异常代码 {code!r}")
            if float(seconds) < 0:
                raise ValueError(f"ANOMALY_ONSET_S 中 {code} 的时长不能为负")
        return value

    def secret_problems(self) -> list[str]:
        """网关启动前检查的密钥问题（空列表表示都合格）；开发模式之外有任何问题网关都拒绝启动。"""
        rules = [
            ("API_KEY", self.api_key, 16),
            ("MONITOR_TOKEN_SECRET", self.monitor_token_secret, 32),
            ("MEDIAMTX_AUTH_SECRET", self.mediamtx_auth_secret, 16),
        ]
        problems = [f"{name} 为空或少于 {n} 个字符" for name, value, n in rules if len(value) < n]
        problems += [f"{name} 是示例里的默认值" for name, value, _ in rules if value.lower() in DEFAULT_SECRETS]
        if self.mediamtx_read_user and len(self.mediamtx_read_password) < 12:
            problems.append("MEDIAMTX_READ_PASSWORD 为空或少于 12 个字符")
        return problems

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip() for o in self.cors_allowed_origins.split(",") if o.strip()]

    @property
    def allowed_rtsp_hosts(self) -> list[str]:
        """为空表示不限主机；否则另含 MediaMTX 的主机（路径可用时网关自己启动的分析读它）。"""
        hosts = [h.strip().lower() for h in self.rtsp_allowed_hosts.split(",") if h.strip()]
        ours = urlsplit(self.mediamtx_rtsp_url).hostname
        return [*hosts, ours] if hosts and ours else hosts

    @property
    def transports(self) -> list[str]:
        return self.rtsp_transports.split(",")

    @property
    def anomaly_onsets(self) -> dict[str, float]:
        pairs = (item.split(":") for item in self.anomaly_onset_s.split(",") if item.strip())
        return {code.strip(): float(seconds) for code, seconds in pairs}
