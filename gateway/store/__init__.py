"""网关一侧的 Redis 状态访问，按所存的东西分成小类，一个模块一类；键名全部来自 ``shared/keys.py`` 的 RedisKeys。

- ``sessions``：会话记录、流 -> 会话绑定、考试+考生查找、状态变化的写入；
- ``streams``：流任务、租约（所属进程）、由工作进程上报拼出的消费状态；
- ``whip``：会话当前的 WHIP 资源；
- ``liveness``：学生端心跳与等待媒体的会话，清理任务的认领；
- ``pulse``：学生端皮肤颜色样本流；
- ``replay``：monitor.update 回放缓冲的读取；
- ``reports``：定稿报告的读取、组装与保存；
- ``history``：会话时间序列（会话页的图表）；
- ``reviews``：教师对异常事件段的复核标记；
- ``workers``：工作进程状态列表与 Redis 连通检查；
- ``grants``：已撤销的教师监控授权；
- ``viewers``：哪次教师授权看过哪个会话（审计）。

这里只有读写；跨多个存储的流程（结束会话、启停流任务）在 :mod:`gateway.sessions`。
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from shared.keys import RedisKeys

from .grants import GrantStore
from .history import HistoryStore
from .liveness import LivenessStore
from .pulse import PulseStore
from .replay import ReplayStore
from .reports import ReportStore
from .reviews import ReviewStore
from .sessions import SessionStore
from .streams import StreamStore
from .viewers import ViewerStore
from .whip import WhipStore
from .workers import WorkerStore


@dataclass(frozen=True)
class Stores:
    """同一个 Redis 客户端上的全部存储（``create_app`` 创建一份，交给各服务）。"""

    sessions: SessionStore
    streams: StreamStore
    whip: WhipStore
    liveness: LivenessStore
    pulse: PulseStore
    replay: ReplayStore
    reports: ReportStore
    history: HistoryStore
    reviews: ReviewStore
    workers: WorkerStore
    grants: GrantStore
    viewers: ViewerStore

    @classmethod
    def open(cls, client: aioredis.Redis, keys: RedisKeys) -> Stores:
        liveness = LivenessStore(client, keys)
        return cls(
            sessions=SessionStore(client, keys, liveness),
            streams=StreamStore(client, keys),
            whip=WhipStore(client, keys),
            liveness=liveness,
            pulse=PulseStore(client, keys),
            replay=ReplayStore(client, keys),
            reports=ReportStore(client, keys),
            history=HistoryStore(client, keys),
            reviews=ReviewStore(client, keys),
            workers=WorkerStore(client, keys),
            grants=GrantStore(client, keys),
            viewers=ViewerStore(client, keys),
        )
