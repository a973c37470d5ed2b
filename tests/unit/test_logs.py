"""日志：请求里带来的换行等控制字符被转义，不能伪造出另一行日志；本进程的异常回溯照常多行。"""

from __future__ import annotations

import logging
import sys

from shared.logs import FORMAT, SafeFormatter


def _format(msg: str, *args: object, exc: bool = False) -> str:
    record = logging.LogRecord("gateway.http", logging.INFO, __file__, 1, msg, args, sys.exc_info() if exc else None)
    return SafeFormatter(FORMAT).format(record)


def test_control_characters_from_requests_stay_on_one_line() -> None:
    line = _format("mediamtx auth denied: %s %s", "read\n2026-12-01 00:00:00 INFO gateway: forged", "p\r\u2028x\x1b[31m")
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\u2028" not in line
    assert "read\\n2026-12-01" in line and "p\\r\\u2028x\\x1b[31m" in line


def test_tracebacks_keep_their_lines() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        text = _format("step failed for %s", "a\nb", exc=True)
    first, *rest = text.splitlines()
    assert first.endswith("step failed for a\\nb")
    assert rest[0] == "Traceback (most recent call last):" and rest[-1] == "ValueError: boom"
