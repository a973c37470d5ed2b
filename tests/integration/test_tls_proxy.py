"""学生页的 HTTPS：``deploy/Caddyfile``（compose 的 proxy 服务）原样交给真实的 Caddy（Debian 包），它用本地 CA 签发证书、
把页面、REST 与 Socket.IO 的 WebSocket 转发给真实网关。客户端用 Caddy 的根证书校验 TLS（不关闭校验）：
页面带着安全响应头、教师客户端经 wss 收到实时的 ``monitor.update``。"""

from __future__ import annotations

import os
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests
import socketio

from devtools.stack.servers import free_port, require_binary, stop_process, wait_for_port
from shared import events as ev
from tests.conftest import Clips, Stack
from tests.helpers import wait_until

WORKER_PROCESSES = 1
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def proxy(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(https 地址, Caddy 本地 CA 的根证书)。"""
    home = tmp_path_factory.mktemp("caddy")
    port = free_port()
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "PROCTOR_SITE": f"https://127.0.0.1:{port}",
        "GATEWAY_UPSTREAM": stack.base_url.removeprefix("http://"),
        "CADDY_ADMIN": f"127.0.0.1:{free_port()}",
    }
    cmd = [require_binary("caddy"), "run", "--adapter", "caddyfile", "--config", str(ROOT / "deploy" / "Caddyfile")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc=proc)
        root = home / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        wait_until(root.is_file, 10, "Caddy 的本地 CA")
        yield f"https://127.0.0.1:{port}", root
    finally:
        stop_process(proc)


def test_pages_rest_and_websocket_work_through_the_tls_proxy(stack: Stack, clips: Clips, proxy: tuple[str, Path]) -> None:
    base, root = proxy
    trusted = ssl.create_default_context(cafile=str(root))
    page = httpx.get(f"{base}/monitor", verify=trusted, timeout=10)
    assert page.status_code == 200 and page.headers["x-frame-options"] == "DENY" and "script-src 'self'" in page.headers[
        "content-security-policy"
    ]
    with pytest.raises(httpx.ConnectError):  # 证书不是公共 CA 签发的：不带根证书的客户端不信任它
        httpx.get(f"{base}/api/health", timeout=10)
    health = httpx.get(f"{base}/api/health", verify=trusted, timeout=10)
    assert health.status_code == 200 and health.json()["redis"] is True

    name, _ = stack.publish(clips.face)
    session_id = stack.start_stream(name)["session_id"]
    session = requests.Session()
    session.verify = str(root)  # python-engineio 把它作为 WebSocket 的 ca_certs
    client = socketio.Client(reconnection=False, http_session=session)
    got = threading.Event()
    live = lambda d: d["session_id"] == session_id and not d["replay"] and got.set()  # noqa: E731
    client.on(ev.MONITOR_UPDATE, live, namespace=ev.NS_MONITOR)
    client.connect(base, namespaces=[ev.NS_MONITOR], transports=["websocket"], auth={"token": stack.monitor_token()["token"]},
                   wait_timeout=10)  # fmt: skip
    try:
        assert client.transport() == "websocket"
        assert got.wait(30), "经 TLS 代理没有收到 monitor.update"
    finally:
        client.disconnect()
