"""流任务：期望流集合 ``streams``（流名 -> 任务 JSON）、所属工作进程的租约 ``lease:<流>``、其上报的消费状态
``stream_status:<流>``；把三者拼成 rtsp/status 中每路流的状态。启停的流程在 :mod:`gateway.sessions.streams`。"""

from __future__ import annotations

import redis.asyncio as aioredis

from shared.api import ConsumerStatus, StreamJob
from shared.keys import RedisKeys, as_text
from shared.streams import redact_url


class StreamStore:
    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self.r = client
        self.keys = keys

    async def add(self, job: StreamJob) -> bool:
        """写入任务（HSETNX）；该流已有任务时不覆盖，返回 False。"""
        return bool(await self.r.hsetnx(self.keys.streams, job.stream_name, job.model_dump_json()))

    async def job(self, stream_name: str) -> StreamJob | None:
        raw = await self.r.hget(self.keys.streams, stream_name)
        return StreamJob.model_validate_json(raw) if raw else None

    async def jobs(self) -> list[StreamJob]:
        return [StreamJob.model_validate_json(v) for v in await self.r.hvals(self.keys.streams)]

    async def remove(self, stream_name: str) -> bool:
        """删除任务（所属工作进程下一个周期停止该流并释放租约）；没有该任务时 False。"""
        return bool(await self.r.hdel(self.keys.streams, stream_name))

    async def owner(self, stream_name: str) -> str | None:
        """当前持有该流租约的工作进程。"""
        raw = await self.r.get(self.keys.lease(stream_name))
        return as_text(raw) if raw else None

    async def leased(self, stream_name: str) -> bool:
        return bool(await self.r.exists(self.keys.lease(stream_name)))

    async def live_sessions(self, exam_id: str | None = None) -> list[str]:
        """正在消费的流所属的会话（给出 ``exam_id`` 时只要该考试的）。"""
        return sorted({job.session_id for job in await self.jobs() if exam_id is None or job.exam_id == exam_id})

    async def statuses(self, alive: set[str]) -> list[ConsumerStatus]:
        """每个任务的消费状态（按流名排序）：所属进程的上报加上任务信息；``alive`` 是存活的工作进程。"""
        jobs = sorted(await self.jobs(), key=lambda j: j.stream_name)
        streams: list[ConsumerStatus] = []
        if jobs:
            names = [j.stream_name for j in jobs]
            owners = await self.r.mget([self.keys.lease(n) for n in names])
            reports = await self.r.mget([self.keys.stream_status(n) for n in names])
            for job, owner, report in zip(jobs, owners, reports):
                owner_id = as_text(owner) if owner else None
                st = ConsumerStatus.model_validate_json(report) if report else _pending(job.stream_name)
                if st.owner != owner_id:  # 状态来自上一任所属进程：只保留任务信息
                    st = _pending(job.stream_name)
                st = st.model_copy(
                    update={
                        "session_id": job.session_id,
                        "rtsp_url": redact_url(job.rtsp_url),
                        "owner": owner_id,
                        "owner_alive": owner_id in alive,
                    }
                )
                streams.append(st)
        return streams


def _pending(stream_name: str) -> ConsumerStatus:
    """还没有（当前所属进程的）上报时的状态：只有流名，其余取默认值。"""
    # shared/api.py 的字段用 Field(默认值, description=...) 的位置参数写默认值：不启用 pydantic 的 mypy 插件时，
    # mypy 对 pydantic 的 dataclass_transform 只认 default= 关键字，把这些字段当作必填
    return ConsumerStatus(stream_name=stream_name)
