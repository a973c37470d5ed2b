"""``python -m workers --processes N``：启动监督进程与 N 个工作进程。"""

from __future__ import annotations

import argparse

from shared.logs import configure_logging
from shared.settings import Settings

from .lifecycle import stop_on_signals
from .supervisor import Supervisor


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workers", description="推理工作进程池")
    parser.add_argument("--processes", type=int, default=2, help="工作进程数（CPU 部署）")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_level)
    supervisor = Supervisor(args.processes)
    stop_on_signals(supervisor.stop_event, "supervisor")
    supervisor.run()


if __name__ == "__main__":
    main()
