"""``python -m workers --processes N``：启动监督进程与 N 个工作进程。"""

from __future__ import annotations

import argparse
import logging
import signal

from shared.settings import Settings

from .process import configure_logging
from .supervisor import Supervisor

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workers", description="推理工作进程池")
    parser.add_argument("--processes", type=int, default=2, help="工作进程数（CPU 部署）")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_level)
    supervisor = Supervisor(args.processes)

    def _stop(signum: int, _frame: object) -> None:
        log.info("supervisor: signal %d, stopping workers", signum)
        supervisor.stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    supervisor.run()


if __name__ == "__main__":
    main()
