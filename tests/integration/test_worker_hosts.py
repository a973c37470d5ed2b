"""别的机器上的工作进程（真实的网络隔离）：测试自己建一个网络命名空间当作第二台“主机”（``ip netns add`` + 一对 veth），
工作进程池在那里运行，只能经 veth 到达 Redis 与 RTSP 服务器；网关、Redis、RTSP 服务器与监控客户端在本来的命名空间里。
工作进程只需要 ``REDIS_URL`` 与流地址：它经 Redis 认领流，事件经 Redis 到达第一个命名空间里的教师客户端。

需要 root（创建网络命名空间与 veth）；``make test`` 在 CI 与这类机器上以 root 运行。
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools.stack.servers import ClipPublisher, EmbeddedRedis, RtspServer, free_port, require_binary, stop_process
from shared import events as ev
from tests.conftest import Clips, Stack, _make_stack, _teardown
from tests.helpers import wait_until


@dataclass(frozen=True)
class Host:
    """第二台“主机”：网络命名空间 ``name``，经 veth 与本机相连；本机一侧的地址是 ``gateway_ip``。"""

    name: str
    gateway_ip: str
    own_ip: str

    def run(self, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
        return subprocess.Popen([require_binary("ip"), "netns", "exec", self.name, *cmd], env=env)

    def pids(self) -> set[int]:
        out = subprocess.run([require_binary("ip"), "netns", "pids", self.name], capture_output=True, text=True, check=True)
        return {int(x) for x in out.stdout.split()}


def _ip(*args: str) -> None:
    subprocess.run([require_binary("ip"), *args], check=True, capture_output=True, timeout=10)


@pytest.fixture(scope="module")
def second_host() -> Iterator[Host]:
    if os.geteuid() != 0:
        pytest.fail("需要 root 才能创建网络命名空间（make test 以 root 运行）")
    tag = uuid.uuid4().hex[:6]
    subnet = f"10.{random.randrange(200, 250)}.{random.randrange(0, 255)}"
    host = Host(f"proctor-{tag}", f"{subnet}.1", f"{subnet}.2")
    outer, inner = f"vo{tag}", f"vi{tag}"
    _ip("netns", "add", host.name)
    try:
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", host.name)
        _ip("addr", "add", f"{host.gateway_ip}/24", "dev", outer)
        _ip("link", "set", outer, "up")
        inside = [("addr", "add", f"{host.own_ip}/24", "dev", inner), ("link", "set", inner, "up"), ("link", "set", "lo", "up")]
        for args in inside:
            _ip("netns", "exec", host.name, "ip", *args)
        yield host
    finally:
        subprocess.run([require_binary("ip"), "link", "del", outer], capture_output=True)
        _ip("netns", "del", host.name)


@pytest.fixture(scope="module")
def split_stack(second_host: Host, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, subprocess.Popen]]:
    """本机：Redis（另监听 veth 地址）、RTSP 服务器（拉流端口在 veth 地址上）、网关；第二台主机：工作进程池。"""
    redis = EmbeddedRedis(tmp_path_factory.mktemp("redis-hosts"), extra_bind=(second_host.gateway_ip,)).start()
    rtsp = RtspServer(client_host=second_host.gateway_ip).start()
    stack = _make_stack(redis, rtsp, processes=0)
    env = {
        **stack.env,
        "REDIS_URL": f"redis://{second_host.gateway_ip}:{redis.port}/0",
        "WORKER_METRICS_HOST": "127.0.0.1",  # 第二台主机自己的回环地址
        "WORKER_METRICS_PORT": str(free_port()),
    }
    workers = second_host.run([sys.executable, "-m", "workers", "--processes", "1"], env)
    try:
        wait_until(lambda: stack.get("/api/health").json()["workers_alive"] >= 1, 60, "第二台主机上的工作进程上线")
        yield stack, workers
    finally:
        stop_process(workers)
        _teardown(stack)
        rtsp.stop()
        redis.stop()


def test_workers_on_another_host_take_streams_through_redis_and_reach_the_monitor(
    split_stack: tuple[Stack, subprocess.Popen], second_host: Host, clips: Clips
) -> None:
    stack, _ = split_stack
    name = f"exam-{uuid.uuid4()}-user-1"
    publisher = ClipPublisher(Path(clips.face), stack.rtsp.publish_url(name)).start()
    try:
        session = stack.post("/api/create_session", {"stream_name": name, "rtsp_url": stack.rtsp.read_url(name)}).json()
        assert session["stream_started"], session
        monitor = stack.recorder(ev.NS_MONITOR)
        update = monitor.wait_for(
            ev.MONITOR_UPDATE,
            lambda d: d["session_id"] == session["session_id"] and d["metrics"]["face"]["detected"] and not d["replay"],
            timeout=40,
        )
        assert update["models"][:2] == ["face", "attention"]
        owner = stack.stream_status(name)
        assert owner is not None and owner["owner_alive"], owner
        worker_pids = {w["pid"] for w in stack.status()["workers"] if name in w["streams"]}
        assert worker_pids and worker_pids <= second_host.pids(), (worker_pids, second_host.pids())
    finally:
        publisher.stop()
