"""MediaMTX 控制 API 客户端（v1.20 的 /v3 接口）：查询路径是否可读、结束会话时踢掉该路径上的发布端。"""

from __future__ import annotations

import logging
from urllib.parse import quote

import httpx

from shared.retry import retry_async

log = logging.getLogger(__name__)

# 网络错误重试的退避：0.2 s 起加倍
RETRY_BASE_S = 0.2
RETRY_CAP_S = 2.0

# 路径发布源类型 -> 踢出接口的集合名（见 MediaMTX v1.20 的 OpenAPI）
KICK_COLLECTIONS = {
    "webRTCSession": "webrtcsessions",
    "rtspSession": "rtspsessions",
    "rtspsSession": "rtspssessions",
    "rtmpConn": "rtmpconns",
    "rtmpsConn": "rtmpsconns",
    "srtConn": "srtconns",
}


class MediaMtxApi:
    def __init__(self, base_url: str, timeout_s: float = 3.0, retries: int = 2) -> None:
        self.client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s)
        self.retries = retries

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _path(self, path: str) -> dict | None:
        """``/v3/paths/get`` 的路径信息；路径不存在时 None。"""
        resp = await self._request("GET", f"/v3/paths/get/{quote(path, safe='')}")
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return resp.json()

    async def path_available(self, path: str) -> bool:
        """该路径当前是否有可读的流（路径不存在即不可读）。"""
        info = await self._path(path)
        return info is not None and _available(info)

    async def available_paths(self) -> set[str]:
        """全部可读路径（逐页读取 ``/v3/paths/list``）。"""
        names: set[str] = set()
        page = 0
        while True:
            resp = await self._request("GET", f"/v3/paths/list?itemsPerPage=500&page={page}")
            resp.raise_for_status()
            body = resp.json()
            names.update(item["name"] for item in body.get("items") or [] if _available(item))
            page += 1
            if page >= int(body.get("pageCount") or 1):
                return names

    async def kick_publisher(self, path: str) -> str | None:
        """踢掉 ``path`` 当前的发布端，返回 ``类型:ID``；没有发布端（或路径不存在）时 None。"""
        info = await self._path(path)
        source = (info or {}).get("source") or {}
        collection = KICK_COLLECTIONS.get(source.get("type", ""))
        if collection is None or not source.get("id"):
            return None
        resp = await self._request("POST", f"/v3/{collection}/kick/{quote(source['id'], safe='')}")
        if resp.status_code == 404:
            return None  # 已经断开
        resp.raise_for_status()
        return f"{source['type']}:{source['id']}"

    async def _request(self, method: str, url: str) -> httpx.Response:
        """网络错误（``httpx.TransportError``）时有限次重试（0.2 s 起指数退避）。"""
        return await retry_async(
            lambda: self.client.request(method, url),
            attempts=self.retries + 1,
            base_s=RETRY_BASE_S,
            cap_s=RETRY_CAP_S,
            retryable=lambda exc: isinstance(exc, httpx.TransportError),
            what=f"mediamtx api {method} {url}",
        )


def _available(item: dict) -> bool:
    # v1.20 的字段是 available；更早的版本叫 ready
    return bool(item.get("available", item.get("ready", False)))
