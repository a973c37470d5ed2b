"""页面：``/monitor``（教师墙）、``/monitor/sessions/{session_id}``（会话页）、``/student-demo``（学生端演示）
与前端静态资源。

只提供页面用到的文件（``DASHBOARD_FILES``、``VENDOR_FILES``），``package.json``、``node_modules/`` 等一概 404。
前端依赖（socket.io-client、uPlot）在安装时由 npm 按 package-lock.json 装到 dashboard/node_modules，运行时不访问 CDN。
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import FileResponse, RedirectResponse

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "dashboard"  # gateway/http/pages.py -> 仓库根目录
NODE_MODULES = DASHBOARD_DIR / "node_modules"
# /vendor/<名字> -> node_modules 里的文件
VENDOR_FILES = {
    "socket.io.min.js": NODE_MODULES / "socket.io-client" / "dist" / "socket.io.min.js",
    "socket.io.esm.min.js": NODE_MODULES / "socket.io-client" / "dist" / "socket.io.esm.min.js",
    "uPlot.iife.min.js": NODE_MODULES / "uplot" / "dist" / "uPlot.iife.min.js",
    "uPlot.min.css": NODE_MODULES / "uplot" / "dist" / "uPlot.min.css",
}
DASHBOARD_FILES = {
    "monitor.js": "text/javascript",
    "monitor.css": "text/css",
    "connection.js": "text/javascript",
    "format.js": "text/javascript",
    "session.js": "text/javascript",
    "session.css": "text/css",
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
async def monitor_page() -> FileResponse:
    return FileResponse(DASHBOARD_DIR / "monitor.html", headers={"Cache-Control": "no-cache"})


@router.get("/monitor/sessions/{session_id}")
async def session_page(session_id: str) -> FileResponse:
    return FileResponse(DASHBOARD_DIR / "session.html", headers={"Cache-Control": "no-cache"})


@router.get("/student-demo")
async def student_demo_page() -> FileResponse:
    return FileResponse(DASHBOARD_DIR / "student-demo.html", headers={"Cache-Control": "no-cache"})


@router.get("/vendor/{name}")
async def vendor_file(name: str) -> FileResponse:
    path = VENDOR_FILES.get(name)
    if path is None:
        raise HTTPException(404, f"没有 {name}")
    if not path.is_file():
        raise HTTPException(503, "缺少前端依赖：请运行 make run / make test（会执行 npm ci）")
    media_type = "text/css" if name.endswith(".css") else "text/javascript"
    return FileResponse(path, media_type=media_type)


@router.get("/dashboard/{name}")
async def dashboard_file(name: str) -> FileResponse:
    media_type = DASHBOARD_FILES.get(name)
    if media_type is None:
        raise HTTPException(404, f"没有 {name}")
    return FileResponse(DASHBOARD_DIR / name, media_type=media_type, headers={"Cache-Control": "no-cache"})


def install(app: FastAPI) -> None:
    app.include_router(router)
