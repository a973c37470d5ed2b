"""``make run`` 的主任务：一条命令起全套服务并推两路演示学生流。

1. 未设置 REDIS_URL 时启动嵌入式 Redis（数据在 .devstack/redis，开启 AOF）；
2. 启动网关（python -m gateway）与工作进程池（python -m workers）；
3. 除非 DEMO=0：启动本地 RTSP 服务器，把真实人脸合成的片段循环推成 DEMO_STREAMS 路学生流，
   并通过网关的 REST 接口（POST /api/create_session）为每路流建会话、开始分析；
4. Ctrl-C（SIGINT）或 SIGTERM 时按相反顺序停止全部子进程。
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import uuid
from pathlib import Path

import httpx

from devtools.synthetic import face_frames
from shared.logs import configure_logging
from shared.settings import Settings

from .processes import gateway_secrets, monitor_token, start_gateway, start_workers, stop_all, wait_healthy
from .servers import ClipPublisher, EmbeddedRedis, RtspServer, encode_clip, free_port, port_is_free, python_env

log = logging.getLogger("devstack")
STATE_DIR = Path(os.environ.get("DEVSTACK_DIR", ".devstack"))


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

        gateway = start_gateway(env)
        started.append(("gateway", lambda: stop_all(gateway)))
        processes = int(os.environ.get("WORKER_PROCESSES", "2"))
        workers = start_workers(env, processes)
        started.append(("workers", lambda: stop_all(workers)))
        wait_healthy(base_url, gateway, timeout=60, workers=processes)

        if os.environ.get("DEMO", "1") != "0":
            start_demo(base_url, env["API_KEY"], int(os.environ.get("DEMO_STREAMS", "2")), started)

        token = monitor_token(base_url, env["API_KEY"], teacher="make-run", ttl_s=3600)["token"]
        # 令牌在 # 之后：不会发给服务器、不进访问日志；页面读出后从地址栏去掉
        print(f"\n监控页面：{base_url}/monitor#token={token}", flush=True)
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


def start_demo(base_url: str, api_key: str, count: int, started: list) -> None:
    rtsp = RtspServer(
        client_port=int(os.environ.get("DEMO_RTSP_PORT", "0")) or None,
        source_port=int(os.environ.get("DEMO_RTSP_SOURCE_PORT", "0")) or None,
    ).start()
    started.append(("rtsp server", rtsp.stop))
    clip_dir = STATE_DIR / "clips"
    clip_dir.mkdir(parents=True, exist_ok=True)
    exam_id = str(uuid.uuid4())
    for index in range(count):
        clip = clip_dir / f"demo-face-{index}.mp4"
        if not clip.exists():
            encode_clip(clip, face_frames(120, seed=index))
        student_id = str(index + 1)
        stream_name = f"exam-{exam_id}-user-{student_id}"
        publisher = ClipPublisher(clip, rtsp.publish_url(stream_name)).start()
        started.append((f"publisher {stream_name}", publisher.stop))
        resp = httpx.post(
            f"{base_url}/api/create_session",
            json={"exam_id": exam_id, "student_id": student_id, "rtsp_url": rtsp.read_url(stream_name)},
            headers={"X-API-Key": api_key},
            timeout=10.0,
        )
        resp.raise_for_status()
        log.info("demo student %s: session %s stream %s", student_id, resp.json()["session_id"], stream_name)


if __name__ == "__main__":
    main()
