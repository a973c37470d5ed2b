"""网关一侧的 Redis 状态访问：会话记录、期望流集合、消费状态汇总（异步客户端）。"""

from __future__ import annotations

import asyncio
import json
import secrets
import time

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError

from shared.api import (
    ConsumerStatus,
    CreateSessionRequest,
    RtspStatusResponse,
    RtspStopResponse,
    SessionInfo,
    SessionReport,
    StreamJob,
    WhipResource,
    WorkerStatus,
)
from shared.keys import PPG_STREAM_MAXLEN, PPG_STREAM_TTL_S, REPLAY_WINDOW_S, RedisKeys
from shared.messages import PpgSamples, iso_utc
from shared.settings import Settings
from shared.streams import make_stream_name, new_session_id, parse_stream_name

from ..sessions.report import build_report


class NotFound(Exception):
    """请求的会话或流不存在。"""


class Conflict(Exception):
    """请求与现有状态冲突。"""


def connect(settings: Settings) -> aioredis.Redis:
    """带超时与有限次指数退避重试的异步 Redis 客户端。"""
    return aioredis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=10,
    )


class Store:
    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self.r = client
        self.keys = keys

    # ---------------- 会话 ----------------
    async def create_session(self, req: CreateSessionRequest, token_ttl_s: float) -> SessionInfo:
        session_id = new_session_id()
        now = time.time()
        if req.stream_name:
            stream_name = req.stream_name
        elif req.exam_id and req.student_id:
            stream_name = make_stream_name(req.exam_id, req.student_id)
        else:
            stream_name = session_id
        info = SessionInfo(
            session_id=session_id,
            stream_name=stream_name,
            exam_id=req.exam_id,
            student_id=req.student_id,
            publish_token=secrets.token_urlsafe(24),
            publish_token_expires_at=iso_utc(now + token_ttl_s),
            status="CREATED",
            created_at=iso_utc(now),
            rtsp_url=req.rtsp_url,
        )
        # 同一流名同时只能属于一个未结束的会话
        bound = await self.r.set(self.keys.stream_session(stream_name), session_id, nx=True)
        if not bound:
            current = await self.r.get(self.keys.stream_session(stream_name))
            existing = await self.get_session(current.decode()) if current else None
            if existing is not None and existing.status != "ENDED":
                raise Conflict(f"流 {stream_name} 已属于未结束的会话 {existing.session_id}")
            await self.r.set(self.keys.stream_session(stream_name), session_id)
        pipe = self.r.pipeline(transaction=True)
        pipe.set(self.keys.session(session_id), info.model_dump_json())
        pipe.rpush(self.keys.transitions(session_id), _transition("CREATED", "create_session"))
        pipe.zadd(self.keys.awaiting_media, {session_id: int(now * 1000)})
        if req.exam_id and req.student_id:
            pipe.set(self.keys.exam_user(req.exam_id.lower(), req.student_id), session_id)
        await pipe.execute()
        return info

    async def get_session(self, session_id: str) -> SessionInfo | None:
        raw = await self.r.get(self.keys.session(session_id))
        return SessionInfo.model_validate_json(raw) if raw else None

    async def end_session(self, session_id: str, reason: str, stop_wait_s: float, retention_s: float) -> SessionReport:
        """结束会话并定稿报告（幂等：已结束的会话直接返回已保存的报告）。

        先停止拉流并等待所属工作进程释放流（释放前它会写完最后的汇总增量），再读汇总组装报告，
        报告与会话数据一起保留 ``retention_s`` 秒。流已经不在（推流端早已断开、从未开始）时照样定稿。"""
        info = await self.get_session(session_id)
        if info is None:
            raise NotFound(f"会话 {session_id} 不存在")
        if info.status == "ENDED":
            stored = await self.r.get(self.keys.report(session_id))
            if stored:
                return SessionReport.model_validate_json(stored)
        else:
            try:
                await self.stop_stream(info.stream_name, stop_wait_s)
            except NotFound:
                pass  # 流从未启动或已停止
            info = info.model_copy(update={"status": "ENDED", "ended_at": iso_utc(time.time()), "end_reason": reason})
            pipe = self.r.pipeline(transaction=True)
            pipe.set(self.keys.session(session_id), info.model_dump_json())
            pipe.rpush(self.keys.transitions(session_id), _transition("ENDED", reason))
            pipe.zrem(self.keys.heartbeats, session_id)
            pipe.zrem(self.keys.awaiting_media, session_id)
            await pipe.execute()
        report = await self._build_report(info)
        ttl = max(1, int(retention_s))
        pipe = self.r.pipeline(transaction=True)
        pipe.set(self.keys.report(session_id), report.model_dump_json(), ex=ttl)
        k = self.keys
        for key in (k.session(session_id), k.aggregate(session_id), k.episodes(session_id), k.transitions(session_id)):
            pipe.expire(key, ttl)
        await pipe.execute()
        return report

    async def session_for_path(self, path: str) -> SessionInfo | None:
        """MediaMTX 路径（即流名）显式绑定的会话。"""
        bound = await self.r.get(self.keys.stream_session(path))
        return await self.get_session(bound.decode()) if bound else None

    async def mark_active(self, session_id: str) -> None:
        """信令完成：CREATED -> ACTIVE（已是其他状态则不变）。与 end_session 并发时以结束为准（WATCH）。"""
        key = self.keys.session(session_id)
        async with self.r.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(key)
                raw = await pipe.get(key)
                info = SessionInfo.model_validate_json(raw) if raw else None
                if info is None or info.status != "CREATED":
                    return
                pipe.multi()
                pipe.set(key, info.model_copy(update={"status": "ACTIVE"}).model_dump_json())
                pipe.rpush(self.keys.transitions(session_id), _transition("ACTIVE", "signalling_done"))
                await pipe.execute()
            except WatchError:
                pass  # 会话同时被修改（结束）：不再标为 ACTIVE

    # ---------------- WHIP 资源（信令中继） ----------------
    async def set_whip(self, session_id: str, resource: WhipResource) -> WhipResource | None:
        """记录会话当前的 WHIP 资源，返回被替换的旧资源（学生端重新发起推流时由调用方结束它）。"""
        old = await self.r.getset(self.keys.whip(session_id), resource.model_dump_json())
        return WhipResource.model_validate_json(old) if old else None

    async def whip(self, session_id: str) -> WhipResource | None:
        raw = await self.r.get(self.keys.whip(session_id))
        return WhipResource.model_validate_json(raw) if raw else None

    async def pop_whip(self, session_id: str) -> WhipResource | None:
        raw = await self.r.getdel(self.keys.whip(session_id))
        return WhipResource.model_validate_json(raw) if raw else None

    async def heartbeat(self, session_id: str) -> None:
        """记录学生端心跳；会话不存在或已结束时 NotFound。"""
        info = await self.get_session(session_id)
        if info is None or info.status == "ENDED":
            raise NotFound(f"会话 {session_id} 不存在或已结束")
        await self.r.zadd(self.keys.heartbeats, {session_id: int(time.time() * 1000)})

    async def add_ppg_samples(self, session_id: str, batch: PpgSamples) -> None:
        """追加一批学生端皮肤颜色样本（只保留最近 ``PPG_STREAM_MAXLEN`` 批；会话不再上传后整条流过期）。"""
        key = self.keys.ppg(session_id)
        pipe = self.r.pipeline(transaction=False)
        pipe.xadd(key, {"samples": json.dumps(batch.samples, separators=(",", ":"))}, maxlen=PPG_STREAM_MAXLEN, approximate=False)
        pipe.expire(key, PPG_STREAM_TTL_S)
        await pipe.execute()

    async def claim_silent_sessions(self, timeout_s: float) -> list[str]:
        """心跳超时的会话。逐个 ZREM 认领：多个网关同时扫描时每个会话只由一个网关结束。"""
        cutoff = int((time.time() - timeout_s) * 1000)
        silent = [s.decode() for s in await self.r.zrangebyscore(self.keys.heartbeats, "-inf", cutoff)]
        return [sid for sid in silent if await self.r.zrem(self.keys.heartbeats, sid)]

    async def claim_sessions_without_media(self, timeout_s: float) -> list[str]:
        """创建超过 ``timeout_s`` 仍没有媒体（汇总里没有媒体状态）也没有学生端心跳的会话（逐个 ZREM 认领）。

        有媒体或有心跳的会话移出等待集合，此后由 DEGRADED 判断与心跳超时负责。"""
        cutoff = int((time.time() - timeout_s) * 1000)
        due = [s.decode() for s in await self.r.zrangebyscore(self.keys.awaiting_media, "-inf", cutoff)]
        claimed = []
        for sid in due:
            pipe = self.r.pipeline(transaction=False)
            pipe.hexists(self.keys.aggregate(sid), "state")
            pipe.zscore(self.keys.heartbeats, sid)
            has_media, beat = await pipe.execute()
            if await self.r.zrem(self.keys.awaiting_media, sid) and not has_media and beat is None:
                claimed.append(sid)
        return claimed

    async def report(self, session_id: str) -> SessionReport:
        """已结束：定稿的报告；进行中：当前的临时汇总（``final`` 为 false）。"""
        stored = await self.r.get(self.keys.report(session_id))
        if stored:
            return SessionReport.model_validate_json(stored)
        info = await self.get_session(session_id)
        if info is None:
            raise NotFound(f"会话 {session_id} 不存在（或报告已过保留期）")
        return await self._build_report(info)

    async def _build_report(self, info: SessionInfo) -> SessionReport:
        sid = info.session_id
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(self.keys.aggregate(sid))
        pipe.lrange(self.keys.episodes(sid), 0, -1)
        pipe.lrange(self.keys.transitions(sid), 0, -1)
        aggregate, episodes, transitions = await pipe.execute()
        return build_report(info, aggregate, episodes, transitions)

    async def replay(self, session_ids: list[str]) -> list[dict]:
        """这些会话最近 ``REPLAY_WINDOW_S`` 秒的 monitor.update，按时间排序并标记 ``replay: true``。"""
        if not session_ids:
            return []
        since = int((time.time() - REPLAY_WINDOW_S) * 1000)
        pipe = self.r.pipeline(transaction=False)
        for sid in session_ids:
            pipe.zrangebyscore(self.keys.replay(sid), since, "+inf", withscores=True)
        items = [(score, raw) for rows in await pipe.execute() for raw, score in rows]
        return [{**json.loads(raw), "replay": True} for _, raw in sorted(items, key=lambda x: x[0])]

    async def live_sessions(self) -> list[str]:
        """正在消费的流所属的会话。"""
        return sorted({job.session_id for job in await self.stream_jobs()})

    async def resolve_session(self, stream_name: str) -> str:
        """流 -> 会话 ID：显式绑定优先，其次按流名解析出的考试+考生查找，最后退回流名本身。"""
        bound = await self.r.get(self.keys.stream_session(stream_name))
        if bound:
            return bound.decode()
        parsed = parse_stream_name(stream_name)
        if parsed is not None:
            found = await self.r.get(self.keys.exam_user(parsed.exam_id, parsed.student_id))
            if found:
                return found.decode()
        return stream_name

    async def stream_for_session(self, session_id: str) -> str:
        info = await self.get_session(session_id)
        if info is None:
            raise NotFound(f"会话 {session_id} 不存在")
        return info.stream_name

    # ---------------- 流任务 ----------------
    async def start_stream(self, stream_name: str, rtsp_url: str, session_id: str | None) -> tuple[StreamJob, bool]:
        if session_id is None:
            session_id = await self.resolve_session(stream_name)
        job = StreamJob(stream_name=stream_name, rtsp_url=rtsp_url, session_id=session_id, created_at=iso_utc(time.time()))
        created = await self.r.hsetnx(self.keys.streams, stream_name, job.model_dump_json())
        if created:
            return job, True
        raw = await self.r.hget(self.keys.streams, stream_name)
        if raw is None:  # 恰好被并发停止：再试一次
            return await self.start_stream(stream_name, rtsp_url, session_id)
        existing = StreamJob.model_validate_json(raw)
        if existing.rtsp_url != rtsp_url:
            raise Conflict(f"流 {stream_name} 已在消费 {existing.rtsp_url}；请先 rtsp/stop")
        return existing, False

    async def stream_job(self, stream_name: str) -> StreamJob | None:
        raw = await self.r.hget(self.keys.streams, stream_name)
        return StreamJob.model_validate_json(raw) if raw else None

    async def stream_jobs(self) -> list[StreamJob]:
        return [StreamJob.model_validate_json(v) for v in await self.r.hvals(self.keys.streams)]

    async def stop_stream(self, stream_name: str, wait_s: float) -> RtspStopResponse:
        owner_raw = await self.r.get(self.keys.lease(stream_name))
        removed = await self.r.hdel(self.keys.streams, stream_name)
        if not removed:
            raise NotFound(f"流 {stream_name} 未在消费")
        owner = owner_raw.decode() if owner_raw else None
        deadline = time.monotonic() + wait_s
        stopped = owner is None
        while not stopped and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            stopped = not await self.r.exists(self.keys.lease(stream_name))
        return RtspStopResponse(stream_name=stream_name, stopped=stopped, owner=owner)

    async def status(self) -> RtspStatusResponse:
        workers = await self._workers()
        alive = {w.worker_id for w in workers}
        jobs = sorted(await self.stream_jobs(), key=lambda j: j.stream_name)
        streams: list[ConsumerStatus] = []
        if jobs:
            names = [j.stream_name for j in jobs]
            owners = await self.r.mget([self.keys.lease(n) for n in names])
            reports = await self.r.mget([self.keys.stream_status(n) for n in names])
            for job, owner, report in zip(jobs, owners, reports):
                owner_id = owner.decode() if owner else None
                st = ConsumerStatus.model_validate_json(report) if report else ConsumerStatus(stream_name=job.stream_name)
                if st.owner != owner_id:  # 状态来自上一任所属进程：只保留任务信息
                    st = ConsumerStatus(stream_name=job.stream_name)
                st = st.model_copy(
                    update={
                        "session_id": job.session_id,
                        "rtsp_url": job.rtsp_url,
                        "owner": owner_id,
                        "owner_alive": owner_id in alive,
                    }
                )
                streams.append(st)
        return RtspStatusResponse(workers=workers, streams=streams)

    async def _workers(self) -> list[WorkerStatus]:
        ids = [i.decode() for i in await self.r.zrange(self.keys.workers, 0, -1)]
        if not ids:
            return []
        raw = await self.r.mget([self.keys.worker(i) for i in ids])
        return [WorkerStatus.model_validate_json(v) for v in raw if v is not None]

    async def ping(self) -> bool:
        try:
            return bool(await self.r.ping())
        except Exception:  # noqa: BLE001 - 健康检查只报告状态
            return False

    async def workers_alive(self) -> int:
        return len(await self._workers())


def _transition(state: str, reason: str) -> str:
    return json.dumps({"state": state, "at_ms": int(time.time() * 1000), "reason": reason})
