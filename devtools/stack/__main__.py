"""``make run`` 的主任务：一条命令起全套服务并推演示考生的流。

1. 未设置 REDIS_URL 时启动嵌入式 Redis（数据在 .devstack/redis，开启 AOF）；
2. 启动网关（python -m gateway）与工作进程池（python -m workers）；
3. 除非 DEMO=0：启动本地 RTSP 服务器与嵌入式媒体入口（WHIP，devtools/stack/whip_ingest.py：学生端演示页能在本机推流），
   把按考试脚本合成的演示片段（devtools/stack/demo.py）循环推成 DEMO_STREAMS 路考生流（默认与脚本的情况一样多，各从一种开始），
   经 REST 接口（POST /api/create_session）建会话、开始分析，并为用浏览器推流的考生建一个会话、打印它的演示页地址；
4. Ctrl-C（SIGINT）或 SIGTERM 时按相反顺序停止全部子进程。
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from shared.logs import configure_logging
from shared.settings import Settings

from .demo import SCRIPT, demo_clip, start_demo
from .processes import gateway_secrets, monitor_token, start_gateway, start_workers, stop_all, wait_healthy
from .servers import EmbeddedRedis, RtspServer, free_port, port_is_free, python_env
from .whip_ingest import WhipStandin

log = logging.getLogger("devstack")
STATE_DIR = Path(os.environ.get("DEVSTACK_DIR", ".devstack"))


def start_ingest(base_url: str, env: dict[str, str], rtsp: RtspServer) -> WhipStandin:
    """嵌入式媒体入口（WHIP，aiortc）：像 MediaMTX 一样先经网关鉴权，把推流转成 RTSP，并通知网关路径可读。"""
    auth_url = base_url.replace("://", f"://mediamtx:{env['MEDIAMTX_AUTH_SECRET']}@", 1) + "/api/mediamtx/auth"
    return WhipStandin(auth_url=auth_url, relay_rtsp=rtsp.publish_url("").rstrip("/"),
                       hook_url=f"{base_url}/api/mediamtx/hook").start()


def main() -> None:
    configure_logging("INFO")
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    overrides: dict[str, str] = {}
    started: list = []  # (名称, 停止函数)，按启动顺序
    try:
        if not os.environ.get("REDIS_URL"):
            port = 6379 if port_is_free(6379) else None
            redis_server = EmbeddedRedis(STATE_DIR / "redis", port=port).start()
            started.append(("redis", redis_server.stop))
            overrides["REDIS_URL"] = redis_server.url
            log.info("embedded Redis on %s", redis_server.url)
        overrides.setdefault("API_DOCS", os.environ.get("API_DOCS", "1"))  # 开发机：打开 /docs
        overrides["DEV_MODE"] = os.environ.get("DEV_MODE", "1")  # 开发模式：允许缺少 MediaMTX 密钥等
        if not os.environ.get("WORKER_METRICS_PORT"):
            overrides["WORKER_METRICS_PORT"] = str(9101 if port_is_free(9101) else free_port())
        for name, value in gateway_secrets().items():
            if not os.environ.get(name):
                overrides[name] = value
        env = python_env(**overrides)
        settings = Settings(**{k.lower(): v for k, v in overrides.items()})
        host = "127.0.0.1" if settings.gateway_host in ("0.0.0.0", "::") else settings.gateway_host
        base_url = f"http://{host}:{settings.gateway_port}"

        demo = os.environ.get("DEMO", "1") != "0"
        # 演示片段（第一次运行时生成）与网关、工作进程的启动同时进行
        clip = ThreadPoolExecutor(1).submit(demo_clip, STATE_DIR / "clips") if demo else None
        rtsp = None
        if demo:
            rtsp = RtspServer(
                client_port=int(os.environ.get("DEMO_RTSP_PORT", "0")) or None,
                source_port=int(os.environ.get("DEMO_RTSP_SOURCE_PORT", "0")) or None,
            ).start()
            started.append(("rtsp server", rtsp.stop))
            if not os.environ.get("MEDIAMTX_WHIP_URL"):
                ingest = start_ingest(base_url, env, rtsp)
                started.append(("media ingest", ingest.stop))
                env["MEDIAMTX_WHIP_URL"] = ingest.url
                env["MEDIAMTX_RTSP_URL"] = rtsp.read_url("").rstrip("/")
        gateway = start_gateway(env)
        started.append(("gateway", lambda: stop_all(gateway)))
        processes = int(os.environ.get("WORKER_PROCESSES", "2"))
        workers = start_workers(env, processes)
        started.append(("workers", lambda: stop_all(workers)))
        wait_healthy(base_url, gateway, timeout=60, workers=processes)

        student_page = None
        if clip is not None and rtsp is not None:
            count = int(os.environ.get("DEMO_STREAMS", str(len(SCRIPT))))
            student_page = start_demo(base_url, env["API_KEY"], count, rtsp, clip.result(), started)

        token = monitor_token(base_url, env["API_KEY"], teacher="make-run", ttl_s=3600)["token"]
        # 令牌在 # 之后：不会发给服务器、不进访问日志；页面读出后从地址栏去掉
        print(f"\n监控页面：{base_url}/monitor#token={token}", flush=True)
        if student_page:
            print(f"学生端演示页（用 Chrome 打开、允许摄像头，你会出现在监控墙上）：{student_page}", flush=True)
        print(f"REST 接口文档：{base_url}/docs    X-API-Key: {env['API_KEY']}", flush=True)
        metrics_port = settings.worker_metrics_port
        print(f"Prometheus 指标：{base_url}/metrics（网关）  http://{host}:{metrics_port}/metrics（工作进程）", flush=True)
        print("按 Ctrl-C 停止全部服务。\n", flush=True)
        while not stop.wait(1.0):
            for proc, name in ((gateway, "gateway"), (workers, "workers")):
                if proc.poll() is not None:
                    log.error("%s exited with %s; stopping everything", name, proc.returncode)
                    stop.set()
    finally:
        for name, stopper in reversed(started):
            log.info("stopping %s", name)
            stopper()
        log.info("all stopped")


if __name__ == "__main__":
    main()
