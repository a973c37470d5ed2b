"""Prometheus 指标（真实网关 + 真实 Redis + 2 个工作进程 + rtsp-server-perl 上的真实流），用 Debian 的 ``promtool`` 检查：

- 网关与监督进程的 ``/metrics`` 通过 ``promtool check metrics``（命名规范、单位、``_total``）；抓取里有解码帧数、
  各阶段与帧到事件的延迟直方图；
- SIGKILL 一个工作进程、监督进程重启它：汇总的计数器对 ``rate()`` 仍是单调的，“live”量表不再算死进程；
- 附带的 ``deploy/prometheus.yml`` 与 ``deploy/alerts.yml`` 通过 ``promtool check config`` / ``check rules``；
- ``python -m workers --gpus 0,1 --per-gpu 2`` 启动 4 个子进程，``CUDA_VISIBLE_DEVICES`` 依次为 0,0,1,1（这里没有 GPU，
  ``monitor.update.system.gpu_util`` 为 null）。
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from devtools.stack.servers import free_port, require_binary
from shared import events as ev
from tests.conftest import Clips, Stack
from tests.helpers import wait_until

WORKER_PROCESSES = 2
ROOT = Path(__file__).resolve().parents[2]


def _worker_metrics_url(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.env['WORKER_METRICS_PORT']}/metrics"


def _scrape(url: str) -> str:
    resp = httpx.get(url, timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.text


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _value(text: str, name: str, **labels: str) -> float:
    """名为 ``name``、带这些标签的样本之和（其余标签不限，例如多进程的 pid）。"""
    return sum(v for (n, ls), v in _samples(text).items() if n == name and all((k, v2) in ls for k, v2 in labels.items()))


def _promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_binary("promtool"), *args], input=stdin, capture_output=True, text=True, timeout=60)


def test_scrapes_pass_promtool_and_show_the_pipeline_working(stack: Stack, clips: Clips) -> None:
    names = [stack.publish(clips.face)[0] for _ in range(2)]
    sessions = [stack.start_stream(name)["session_id"] for name in names]
    monitor = stack.recorder(ev.NS_MONITOR)
    for sid in sessions:
        update = monitor.wait_for(ev.MONITOR_UPDATE, lambda d, sid=sid: d["session_id"] == sid and not d["replay"], timeout=30)
        assert update["system"]["gpu_util"] is None  # 没有 NVML：null
    time.sleep(3.0)  # 协调周期把计数并入指标

    workers = _scrape(_worker_metrics_url(stack))
    gateway = _scrape(f"{stack.base_url}/metrics")
    for text in (workers, gateway):
        checked = _promtool("check", "metrics", stdin=text)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    assert _value(workers, "proctor_worker_frames_decoded_total") > 0
    assert _value(workers, "proctor_worker_frames_analyzed_total") > 0
    assert _value(workers, "proctor_worker_active_streams") == 2
    assert _value(workers, "proctor_worker_processes_alive") == 2
    assert _value(workers, "proctor_worker_frame_to_event_seconds_count") > 0
    for stage in ("decode", "detect", "rppg", "publish"):
        assert _value(workers, "proctor_worker_stage_duration_seconds_count", stage=stage) > 0, stage
    assert _value(workers, "proctor_worker_stream_assignments_total", event="claimed") >= 2
    assert _value(workers, "proctor_worker_process_resident_memory_bytes") > 0
    assert "proctor_gpu_utilization_ratio" not in workers.replace("# HELP proctor_gpu", "").replace("# TYPE proctor_gpu", "")
    assert _value(gateway, "proctor_gateway_socketio_clients", namespace="/monitor", role="teacher") >= 1
    assert _value(gateway, "proctor_gateway_http_request_duration_seconds_count", route="/api/rtsp/start", status="200") >= 2
    assert _value(gateway, "proctor_gateway_events_relayed_total", namespace="/monitor", event="monitor.update") > 0
    wait_until(lambda: _value(_scrape(f"{stack.base_url}/metrics"), "proctor_gateway_redis_up") == 1, 10, "redis_up")
    wait_until(lambda: _value(_scrape(f"{stack.base_url}/metrics"), "proctor_gateway_streams", state="streaming") == 2, 10,
               "两路流 streaming")  # fmt: skip


def test_counters_stay_monotonic_when_a_worker_process_is_killed_and_restarted(stack: Stack, clips: Clips) -> None:
    names = [stack.publish(clips.face)[0] for _ in range(2)]
    for name in names:
        stack.start_stream(name)
    url = _worker_metrics_url(stack)
    wait_until(lambda: _value(_scrape(url), "proctor_worker_active_streams") == 2, 30, "两路流都在处理")
    victim = next(w["pid"] for w in stack.status()["workers"] if w["streams"])
    os.kill(victim, signal.SIGKILL)
    seen: list[float] = []
    deadline = time.monotonic() + 25
    restarted = False
    while time.monotonic() < deadline:
        text = _scrape(url)
        seen.append(_value(text, "proctor_worker_frames_decoded_total"))
        alive = _value(text, "proctor_worker_processes_alive")
        restarted = _value(text, "proctor_worker_process_restarts_total") >= 1 and alive == 2
        if restarted and _value(text, "proctor_worker_active_streams") == 2 and len(seen) > 10:
            break
        time.sleep(0.5)
    assert restarted, "监督进程没有重启被杀的进程"
    assert all(b >= a for a, b in zip(seen, seen[1:])), seen  # 计数器从不回退
    assert seen[-1] > seen[0]
    text = _scrape(url)
    pids = {dict(ls).get("pid") for (n, ls), _ in _samples(text).items() if n == "proctor_worker_process_cpu_ratio"}
    assert str(victim) not in pids and len(pids) == 2, pids  # 死进程的 live 量表已清掉
    assert _value(text, "proctor_worker_active_streams") == 2
    assert _value(text, "proctor_worker_stream_assignments_total", event="taken_over") >= 1  # 被杀进程的流是被接管的


def test_shipped_prometheus_config_and_alert_rules_pass_promtool() -> None:
    for args in (("check", "config", str(ROOT / "deploy/prometheus.yml")), ("check", "rules", str(ROOT / "deploy/alerts.yml"))):
        result = _promtool(*args)
        assert result.returncode == 0, result.stdout + result.stderr


def test_gpu_placement_gives_each_child_its_gpu(stack: Stack) -> None:
    env = {**stack.env, "WORKER_METRICS_PORT": str(free_port()), "KEY_PREFIX": f"gpu{os.getpid()}:"}
    proc = subprocess.Popen([sys.executable, "-m", "workers", "--gpus", "0,1", "--per-gpu", "2"], env=env)
    try:
        parent = psutil.Process(proc.pid)
        children = wait_until(lambda: len(c := parent.children()) == 4 and c, 30, "4 个工作进程")
        devices = sorted(c.environ().get("CUDA_VISIBLE_DEVICES", "?") for c in children)
        assert devices == ["0", "0", "1", "1"], devices
        assert all(c.environ().get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID" for c in children)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
