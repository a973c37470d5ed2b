"""MediaMTX 控制 API 的测试替身（替身，不是 MediaMTX：它在这里无法运行，见 FACTS.md）。

按 v1.20 OpenAPI 的形状回答 ``GET /v3/paths/get/{name}``、``GET /v3/paths/list``（分页）与
``POST /v3/<集合>/kick/{id}``；测试用 :meth:`MediaMtxApiStandin.set_available` 决定哪些路径“可读”，
并可检查收到的请求。可读的路径有一个 WebRTC 发布端 ``sess-<路径>``。
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


class MediaMtxApiStandin:
    def __init__(self, port: int) -> None:
        self.port = port
        self.available: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MediaMtxApiStandin:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def set_available(self, path: str, available: bool) -> None:
        with self._lock:
            (self.available.add if available else self.available.discard)(path)

    def _item(self, name: str) -> dict:
        ready = name in self.available
        source = {"type": "webRTCSession", "id": f"sess-{name}"} if ready else None
        return {"name": name, "available": ready, "ready": ready, "source": source, "readers": []}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server 的接口
                standin.requests.append(("GET", self.path))
                url = urlsplit(self.path)
                with standin._lock:
                    names = sorted(standin.available)
                if url.path.startswith("/v3/paths/get/"):
                    name = unquote(url.path.removeprefix("/v3/paths/get/"))
                    if name in names:
                        self._reply(200, standin._item(name))
                    else:
                        self._reply(404, {"error": "path not found"})
                elif url.path == "/v3/paths/list":
                    query = parse_qs(url.query)
                    per_page = int(query.get("itemsPerPage", ["100"])[0])
                    page = int(query.get("page", ["0"])[0])
                    items = [standin._item(n) for n in names]
                    count = max(1, -(-len(items) // per_page))
                    chunk = items[page * per_page : (page + 1) * per_page]
                    self._reply(200, {"itemCount": len(items), "pageCount": count, "items": chunk})
                else:
                    self._reply(404, {"error": "not found"})

            def do_POST(self) -> None:  # noqa: N802
                standin.requests.append(("POST", self.path))
                self._reply(200, {})

            def log_message(self, *args: object) -> None:
                pass

        return Handler
