"""REST 与页面请求的耗时直方图（纯 ASGI 中间件）。路由按模板计（如 ``/api/sessions/{session_id}/report``），
没有匹配到路由的请求计为 ``unmatched``，所以标签的取值有界。"""

from __future__ import annotations

import time

from ..metrics import GatewayMetrics
from .headers import ASGIApp, Message, Receive, Scope, Send


class RequestMetrics:
    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(template, scope.get("method", ""), str(status)).observe(
                time.perf_counter() - started
            )
