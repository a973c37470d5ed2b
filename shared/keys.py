"""Redis 键名与频道名（全部带可配置前缀）。

- ``streams``            哈希：期望运行的流 -> 任务 JSON（rtsp/start 写入，rtsp/stop 删除）
- ``lease:<stream>``     字符串：当前所属工作进程 ID，带 PX 过期，由所属进程续约
- ``holder:<stream>``    字符串：最近的所属工作进程 ID（租约的 10 倍有效期，主动交出时删除；区分认领与接管）
- ``stream_status:<s>``  字符串：所属进程上报的消费状态 JSON，带过期
- ``workers``            有序集合：工作进程 ID -> 最近心跳（Redis 服务器时间，毫秒）
- ``worker:<id>``        字符串：工作进程状态 JSON，带过期
- ``session:<id>``       字符串：会话记录 JSON
- ``stream_session:<s>`` 字符串：流 -> 会话 ID 的显式绑定
- ``exam_user:<exam>:<student>`` 字符串：考试+考生 -> 会话 ID（解析流名时使用）
- ``aggregate:<id>``     哈希：会话汇总（工作进程增量累加：时长、加权和、心率极值、当前状态）
- ``episodes:<id>``      列表：已结束的异常事件段 JSON
- ``transitions:<id>``   列表：会话状态变化 JSON（状态、时刻、原因）
- ``history:<id>``       列表：会话时间序列（每 HISTORY_INTERVAL_S 秒一行，列见 shared.api.HISTORY_FIELDS），会话页的图表
- ``reviews:<id>``       哈希：异常事件段 ID -> 教师的复核标记与备注 JSON（:class:`shared.api.EpisodeReview`）
- ``report:<id>``        字符串：会话结束时定稿的报告 JSON（保留 REPORT_RETENTION_DAYS 天）
- ``replay:<id>``        有序集合：最近 REPLAY_WINDOW_S 秒的 monitor.update JSON（分值为毫秒时间戳），新客户端加入时先回放
- ``reference_photo:<id>`` 字符串：创建会话时给的考生参考照片（JPEG / PNG 字节），所属工作进程认领流时读取；
  会话结束时删除，至多保留 REFERENCE_PHOTO_TTL_S 秒
- ``whip:<id>``          字符串：会话当前的 WHIP 资源 JSON（Location 与 offer 的 ICE 凭据），结束推流时删除
- ``awaiting_media``     有序集合：会话 ID -> 创建时刻（毫秒）；媒体到达或有心跳后移除，超时仍没有的会话被清理
- ``ppg:<id>``            流（XADD）：学生端上传的编码前皮肤颜色样本（ppg.samples），限长并带过期，所属工作进程读取
- ``heartbeats``         有序集合：会话 ID -> 最近一次学生端心跳（毫秒）；超时的会话被清理
- ``publish_token:<摘要>`` 字符串：推流令牌的 SHA-256 摘要 -> 会话 ID（学生端连接时查找；令牌本身不保存）
- ``viewers:<id>``       哈希：看过该会话的教师授权 -> 首次时刻与方式（审计，随报告保留）
- ``revoked_grant:<gid>`` 字符串：已撤销的监控授权，过期时刻为该授权最晚可能的过期时刻
- ``socketio``           Socket.IO 跨进程广播频道
"""

from __future__ import annotations

from dataclasses import dataclass


def as_text(value: object) -> str:
    """Redis 回复中的一个字符串值（键名、成员、条目 ID）。客户端不开 ``decode_responses``，值是 bytes
    （redis-py 的类型标注另含 str，也照收）。"""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise TypeError(f"Redis 回复不是字符串: {value!r}")


# monitor.update 回放缓冲的时长（秒）
REPLAY_WINDOW_S = 10.0
# 会话时间序列：每 2 秒一行；至多保留 6 小时（更长的会话只留最近 6 小时）
HISTORY_INTERVAL_S = 2.0
HISTORY_MAXLEN = 10800
# 学生端皮肤颜色样本流：每批约 1 秒，保留最近 60 批；会话不再上传 120 秒后整条流过期
PPG_STREAM_MAXLEN = 60
PPG_STREAM_TTL_S = 120
# 参考照片的最长保留（秒）：会话结束时即删除，这只是会话没有正常结束时的上限
REFERENCE_PHOTO_TTL_S = 24 * 3600


@dataclass(frozen=True)
class RedisKeys:
    prefix: str = "proctor:"

    @property
    def streams(self) -> str:
        return f"{self.prefix}streams"

    def lease(self, stream_name: str) -> str:
        return f"{self.prefix}lease:{stream_name}"

    def holder(self, stream_name: str) -> str:
        return f"{self.prefix}holder:{stream_name}"

    def stream_status(self, stream_name: str) -> str:
        return f"{self.prefix}stream_status:{stream_name}"

    @property
    def workers(self) -> str:
        return f"{self.prefix}workers"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}worker:{worker_id}"

    def session(self, session_id: str) -> str:
        return f"{self.prefix}session:{session_id}"

    def stream_session(self, stream_name: str) -> str:
        return f"{self.prefix}stream_session:{stream_name}"

    def exam_user(self, exam_id: str, student_id: str) -> str:
        return f"{self.prefix}exam_user:{exam_id}:{student_id}"

    def aggregate(self, session_id: str) -> str:
        return f"{self.prefix}aggregate:{session_id}"

    def episodes(self, session_id: str) -> str:
        return f"{self.prefix}episodes:{session_id}"

    def transitions(self, session_id: str) -> str:
        return f"{self.prefix}transitions:{session_id}"

    def history(self, session_id: str) -> str:
        return f"{self.prefix}history:{session_id}"

    def reviews(self, session_id: str) -> str:
        return f"{self.prefix}reviews:{session_id}"

    def reference_photo(self, session_id: str) -> str:
        return f"{self.prefix}reference_photo:{session_id}"

    def whip(self, session_id: str) -> str:
        return f"{self.prefix}whip:{session_id}"

    @property
    def awaiting_media(self) -> str:
        return f"{self.prefix}awaiting_media"

    def ppg(self, session_id: str) -> str:
        return f"{self.prefix}ppg:{session_id}"

    @property
    def heartbeats(self) -> str:
        return f"{self.prefix}heartbeats"

    def replay(self, session_id: str) -> str:
        return f"{self.prefix}replay:{session_id}"

    def report(self, session_id: str) -> str:
        return f"{self.prefix}report:{session_id}"

    def publish_token(self, digest: str) -> str:
        return f"{self.prefix}publish_token:{digest}"

    def viewers(self, session_id: str) -> str:
        return f"{self.prefix}viewers:{session_id}"

    def revoked_grant(self, grant_id: str) -> str:
        return f"{self.prefix}revoked_grant:{grant_id}"

    @property
    def socketio_channel(self) -> str:
        return f"{self.prefix}socketio"
