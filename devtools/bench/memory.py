"""工作进程的内存：每路流增加多少 RSS，恒定负载下是否平稳。

1 个工作进程（全部分析），流数按 ``--steps``（例如 0,4,8）逐级增加，每级稳定 ``--settle`` 秒后记 RSS，
以最小二乘斜率给出每路流增加的 RSS；然后在最后一级保持 ``--minutes`` 分钟、每 30 秒记一次 RSS，
给出前后两半的均值之差与斜率（MB/分钟，去掉第一分钟的预热）。

``python -m devtools.bench memory [--steps 0,4,8] [--minutes 10]``
"""

from __future__ import annotations

import time

import numpy as np
import psutil

from .local import local_stack

SAMPLE_EVERY_S = 30.0


def _rss_mb(supervisor_pid: int) -> float:
    return sum(p.memory_info().rss for p in psutil.Process(supervisor_pid).children()) / 2**20


def bench_memory(steps: list[int], settle_s: float, minutes: float, **env: str) -> dict:
    ramp: list[tuple[int, float]] = []
    hold: list[tuple[float, float]] = []
    with local_stack(1, **env) as stack:
        assert stack.workers is not None
        running = 0
        for count in steps:
            for name in stack.publish(count - running):
                stack.post("/api/rtsp/start", {"stream_name": name, "rtsp_url": stack.rtsp.read_url(name)})
            running = count
            time.sleep(settle_s)
            ramp.append((count, _rss_mb(stack.workers.pid)))
        started = time.monotonic()
        while time.monotonic() - started < minutes * 60:
            hold.append(((time.monotonic() - started) / 60, _rss_mb(stack.workers.pid)))
            time.sleep(SAMPLE_EVERY_S)
        status = stack.get("/api/rtsp/status")
    xs, ys = np.array([c for c, _ in ramp], float), np.array([r for _, r in ramp])
    per_stream = float(np.polyfit(xs, ys, 1)[0]) if len(ramp) >= 2 else None
    steady = [(t, r) for t, r in hold if t >= 1.0]
    slope = float(np.polyfit([t for t, _ in steady], [r for _, r in steady], 1)[0]) if len(steady) >= 3 else None
    half = len(steady) // 2
    return {
        "benchmark": "memory",
        "env": env,
        "ramp_rss_mb": [{"streams": c, "rss_mb": round(r, 1)} for c, r in ramp],
        "added_rss_mb_per_stream": round(per_stream, 1) if per_stream is not None else None,
        "hold_minutes": minutes,
        "hold_rss_mb": [{"minute": round(t, 1), "rss_mb": round(r, 1)} for t, r in hold],
        "hold_slope_mb_per_min": round(slope, 2) if slope is not None else None,
        "hold_second_half_minus_first_mb": round(
            float(np.mean([r for _, r in steady[half:]]) - np.mean([r for _, r in steady[:half]])), 1
        ) if half else None,
        "analysis_fps": [s["analysis_fps"] for s in status["streams"]],
        "machine": {"cpus": psutil.cpu_count()},
    }
