"""监督进程的 ``/metrics``：汇总全部工作进程的指标（prometheus_client 多进程模式）、监督进程自己的状态与 GPU 读数。

prometheus_client 在被导入时决定取值存在哪里，所以 :func:`prepare_multiprocess_dir` 必须在任何进程导入它之前调用；
本模块只在函数里导入它。子进程继承 ``PROMETHEUS_MULTIPROC_DIR``，各自把取值写进这个目录；子进程退出时
:meth:`MetricsServer.process_exited` 按库的说明（``mark_process_dead``）清掉它的“live”量表，计数器的文件保留，
所以重启前后的计数在 ``rate()`` 看来是单调的。

用法::

    prepare_multiprocess_dir(Path("/tmp/proctor-metrics"))
    server = MetricsServer(gpu=GpuProbe(), supervisor_state=supervisor.state)
    server.start("0.0.0.0", 9101)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .gpu import GpuProbe

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir(path: Path) -> None:
    """清空并创建多进程指标目录，设置本进程（及之后启动的子进程）的 ``PROMETHEUS_MULTIPROC_DIR``。"""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ[ENV] = str(path)


@dataclass(frozen=True)
class SupervisorState:
    processes_alive: int
    processes_wanted: int
    restarts: int


class _Collector:
    """抓取时现读：监督进程的状态与每块 GPU 的利用率、显存。"""

    def __init__(self, gpu: GpuProbe, state: Callable[[], SupervisorState]) -> None:
        self.gpu = gpu
        self.state = state

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        state = self.state()
        yield GaugeMetricFamily("proctor_worker_processes_alive", "正在运行的工作进程", value=state.processes_alive)
        yield GaugeMetricFamily("proctor_worker_processes_wanted", "应当运行的工作进程", value=state.processes_wanted)
        yield CounterMetricFamily("proctor_worker_process_restarts", "监督进程重启工作进程的次数", value=state.restarts)
        util = GaugeMetricFamily("proctor_gpu_utilization_ratio", "GPU 利用率（0..1，NVML）", labels=["gpu"])
        used = GaugeMetricFamily("proctor_gpu_memory_used_bytes", "GPU 已用显存（NVML）", labels=["gpu"])
        total = GaugeMetricFamily("proctor_gpu_memory_total_bytes", "GPU 显存总量（NVML）", labels=["gpu"])
        for r in self.gpu.readings():
            util.add_metric([str(r.index)], r.utilization)
            used.add_metric([str(r.index)], r.memory_used_bytes)
            total.add_metric([str(r.index)], r.memory_total_bytes)
        yield from (util, used, total)


class MetricsServer:
    def __init__(self, gpu: GpuProbe, supervisor_state: Callable[[], SupervisorState]) -> None:
        self.gpu = gpu
        self.supervisor_state = supervisor_state

    def start(self, host: str, port: int) -> int:
        """在后台线程里提供 ``/metrics``；返回实际端口。"""
        from prometheus_client import CollectorRegistry, start_http_server
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        registry.register(_Collector(self.gpu, self.supervisor_state))
        server, _thread = start_http_server(port, addr=host, registry=registry)
        return int(server.server_port)

    @staticmethod
    def process_exited(pid: int) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
