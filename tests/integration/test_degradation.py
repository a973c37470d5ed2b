"""过载时的降级：进程跟不上目标分析帧率时所有流一起放慢（公平），延迟仍有上限（不积压旧帧），
并在 rtsp/status 与 monitor.update.system 里报告。

过载是真实的：目标 15 fps（每个解码帧都分析，默认的 3 倍）且人脸检测用原尺寸 640 宽（像素是默认 320 宽的 4 倍），
一个工作进程处理 10 路真实 RTSP 流：多数帧只检测人脸附近一块以后，6 路在稳态下已跟得上 15 fps（只在开始的几秒报告降级），
10 路时每路约 10 fps、解码仍为 15 fps。"""

from __future__ import annotations

import statistics
import time

from shared import events as ev
from tests.conftest import Clips, Stack
from tests.helpers import wait_until
from workers.state.rates import RateMeter

WORKER_PROCESSES = 1
WORKER_ENV = {"ANALYSIS_FPS": "15", "FACE_DETECT_WIDTH": "640"}
STREAMS = 10


def test_overloaded_worker_slows_every_stream_evenly_and_reports_it(stack: Stack, clips: Clips) -> None:
    names = [stack.publish(clips.face)[0] for _ in range(STREAMS)]
    monitor = stack.recorder(ev.NS_MONITOR)
    for name in names:
        stack.start_stream(name)

    def degraded_streams() -> list[dict] | None:
        streams = [s for s in stack.status()["streams"] if s["stream_name"] in names]
        ready = len(streams) == STREAMS and all(s["frames_analyzed"] >= 40 and s["degraded"] for s in streams)
        return streams if ready else None

    wait_until(degraded_streams, timeout=60, message=f"{STREAMS} 路流都在分析且报告降级")
    # 分析帧率是近 5 秒的：刚报告降级时窗口里还有后几路开始之前、先开始的几路全速分析的那几秒（干净克隆上读到 13.7）
    time.sleep(RateMeter().window_s)
    streams = degraded_streams()
    assert streams is not None, "过载的 5 秒里有的流不再报告降级"
    worker = next(w for w in stack.status()["workers"] if w["streams"])
    # headroom 不大于 0：跟不上时不再认领（分析本身放不下时为负，CPU 被占去、到点的帧等得久时为 0）
    assert worker["degraded"] is True and worker["headroom"] <= 0 and worker["analysis_fps"] < 15
    rates = [s["analysis_fps"] for s in streams]
    assert all(s["analysis_fps_target"] == 15 for s in streams)
    assert max(rates) < 13.5, rates  # 确实降下来了
    assert min(rates) >= 2 / 3 * max(rates), rates  # 每路一样慢（公平）
    assert all(s["fps"] >= 12 for s in streams), streams  # 解码照常
    assert sum(s["dropped_frames"] for s in streams) > 0  # 错过的分析计为丢帧

    update = monitor.wait_for(
        ev.MONITOR_UPDATE, lambda d: d["session_id"] in names and d["system"]["dropped_frames"] > 0, timeout=10
    )
    assert update["system"]["degraded"] is True and update["system"]["analysis_fps"] < 15
    # 不积压旧帧：被分析的总是刚解码的帧，工作进程内的帧龄有上限
    recent = monitor.matching(ev.MONITOR_UPDATE, lambda d: d["session_id"] in names and d["latency_ms"] is not None)
    latencies = sorted(d["latency_ms"] for d in recent[-60:])
    assert statistics.median(latencies) < 300 and latencies[int(0.95 * (len(latencies) - 1))] < 600, latencies
