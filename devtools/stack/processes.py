"""启动网关与工作进程子进程（``make run``、测试与基准共用）。"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from typing import IO

import httpx

from .servers import stop_process


def start_gateway(env: dict[str, str], log: IO[bytes] | None = None) -> subprocess.Popen:
    """``log``：输出（stdout 与 stderr）写到这里；None 时继承本进程的。"""
    return subprocess.Popen([sys.executable, "-m", "gateway"], env=env, stdout=log, stderr=log and subprocess.STDOUT)


def start_workers(env: dict[str, str], processes: int, log: IO[bytes] | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "workers", "--processes", str(processes)]
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=log and subprocess.STDOUT)


def wait_healthy(base_url: str, proc: subprocess.Popen, timeout: float = 30.0, workers: int = 0) -> dict:
    """等待 /api/health 返回 200 且至少有 ``workers`` 个存活工作进程。"""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"网关进程已退出（{proc.returncode}）")
        try:
            resp = httpx.get(f"{base_url}/api/health", timeout=2.0)
            last = resp.text
            if resp.status_code == 200 and resp.json()["workers_alive"] >= workers:
                return resp.json()
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"网关 {base_url} 在 {timeout}s 内未就绪：{last}")


def stop_all(*procs: subprocess.Popen | None) -> None:
    """按给定顺序停止（SIGTERM，超时 SIGKILL）。"""
    for proc in procs:
        stop_process(proc)


def gateway_secrets() -> dict[str, str]:
    """随机生成的网关密钥（make run、基准与测试每次启动都不同；生产环境由运维在 .env 中设置）。"""
    return {
        "API_KEY": secrets.token_urlsafe(24),
        "MONITOR_TOKEN_SECRET": secrets.token_urlsafe(48),
        "MEDIAMTX_AUTH_SECRET": secrets.token_urlsafe(24),
    }


def monitor_token(base_url: str, api_key: str, teacher: str = "dev-teacher", exam_id: str | None = None,
                  ttl_s: int | None = None) -> dict:
    """向网关申请一个教师监控令牌（``POST /api/monitor/token``），返回响应 JSON。"""
    body: dict[str, object] = {"teacher": teacher}
    if exam_id is not None:
        body["exam_id"] = exam_id
    if ttl_s is not None:
        body["ttl_s"] = ttl_s
    resp = httpx.post(f"{base_url}/api/monitor/token", json=body, headers={"X-API-Key": api_key}, timeout=10.0)
    resp.raise_for_status()
    return resp.json()
