"""页面：``/monitor``（全部会话）、``/monitor/sessions/{session_id}``（单会话）、``/student-demo``（学生端演示）
与前端静态资源。

只提供页面用到的文件（``DASHBOARD_FILES``、``VENDOR_FILES``），``package.json``、``node_modules/`` 等一概 404。
前端依赖（socket.io-client）在安装时由 npm 装到 dashboard/node_modules，运行时不访问 CDN。
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import FileResponse, RedirectResponse

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "dashboard"  # gateway/http/pages.py -> 仓库根目录
SOCKET_IO_DIST = DASHBOARD_DIR / "node_modules" / "socket.io-client" / "dist"
VENDOR_FILES = ("socket.io.min.js", "socket.io.esm.min.js")
DASHBOARD_FILES = {
    "monitor.js": "text/javascript",
    "monitor.css": "text/css",
    "student.js": "text/javascript",
    "ppg-sampler.js": "text/javascript",
    "student-demo.js": "text/javascript",
    "student-demo.css": "text/css",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> RedirectResponse:
    return RedirectResponse("/monitor")


@router.get("/monitor")
@router.get("/monitor/sessions/{session_id}")
async def monitor_page(session_id: str | None = None) -> FileResponse:
    return FileResponse(DASHBOARD_DIR / "monitor.html", headers={"Cache-Control": "no-cache"})


@router.get("/student-demo")
async def student_demo_page() -> FileResponse:
    return FileResponse(DASHBOARD_DIR / "student-demo.html", headers={"Cache-Control": "no-cache"})


@router.get("/vendor/{name}")
async def socket_io_client(name: str) -> FileResponse:
    path = SOCKET_IO_DIST / name
    if name not in VENDOR_FILES:
        raise HTTPException(404, f"没有 {name}")
    if not path.is_file():
        raise HTTPException(503, "缺少 socket.io-client：请运行 make run / make test（会执行 npm install）")
    return FileResponse(path, media_type="text/javascript")


@router.get("/dashboard/{name}")
async def dashboard_file(name: str) -> FileResponse:
    media_type = DASHBOARD_FILES.get(name)
    if media_type is None:
        raise HTTPException(404, f"没有 {name}")
    return FileResponse(DASHBOARD_DIR / name, media_type=media_type, headers={"Cache-Control": "no-cache"})


def install(app: FastAPI) -> None:
    app.include_router(router)
