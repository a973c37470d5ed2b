"""WHIP 客户端（RFC 9725，MediaMTX v1.20 的 ``/<路径>/whip``）：网关代学生端发起、补充候选与结束 WebRTC 推流。

每个请求都有超时；失败一律变成 :class:`WhipError`，其 ``reason`` 是发给学生端的 ``signal.close`` 原因代码：
``whip_unreachable``（连不上）、``whip_timeout``（超时）、``whip_status_<HTTP 状态码>``（MediaMTX 拒绝或出错）。
POST 不自动重试（重复 POST 会建立两个会话），由学生端按退避重新发起；DELETE 在网络错误时有限次重试。
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import quote, urljoin

import httpx

from shared.retry import retry_async

log = logging.getLogger(__name__)

# DELETE 在连不上时重试的退避：0.2 s 起加倍
RETRY_BASE_S = 0.2
RETRY_CAP_S = 2.0


class WhipError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class WhipSession:
    answer_sdp: str
    location: str  # 绝对地址：PATCH / DELETE 的目标


class WhipClient:
    def __init__(self, base_url: str, timeout_s: float, delete_retries: int = 2) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.client = httpx.AsyncClient(timeout=timeout_s)
        self.delete_retries = delete_retries

    async def aclose(self) -> None:
        await self.client.aclose()

    async def publish(self, path: str, offer_sdp: str, token: str) -> WhipSession:
        url = urljoin(self.base_url, f"{quote(path, safe='')}/whip")
        resp = await self._send("POST", url, token, offer_sdp, "application/sdp")
        if resp.status_code != 201:
            raise WhipError(f"whip_status_{resp.status_code}", _excerpt(resp))
        location = resp.headers.get("location")
        if not location or not resp.text.startswith("v=0"):
            raise WhipError("whip_bad_answer", "201 但缺少 Location 或 SDP answer")
        return WhipSession(answer_sdp=resp.text, location=urljoin(url, location))

    async def add_candidates(self, location: str, fragment: str, token: str) -> None:
        resp = await self._send("PATCH", location, token, fragment, "application/trickle-ice-sdpfrag")
        if resp.status_code not in (200, 204):
            raise WhipError(f"whip_status_{resp.status_code}", _excerpt(resp))

    async def delete(self, location: str, token: str | None) -> None:
        """结束 WHIP 会话；资源已不存在（404）视为成功。连不上时有限次重试，超时与 MediaMTX 的错误回答不重试。"""
        resp = await retry_async(
            lambda: self._send("DELETE", location, token, None, None),
            attempts=self.delete_retries + 1,
            base_s=RETRY_BASE_S,
            cap_s=RETRY_CAP_S,
            retryable=lambda exc: isinstance(exc, WhipError) and exc.reason != "whip_timeout",
            what=f"WHIP DELETE {location}",
        )
        if resp.status_code not in (200, 204, 404):
            raise WhipError(f"whip_status_{resp.status_code}", _excerpt(resp))

    async def _send(
        self, method: str, url: str, token: str | None, body: str | None, content_type: str | None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            return await self.client.request(method, url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise WhipError("whip_timeout", f"{method} {url} 超时") from exc
        except httpx.TransportError as exc:
            raise WhipError("whip_unreachable", f"{method} {url}: {exc}") from exc


def _excerpt(resp: httpx.Response) -> str:
    return f"HTTP {resp.status_code} {resp.text[:200]!r}"
