"""``python -m workers``：监督进程与它的工作进程池，并在 ``WORKER_METRICS_PORT`` 上提供全部工作进程的 ``/metrics``。

- CPU：``python -m workers --processes N``；
- GPU：``python -m workers --gpus 0,1 --per-gpu 2``：每块 GPU 2 个进程（共 4 个），各自的 ``CUDA_VISIBLE_DEVICES``
  只含它的那块 GPU，进程里能用 GPU 的模型（TensorFlow 的情绪模型，及以后的模型）都在这块 GPU 上运行；
  解码（PyAV）与人脸检测（yuface）始终在 CPU 上。
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path

from shared.logs import configure_logging
from shared.settings import Settings

from .lifecycle import stop_on_signals
from .supervisor import Supervisor

log = logging.getLogger(__name__)


def gpu_list(value: str) -> list[int]:
    try:
        gpus = [int(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--gpus 应是逗号分隔的 GPU 序号，如 0,1；收到 {value!r}") from None
    if not gpus or any(g < 0 for g in gpus):
        raise argparse.ArgumentTypeError(f"--gpus 应是逗号分隔的 GPU 序号，如 0,1；收到 {value!r}")
    return gpus


def slot_environments(processes: int, gpus: list[int] | None, per_gpu: int) -> list[dict[str, str]]:
    """每个工作进程的环境变量：GPU 部署时按 GPU 顺序各 ``per_gpu`` 个（0,0,1,1），CPU 部署时不变。"""
    if gpus is None:
        return [{} for _ in range(processes)]
    # PCI_BUS_ID：CUDA 的设备序号与 nvidia-smi / NVML 的一致
    return [{"CUDA_VISIBLE_DEVICES": str(g), "CUDA_DEVICE_ORDER": "PCI_BUS_ID"} for g in gpus for _ in range(per_gpu)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workers", description="推理工作进程池")
    parser.add_argument("--processes", type=int, default=2, help="工作进程数（CPU 部署；给了 --gpus 时忽略）")
    parser.add_argument("--gpus", type=gpu_list, default=None, help="GPU 部署：使用的 GPU 序号，逗号分隔，如 0,1")
    parser.add_argument("--per-gpu", type=int, default=1, help="每块 GPU 上的工作进程数（与 --gpus 一起用）")
    args = parser.parse_args(argv)
    if args.per_gpu < 1:
        parser.error("--per-gpu 至少为 1")
    settings = Settings()
    configure_logging(settings.log_level)
    envs = slot_environments(args.processes, args.gpus, args.per_gpu)

    # 指标：先定目录再导入 prometheus_client（子进程继承这个目录）
    from .stats.exporter import prepare_multiprocess_dir

    metrics_dir = Path(settings.worker_metrics_dir or Path(tempfile.gettempdir()) / f"proctor-worker-metrics-{os.getpid()}")
    prepare_multiprocess_dir(metrics_dir)
    from .stats.exporter import MetricsServer, SupervisorState
    from .stats.gpu import GpuProbe

    supervisor = Supervisor(len(envs), slot_env=envs, on_exit=MetricsServer.process_exited)
    server = MetricsServer(
        GpuProbe(args.gpus), lambda: SupervisorState(supervisor.alive, len(supervisor.slots), supervisor.restarts)
    )
    if settings.worker_metrics_port:
        port = server.start(settings.worker_metrics_host, settings.worker_metrics_port)
        log.info("supervisor: worker metrics on http://%s:%d/metrics", settings.worker_metrics_host, port)
    stop_on_signals(supervisor.stop_event, "supervisor")
    supervisor.run()


if __name__ == "__main__":
    main()
