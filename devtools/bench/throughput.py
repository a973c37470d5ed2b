"""吞吐基准：在目标（解码 -> 客户端 p95、每路分析帧率）之内，这台机器能持续处理多少路流。

``python -m devtools.bench throughput [--processes P] [--baseline seed] [--streams N]``

真实部件：嵌入式 Redis、rtsp-server-perl（UDP）、FFmpeg 循环推流（640x360 H.264 15 fps、真实人脸、AAC 音轨：一段语音与底噪）、
网关、工作进程池（全部分析器：人脸、姿态、遮挡、情绪、rPPG、音频 VAD）、/monitor 上的 python-socketio 客户端。
搜索：从 ``--start`` 路起翻倍，直到不达标，再二分；同一套部署里增减流（``rtsp/start`` / ``rtsp/stop``），每次变化后先预热。
``--streams N`` 只测 N 路（例如过载：2 倍可持续路数）。``--baseline seed`` 在同样的流与机器上再搜索种子设计
（``seed_design.py``），输出两者之比。
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import numpy as np
import psutil
from prometheus_client.parser import text_string_to_metric_families

from devtools.synthetic import speech_pcm
from shared.keys import RedisKeys
from workers.analysis.audio import SAMPLE_RATE

from .local import LocalStack, UpdateLog, delivery_ms, local_stack, percentile

TARGET_P95_MS = 200.0
TARGET_FPS = 5.0  # ANALYSIS_FPS 的默认值
DECODE_FPS = 15.0
MIN_SHARE = 0.9  # 每路分析帧率不低于目标的 90%
WARM_S = 12.0


def clip_audio(seconds: float = 4.0) -> np.ndarray:
    """推流片段的音轨：前一半是语音，后一半是约 -60 dBFS 的底噪（VAD 两种状态都会经过）。"""
    rng = np.random.default_rng(0)
    n = int(seconds * SAMPLE_RATE)
    pcm = rng.normal(0, 30, n)
    speech = speech_pcm("请大家保持安静，考试开始。")[: n // 2].astype(np.float64)
    pcm[: len(speech)] += speech
    return pcm.clip(-32768, 32767).astype(np.int16)


class Processes:
    """按角色分组的进程：CPU 秒与 RSS。"""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups

    @staticmethod
    def _sample(pid: int) -> tuple[float, int]:
        try:
            p = psutil.Process(pid)
            t = p.cpu_times()
            return t.user + t.system, p.memory_info().rss
        except psutil.Error:
            return 0.0, 0

    def cpu(self) -> dict[str, float]:
        return {role: sum(self._sample(pid)[0] for pid in pids) for role, pids in self.groups.items()}

    def rss_mb(self) -> dict[str, list[float]]:
        return {role: [round(self._sample(pid)[1] / 2**20, 1) for pid in pids] for role, pids in self.groups.items()}


def stage_costs(metrics_url: str | None) -> dict[str, tuple[float, float]]:
    """工作进程 /metrics 里各阶段耗时直方图的 (总秒数, 次数)。"""
    if metrics_url is None:
        return {}
    try:
        text = httpx.get(metrics_url, timeout=5).text
    except httpx.HTTPError:
        return {}
    out: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "proctor_worker_stage_duration_seconds":
            continue
        for sample in family.samples:
            stage = sample.labels.get("stage")
            if sample.name.endswith("_sum"):
                out.setdefault(stage, [0.0, 0.0])[0] += sample.value
            elif sample.name.endswith("_count"):
                out.setdefault(stage, [0.0, 0.0])[1] += sample.value
    return {k: (v[0], v[1]) for k, v in out.items()}


@dataclass
class Target:
    """被测的一方：怎样让它处理 ``names`` 这些流，以及它的进程。"""

    name: str
    apply: Callable[[list[str]], None]
    processes: Callable[[], dict[str, list[int]]]
    status: Callable[[], dict | None]  # rtsp/status（种子设计没有）
    metrics_url: str | None = None
    close: Callable[[], None] = lambda: None


def measure(stack: LocalStack, log: UpdateLog, target: Target, names: list[str], seconds: float) -> dict:
    target.apply(names)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # 每路流都出了数据
        mark = len(log.snapshot())
        time.sleep(1.0)
        if {d["session_id"] for _, _, d in log.snapshot(mark)} >= set(names):
            break
    time.sleep(WARM_S)
    procs = Processes(target.processes())
    cpu0, stages0, status0, t0 = procs.cpu(), stage_costs(target.metrics_url), target.status(), time.monotonic()
    mark = len(log.snapshot())
    time.sleep(seconds)
    cpu1, stages1, status1, t1 = procs.cpu(), stage_costs(target.metrics_url), target.status(), time.monotonic()
    window = [(at, wall, d) for at, wall, d in log.snapshot(mark) if d["session_id"] in set(names)]
    elapsed = t1 - t0
    e2e = [
        d["latency_ms"] + delivery_ms(wall, d)
        for _, wall, d in window
        if d.get("latency_ms") is not None
    ]
    if status0 is not None and status1 is not None:
        before = {s["stream_name"]: s for s in status0["streams"]}
        after = {s["stream_name"]: s for s in status1["streams"]}

        def rate(field: str) -> list[float]:
            return [(after[n][field] - before[n][field]) / elapsed if n in before and n in after else 0.0 for n in names]

        analysed, decoded = rate("frames_analyzed"), rate("frames_decoded")
        degraded = any(w.get("degraded") for w in status1["workers"])
        publishing = {p.url.rsplit("/", 1)[-1]: p.running() for p in stack.publishers}
        slow = [  # 没达到分析帧率的流：开始与结束时的所属进程、状态（换了进程时计数从头开始），推流进程是否还在
            {"stream": n, "analysis_fps": round(a, 2), "decode_fps": round(r, 2),
             "owner": [s.get(n, {}).get("owner") for s in (before, after)],
             "state": [s.get(n, {}).get("state") for s in (before, after)],
             "publisher_running": publishing.get(n), "last_error": after.get(n, {}).get("last_error")}
            for n, a, r in zip(names, analysed, decoded) if a < MIN_SHARE * TARGET_FPS
        ]  # fmt: skip
    else:  # 种子设计：每分析一帧发一条
        per = {n: 0 for n in names}
        for _, _, d in window:
            per[d["session_id"]] += 1
        analysed, decoded, degraded = [per[n] / elapsed for n in names], [], None
        slow = [{"stream": n, "analysis_fps": round(a, 2)} for n, a in zip(names, analysed) if a < MIN_SHARE * TARGET_FPS]
    cores = {role: round((cpu1[role] - cpu0[role]) / elapsed, 3) for role in cpu0}
    analysis_cores = cores.get("workers", 0.0)
    costs = {
        stage: round((stages1[stage][0] - s0) * 1000.0 / max(1.0, stages1[stage][1] - c0), 2)
        for stage, (s0, c0) in stages0.items()
        if stage in stages1 and stages1[stage][1] > c0
    }
    p95 = percentile(e2e, 0.95)
    ok = (
        p95 is not None
        and p95 <= TARGET_P95_MS
        and min(analysed) >= MIN_SHARE * TARGET_FPS
        and (not decoded or min(decoded) >= MIN_SHARE * DECODE_FPS)
    )
    return {
        "streams": len(names),
        "holds_targets": ok,
        "seconds": round(elapsed, 1),
        "decode_to_client_ms": {"p50": percentile(e2e, 0.5), "p95": p95, "p99": percentile(e2e, 0.99)},
        "analysis_fps": {"min": round(min(analysed), 2), "median": round(statistics.median(analysed), 2),
                         "max": round(max(analysed), 2)},  # fmt: skip
        "decode_fps_min": round(min(decoded), 2) if decoded else None,
        "degraded_reported": degraded,
        "slow_streams": slow,
        "cpu_cores": cores,
        "analysis_cores_per_stream": round(analysis_cores / len(names), 4),
        "rss_mb": procs.rss_mb(),
        "stage_ms_per_call": costs,
    }


def search(stack: LocalStack, log: UpdateLog, target: Target, start: int, limit: int, seconds: float) -> dict:
    """翻倍到不达标，再二分；返回每次探测与达标的最大路数。"""
    probes: dict[int, dict] = {}
    names: list[str] = []

    def probe(n: int) -> bool:
        if n not in probes:
            if len(names) > n:  # 多余的推流也停掉：它们经过 RTSP 服务器，会占用被测机器的 CPU
                target.apply(names[:n])
                for publisher in stack.publishers[n:]:
                    publisher.stop()
                del stack.publishers[n:], names[n:]
            names.extend(stack.publish(n - len(names)))
            probes[n] = measure(stack, log, target, names[:n], seconds)
            print(f"[throughput] {target.name} {n} streams -> {probes[n]['holds_targets']} "
                  f"p95={probes[n]['decode_to_client_ms']['p95']} fps_min={probes[n]['analysis_fps']['min']}",
                  file=sys.stderr, flush=True)  # fmt: skip
        return probes[n]["holds_targets"]

    lo, hi, n = 0, None, start
    while hi is None:
        if probe(n):
            lo = n
            if n >= limit:
                break
            n = min(limit, n * 2)
        else:
            hi = n
    while hi is not None and hi - lo > max(1, lo // 10):
        mid = (lo + hi) // 2
        if probe(mid):
            lo = mid
        else:
            hi = mid
    cores = psutil.cpu_count()
    best = probes.get(lo)
    return {
        "sustained_streams": lo,
        "streams_per_core": round(lo / cores, 2),
        "at_sustained": best,
        "probes": [probes[k] for k in sorted(probes)],
    }


def pipeline_target(stack: LocalStack, processes: int) -> Target:
    running: set[str] = set()

    def apply(names: list[str]) -> None:
        for name in running - set(names):
            stack.post("/api/rtsp/stop", {"stream_name": name})
        for name in sorted(set(names) - running):
            stack.post("/api/rtsp/start", {"stream_name": name, "rtsp_url": stack.rtsp.read_url(name)})
        running.clear()
        running.update(names)

    def processes_() -> dict[str, list[int]]:
        assert stack.workers is not None
        supervisor = psutil.Process(stack.workers.pid)
        return {
            "workers": [c.pid for c in supervisor.children()],
            "supervisor": [supervisor.pid],
            "gateway": [stack.gateway.pid],
            "harness": harness_pids(stack),
        }

    port = stack.env["WORKER_METRICS_PORT"]
    return Target(f"pipeline-{processes}p", apply, processes_, lambda: stack.get("/api/rtsp/status"),
                  f"http://127.0.0.1:{port}/metrics")  # fmt: skip


def harness_pids(stack: LocalStack) -> list[int]:
    pids = [p.proc.pid for p in stack.publishers if p.proc is not None]
    if stack.rtsp.proc is not None:
        pids.append(stack.rtsp.proc.pid)
    return pids


def seed_target(stack: LocalStack) -> Target:
    state: dict[str, subprocess.Popen | None] = {"proc": None}

    def close() -> None:
        if state["proc"] is not None:
            state["proc"].terminate()
            state["proc"].wait(10)

    def apply(names: list[str]) -> None:
        close()
        args = [sys.executable, "-m", "devtools.bench.seed_design", "--redis-url", stack.env["REDIS_URL"],
                "--channel", RedisKeys(stack.env.get("KEY_PREFIX", "proctor:")).socketio_channel]  # fmt: skip
        for name in names:
            args += ["--stream", f"{name}={stack.rtsp.read_url(name)}"]
        state["proc"] = subprocess.Popen(args, env=stack.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def processes_() -> dict[str, list[int]]:
        proc = state["proc"]
        return {"workers": [proc.pid] if proc else [], "gateway": [stack.gateway.pid], "harness": harness_pids(stack)}

    return Target("seed", apply, processes_, lambda: None, close=close)


def bench_throughput(processes: int, seconds: float, start: int, limit: int, streams: int | None,
                     baseline: str | None) -> dict:  # fmt: skip
    audio = clip_audio()
    result: dict = {"benchmark": "throughput", "machine": {"cpus": psutil.cpu_count()},
                    "targets": {"decode_to_client_p95_ms": TARGET_P95_MS, "analysis_fps_min": MIN_SHARE * TARGET_FPS,
                                "decode_fps_min": MIN_SHARE * DECODE_FPS},
                    "source": "640x360 H.264 15 fps + AAC，1 张真实人脸，语音 + 底噪"}  # fmt: skip
    with local_stack(processes, audio=audio) as stack:
        log = UpdateLog(stack.base, stack.monitor_token())
        try:
            target = pipeline_target(stack, processes)
            if streams is not None:
                names = stack.publish(streams)
                result["pipeline"] = measure(stack, log, target, names, seconds)
            else:
                result["pipeline"] = search(stack, log, target, start, limit, seconds)
        finally:
            log.close()
    if baseline == "seed":
        with local_stack(0, audio=audio) as stack:
            log = UpdateLog(stack.base, stack.monitor_token())
            target = seed_target(stack)
            try:
                result["seed"] = search(stack, log, target, 1, 8, seconds)
            finally:
                target.close()
                log.close()
        ours, seed = result["pipeline"].get("sustained_streams"), result["seed"]["sustained_streams"]
        result["ratio_vs_seed"] = round(ours / seed, 2) if ours and seed else None
    return result
