"""GPU 读数（NVML，``nvidia-ml-py`` 包，可选）。没有这个包、没有驱动或没有 GPU 时 :attr:`GpuProbe.available` 为 False，
读数都是 None（``monitor.update.system.gpu_util`` 为 null），其余一切照常。

用法::

    probe = GpuProbe.for_visible_devices()   # 工作进程：只看 CUDA_VISIBLE_DEVICES 里的 GPU
    probe.utilization()                      # 0..1 或 None
    GpuProbe().readings()                    # 监督进程：每块 GPU 的利用率与显存
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuReading:
    index: int
    utilization: float  # 0..1，最近一个采样周期内 GPU 忙的时间比例
    memory_used_bytes: int
    memory_total_bytes: int


def visible_devices(value: str | None) -> list[int] | None:
    """``CUDA_VISIBLE_DEVICES`` 中的 GPU 序号；未设置时 None（全部可见），设置为空时 []（没有 GPU）。"""
    if value is None:
        return None
    return [int(x) for x in value.split(",") if x.strip().isdigit()]


class GpuProbe:
    def __init__(self, indices: list[int] | None = None) -> None:
        self._nvml: Any = None
        self._handles: list[tuple[int, Any]] = []
        try:
            import pynvml  # nvidia-ml-py；可选依赖

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            wanted = range(count) if indices is None else [i for i in indices if i < count]
            self._handles = [(i, pynvml.nvmlDeviceGetHandleByIndex(i)) for i in wanted]
            self._nvml = pynvml
        except Exception as exc:  # noqa: BLE001 - 没有包 / 驱动 / GPU：读数为 None
            log.debug("NVML unavailable: %s", exc)

    @classmethod
    def for_visible_devices(cls) -> GpuProbe:
        # 监督进程同时设置 CUDA_DEVICE_ORDER=PCI_BUS_ID，CUDA 的序号与 NVML 的一致
        return cls(visible_devices(os.environ.get("CUDA_VISIBLE_DEVICES")))

    @property
    def available(self) -> bool:
        return self._nvml is not None and bool(self._handles)

    def readings(self) -> list[GpuReading]:
        if not self.available:
            return []
        out = []
        for index, handle in self._handles:
            try:
                util = self._nvml.nvmlDeviceGetUtilizationRates(handle)
                mem = self._nvml.nvmlDeviceGetMemoryInfo(handle)
            except Exception as exc:  # noqa: BLE001 - 单块 GPU 读不到时跳过它
                log.debug("NVML read of GPU %d failed: %s", index, exc)
                continue
            out.append(GpuReading(index, util.gpu / 100.0, int(mem.used), int(mem.total)))
        return out

    def utilization(self) -> float | None:
        """可见 GPU 的平均利用率；没有读数时 None。"""
        readings = self.readings()
        return round(sum(r.utilization for r in readings) / len(readings), 3) if readings else None
