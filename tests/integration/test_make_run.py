"""``make run``：一条命令起全套服务与演示流，/monitor 收到实时数据，SIGINT 后干净退出。"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import psutil

from devtools.stack.processes import monitor_token
from devtools.stack.servers import free_port, port_is_free
from shared import events as ev
from tests.helpers import Recorder, wait_until

ROOT = Path(__file__).resolve().parents[2]


def _group_alive(pgid: int) -> list[psutil.Process]:
    alive = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return alive


def test_make_run_serves_live_demo_and_stops_on_sigint(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MAKEFLAGS", "MFLAGS")}
    env.update(
        GATEWAY_HOST="127.0.0.1",
        GATEWAY_PORT=str(port),
        API_KEY="make-run-test-key",
        DEVSTACK_DIR=str(tmp_path / "devstack"),
        KEY_PREFIX="makerun:",
    )
    log = (tmp_path / "make-run.log").open("wb")
    proc = subprocess.Popen(["make", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    recorder = None
    try:
        base = f"http://127.0.0.1:{port}"

        def connect() -> Recorder | None:
            assert proc.poll() is None, (tmp_path / "make-run.log").read_text()
            try:
                token = monitor_token(base, "make-run-test-key", teacher="make-run-test")["token"]
                return Recorder(base, ev.NS_MONITOR, auth={"token": token})
            except Exception:  # noqa: BLE001 - 网关尚未就绪
                return None

        recorder = wait_until(connect, timeout=120, message="make run 的网关可连接", interval=0.5)
        update = recorder.wait_for(ev.MONITOR_UPDATE, lambda d: d["metrics"]["face"]["detected"], timeout=30)
        assert update["models"][:2] == ["face", "attention"]
        sessions = wait_until(
            lambda: len({e["session_id"] for e in recorder.matching(ev.MONITOR_UPDATE)}) >= 2 or None,
            timeout=20,
            message="两路演示流都有数据",
        )
        assert sessions
    finally:
        if recorder is not None:
            recorder.close()
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=40)
        finally:
            leftovers = _group_alive(proc.pid)
            for p in leftovers:
                p.kill()
            log.close()
    assert leftovers == [], [p.cmdline() for p in leftovers]
    assert port_is_free(port)
    text = (tmp_path / "make-run.log").read_text()
    assert "all stopped" in text, text[-2000:]
