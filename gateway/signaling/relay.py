"""信令中继：学生端的 Socket.IO 信令 <-> MediaMTX 的 WHIP 接口。

- ``offer``：校验令牌与 offer，结束该会话之前的 WHIP 资源（重新发起推流），``POST`` 到 ``<WHIP 地址>/<流名>/whip``
  （Bearer 为该会话的推流令牌，MediaMTX 再经鉴权接口核对），记录 Location，会话 CREATED -> ACTIVE，返回 answer。
- ``ice``：一个候选 -> ``PATCH`` trickle-ice-sdpfrag（数字 mid）。
- ``close``：``DELETE`` 该会话的 WHIP 资源。

失败抛出 :class:`SignalingError`，其 ``reason`` 原样作为 ``signal.close`` 的原因发给学生端。
"""

from __future__ import annotations

import time

from shared.api import SessionInfo, WhipResource
from shared.messages import IceCandidate
from shared.settings import Settings

from ..digest import matches_digest
from ..store.sessions import SessionStore
from ..store.whip import WhipStore
from .publish_auth import check_publish_token
from .sdp import OfferRejected, ice_fragment, parse_offer
from .whip import WhipClient, WhipError


class SignalingError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class SignalingRelay:
    def __init__(self, sessions: SessionStore, resources: WhipStore, settings: Settings, whip: WhipClient | None) -> None:
        self.sessions = sessions
        self.resources = resources
        self.settings = settings
        self.whip = whip

    async def authorize(self, session_id: str, token: str | None, for_publish: bool = False) -> SessionInfo:
        """令牌属于该未结束的会话（``for_publish`` 时还须未过期），否则 :class:`SignalingError`。"""
        info = await self.sessions.get(session_id)
        reason = check_publish_token(info, token, time.time(), for_publish)
        if reason is not None:
            raise SignalingError(reason, _REASON_TEXT.get(reason, reason))
        assert info is not None
        return info

    async def offer(self, session_id: str, token: str | None, sdp: str) -> str:
        info = await self.authorize(session_id, token, for_publish=True)
        try:
            summary = parse_offer(sdp, self.settings.offer_max_bytes)
        except OfferRejected as exc:
            raise SignalingError("offer_invalid", str(exc)) from None
        whip = self._client()
        try:
            session = await whip.publish(info.stream_name, sdp, token or "")
        except WhipError as exc:
            raise SignalingError(exc.reason, f"媒体服务器拒绝或不可达：{exc.detail}") from None
        old = await self.resources.set(session_id, WhipResource(location=session.location, offer=summary))
        if old is not None and old.location != session.location:
            await self._delete_quietly(old, token)
        await self.sessions.mark_active(session_id)
        return session.answer_sdp

    async def ice(self, session_id: str, token: str | None, candidate: IceCandidate) -> None:
        await self.authorize(session_id, token)
        resource = await self.resources.get(session_id)
        if resource is None:
            raise SignalingError("no_media_session", "还没有已应答的 offer，无法添加候选")
        try:
            fragment = ice_fragment(resource.offer, candidate.candidate, candidate.sdpMid, candidate.sdpMLineIndex)
        except OfferRejected as exc:
            raise SignalingError("candidate_invalid", str(exc)) from None
        try:
            await self._client().add_candidates(resource.location, fragment, token or "")
        except WhipError as exc:
            raise SignalingError(exc.reason, exc.detail) from None

    async def close(self, session_id: str, token: str | None) -> bool:
        """结束会话当前的 WHIP 资源；没有资源时返回 False。会话已结束也允许（令牌仍须正确）。"""
        info = await self.sessions.get(session_id)
        if info is None or not matches_digest(token, info.publish_token_sha256):
            raise SignalingError("invalid_token", _REASON_TEXT["invalid_token"])
        return await self.release(info, token)

    async def release(self, info: SessionInfo, token: str | None = None) -> bool:
        """结束会话的 WHIP 资源（学生端关闭时带它的令牌；会话结束时网关没有令牌，不带凭据 DELETE，
        MediaMTX 拒绝时由结束会话随后经 MediaMTX API 踢掉发布端）。"""
        resource = await self.resources.pop(info.session_id)
        if resource is None:
            return False
        await self._delete_quietly(resource, token)
        return True

    async def _delete_quietly(self, resource: WhipResource, token: str | None) -> None:
        if self.whip is None:
            return
        try:
            await self.whip.delete(resource.location, token)
        except WhipError:
            pass  # MediaMTX 在握手超时 / 无媒体后也会自行清理该会话

    def _client(self) -> WhipClient:
        if self.whip is None:
            raise SignalingError("whip_not_configured", "网关未配置 MEDIAMTX_WHIP_URL，无法中继 WebRTC 推流")
        return self.whip


_REASON_TEXT = {
    "session_not_found": "会话不存在",
    "session_ended": "会话已结束",
    "invalid_token": "推流令牌错误或不属于该会话",
    "token_expired": "推流令牌已过期",
}
