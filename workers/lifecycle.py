"""进程生命周期的小工具（监督进程与工作进程共用，只用标准库：监督进程不必导入 OpenCV/PyAV）。"""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger(__name__)


def stop_on_signals(stop_event: threading.Event, label: str) -> None:
    """SIGTERM / SIGINT 时置位 ``stop_event``，由主循环负责有序退出。"""

    def _stop(signum: int, _frame: object) -> None:
        log.info("%s: signal %d, stopping", label, signum)
        stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
