"""日志配置（网关与工作进程共用）：消息里的控制字符一律转义，请求里带来的换行不能伪造出另一行日志。"""

from __future__ import annotations

import logging
import re

FORMAT = "%(asctime)s %(levelname)s %(processName)s[%(process)d] %(name)s: %(message)s"
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    """``\\n`` -> ``\\\\n`` 等：控制字符写成 Python 的转义形式，日志仍是一条一行。"""
    return _CONTROL_RE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class SafeFormatter(logging.Formatter):
    """只转义消息本身；异常的回溯（本进程自己的栈）照常多行输出。"""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging 的接口名
        record.message = escape_controls(record.message)
        return super().formatMessage(record)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(SafeFormatter(FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
