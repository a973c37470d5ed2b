"""会话记录 ``session:<id>``、流 -> 会话的显式绑定 ``stream_session:<流>``、考试+考生 -> 会话 ``exam_user:<考试>:<考生>``、
参考照片 ``reference_photo:<id>``，以及会话状态变化列表 ``transitions:<id>`` 的写入（CREATED / ACTIVE / ENDED；读取在报告里）。"""

from __future__ import annotations

import json
import secrets
import time

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from shared.api import CreateSessionRequest, SessionInfo, reference_photo_bytes
from shared.keys import REFERENCE_PHOTO_TTL_S, RedisKeys, as_text
from shared.messages import iso_utc
from shared.streams import make_stream_name, new_session_id, parse_stream_name

from ..digest import token_digest
from ..errors import Conflict, NotFound
from .liveness import LivenessStore


class SessionStore:
    def __init__(self, client: aioredis.Redis, keys: RedisKeys, liveness: LivenessStore) -> None:
        self.r = client
        self.keys = keys
        self.liveness = liveness

    async def create(self, req: CreateSessionRequest, token_ttl_s: float) -> tuple[SessionInfo, str]:
        """新会话：绑定流名（同一流名同时只能属于一个未结束的会话，否则 Conflict），记录 CREATED，进入等待媒体集合。

        返回 (会话记录, 推流令牌)。令牌只在这里出现一次：Redis 里只有它的摘要（记录里与 ``publish_token:<摘要>`` 索引）。"""
        session_id = new_session_id()
        now = time.time()
        stream_name = requested_stream_name(req) or session_id
        token = secrets.token_urlsafe(24)
        digest = token_digest(token)
        info = SessionInfo(
            session_id=session_id,
            stream_name=stream_name,
            exam_id=req.exam_id,
            student_id=req.student_id,
            publish_token_sha256=digest,
            publish_token_expires_at=iso_utc(now + token_ttl_s),
            status="CREATED",
            created_at=iso_utc(now),
            rtsp_url=req.rtsp_url,
            reference_photo=req.reference_photo is not None,
        )
        # 同一流名同时只能属于一个未结束的会话
        bound = await self.r.set(self.keys.stream_session(stream_name), session_id, nx=True)
        if not bound:
            current = await self.r.get(self.keys.stream_session(stream_name))
            existing = await self.get(as_text(current)) if current else None
            if existing is not None and existing.status != "ENDED":
                raise Conflict(f"流 {stream_name} 已属于未结束的会话 {existing.session_id}")
            await self.r.set(self.keys.stream_session(stream_name), session_id)
        pipe = self.r.pipeline(transaction=True)
        pipe.set(self.keys.session(session_id), info.model_dump_json())
        pipe.set(self.keys.publish_token(digest), session_id)
        pipe.rpush(self.keys.transitions(session_id), _transition("CREATED", "create_session"))
        self.liveness.await_media(pipe, session_id, int(now * 1000))
        if req.exam_id and req.student_id:
            pipe.set(self.keys.exam_user(req.exam_id.lower(), req.student_id), session_id)
        if req.reference_photo is not None:
            photo = reference_photo_bytes(req.reference_photo)
            pipe.set(self.keys.reference_photo(session_id), photo, ex=REFERENCE_PHOTO_TTL_S)
        await pipe.execute()
        return info, token

    async def for_token(self, token: str) -> SessionInfo | None:
        """推流令牌所属的会话（按摘要查找）；没有时 None。"""
        bound = await self.r.get(self.keys.publish_token(token_digest(token)))
        return await self.get(as_text(bound)) if bound else None

    async def get(self, session_id: str) -> SessionInfo | None:
        raw = await self.r.get(self.keys.session(session_id))
        return SessionInfo.model_validate_json(raw) if raw else None

    async def require(self, session_id: str) -> SessionInfo:
        """会话记录；不存在时 NotFound。"""
        info = await self.get(session_id)
        if info is None:
            raise NotFound(f"会话 {session_id} 不存在")
        return info

    async def for_path(self, path: str) -> SessionInfo | None:
        """MediaMTX 路径（即流名）显式绑定的会话。"""
        bound = await self.r.get(self.keys.stream_session(path))
        return await self.get(as_text(bound)) if bound else None

    async def resolve(self, stream_name: str) -> str:
        """流 -> 会话 ID：显式绑定优先，其次按流名解析出的考试+考生查找，最后退回流名本身。"""
        bound = await self.r.get(self.keys.stream_session(stream_name))
        if bound:
            return as_text(bound)
        parsed = parse_stream_name(stream_name)
        if parsed is not None:
            found = await self.r.get(self.keys.exam_user(parsed.exam_id, parsed.student_id))
            if found:
                return as_text(found)
        return stream_name

    async def mark_active(self, session_id: str) -> None:
        """信令完成：CREATED -> ACTIVE（已是其他状态则不变）。与结束会话并发时以结束为准（WATCH）。"""
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

    async def mark_ended(self, info: SessionInfo, reason: str) -> SessionInfo:
        """会话 -> ENDED（记录结束时刻与原因）；同一事务里删除参考照片、移出心跳与等待媒体两个集合。返回结束后的记录。

        并发的几次结束（后端重试、与心跳超时清理同时）以先写入者为准（WATCH）：会话已结束时不再写，
        返回已有的记录，所以只有一条 ENDED 状态变化、一个结束原因。"""
        session_id = info.session_id
        key = self.keys.session(session_id)
        async with self.r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    current = SessionInfo.model_validate_json(raw) if raw else info
                    if current.status == "ENDED":
                        return current
                    ended = current.model_copy(update={"status": "ENDED", "ended_at": iso_utc(time.time()), "end_reason": reason})
                    pipe.multi()
                    pipe.set(key, ended.model_dump_json())
                    pipe.rpush(self.keys.transitions(session_id), _transition("ENDED", reason))
                    pipe.delete(self.keys.reference_photo(session_id))  # 参考照片不随报告保留
                    self.liveness.forget(pipe, session_id)
                    await pipe.execute()
                    return ended
                except WatchError:
                    continue  # 会话同时被修改（CREATED -> ACTIVE 或被结束）：重读再试


def requested_stream_name(req: CreateSessionRequest) -> str | None:
    """创建会话请求对应的流名：请求指定的，或由考试+考生决定；都没有时 None（流名即新会话的 ID）。"""
    if req.stream_name:
        return req.stream_name
    if req.exam_id and req.student_id:
        return make_stream_name(req.exam_id, req.student_id)
    return None


def _transition(state: str, reason: str) -> str:
    return json.dumps({"state": state, "at_ms": int(time.time() * 1000), "reason": reason})
