"""监督进程：启动 N 个工作进程，任何一个退出都按退避重启；收到 SIGINT/SIGTERM 时全部停止。

每个槽位可以有自己的环境变量（``slot_env``），例如 GPU 部署时各自的 ``CUDA_VISIBLE_DEVICES``；子进程退出时调用
``on_exit(pid)``（指标汇总据此清掉该进程的“live”量表）。"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.retry import Backoff

log = logging.getLogger(__name__)

# 子进程的环境默认值（已设置的照旧）：
# - MALLOC_ARENA_MAX：每路流一个拉流线程，glibc 默认按线程数开 malloc arena，线程反复创建/结束时 RSS 只涨不落；限制为 2 个。
# - OMP_NUM_THREADS：人脸检测（yuface）链接 libgomp，默认每个进程开与核数一样多的 OpenMP 线程，并行区之后还会自旋等待；
#   几个工作进程同时检测时这些线程互相抢核，两个进程在 2 核上的 decode -> 客户端 p95 从 0.18 秒变成 1.5 秒以上
#   （docs/benchmarks.md）。每路流的图像很小，检测在单线程里最快；进程级的并行由多个工作进程提供。
CHILD_DEFAULTS_ENV = {"MALLOC_ARENA_MAX": "2", "OMP_NUM_THREADS": "1"}


@dataclass
class _Slot:
    index: int
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    backoff: Backoff = field(default_factory=lambda: Backoff(base_s=1.0, cap_s=Supervisor.RESTART_MAX_DELAY_S))
    restart_at: float = 0.0
    restarts: int = 0


class Supervisor:
    # 子进程存活超过该时长视为稳定，退避计数清零
    STABLE_AFTER_S = 30.0
    RESTART_MAX_DELAY_S = 30.0

    def __init__(
        self,
        processes: int,
        command: list[str] | None = None,
        slot_env: list[dict[str, str]] | None = None,
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        if processes < 1:
            raise ValueError("processes 至少为 1")
        if slot_env is not None and len(slot_env) != processes:
            raise ValueError("slot_env 须与进程数一样多")
        self.command = command or [sys.executable, "-m", "workers.process", "--parent-pid", str(os.getpid())]
        self.slots = [_Slot(i, (slot_env or [{}] * processes)[i]) for i in range(processes)]
        self.on_exit = on_exit
        self.stop_event = threading.Event()

    def _spawn(self, slot: _Slot) -> None:
        env = {**CHILD_DEFAULTS_ENV, **os.environ, **slot.env}  # 已设置的变量优先于默认值
        slot.proc = subprocess.Popen(self.command, env=env)
        slot.started_at = time.monotonic()
        log.info("supervisor: worker slot %d started pid %d", slot.index, slot.proc.pid)

    def run(self) -> None:
        for slot in self.slots:
            self._spawn(slot)
        while not self.stop_event.wait(0.2):
            now = time.monotonic()
            for slot in self.slots:
                if slot.proc is not None:
                    code = slot.proc.poll()
                    if code is None:
                        continue
                    lived = now - slot.started_at
                    if lived >= self.STABLE_AFTER_S:
                        slot.backoff.succeeded()
                        delay = 0.0
                    else:
                        delay = slot.backoff.failed()
                    log.warning(
                        "supervisor: worker pid %d exited with %s after %.1fs; restarting in %.1fs",
                        slot.proc.pid, code, lived, delay,
                    )
                    if self.on_exit is not None:
                        self.on_exit(slot.proc.pid)
                    slot.proc = None
                    slot.restart_at = now + delay
                if slot.proc is None and now >= slot.restart_at:
                    slot.restarts += 1
                    self._spawn(slot)
        self._terminate_all()

    def _terminate_all(self, timeout: float = 10.0) -> None:
        procs = [s.proc for s in self.slots if s.proc is not None and s.proc.poll() is None]
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("supervisor: worker pid %d did not stop, killing", proc.pid)
                proc.kill()
                proc.wait()
        log.info("supervisor: all workers stopped")

    def pids(self) -> list[int]:
        return [s.proc.pid for s in self.slots if s.proc is not None]

    @property
    def restarts(self) -> int:
        return sum(s.restarts for s in self.slots)

    @property
    def alive(self) -> int:
        return sum(1 for s in self.slots if s.proc is not None and s.proc.poll() is None)
