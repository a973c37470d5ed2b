"""流名称与会话的映射。

学生流名形如 ``exam-<uuid>-user-<id>``（MediaMTX 路径名）。流与会话的对应关系优先使用
显式绑定（create_session / rtsp/start 时写入），否则解析流名得到考试与考生，再按其查找会话。
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

# MediaMTX 路径允许的字符的安全子集；同时用作 Socket.IO 房间名的一部分。
STREAM_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$"
_STREAM_NAME_RE = re.compile(STREAM_NAME_PATTERN)
_EXAM_STREAM_RE = re.compile(
    r"^exam-(?P<exam_id>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[A-Za-z0-9]+)-user-(?P<student_id>[A-Za-z0-9._~-]+)$"
)
ID_PATTERN = r"^[A-Za-z0-9._~-]{1,64}$"


@dataclass(frozen=True)
class ParsedStreamName:
    """从 ``exam-<uuid>-user-<id>`` 解析出的考试 ID 与考生 ID。"""

    exam_id: str
    student_id: str


def is_valid_stream_name(name: str) -> bool:
    return bool(_STREAM_NAME_RE.match(name))


def parse_stream_name(name: str) -> ParsedStreamName | None:
    """解析 ``exam-<uuid>-user-<id>``；不符合该格式时返回 None。"""
    match = _EXAM_STREAM_RE.match(name)
    if not match:
        return None
    return ParsedStreamName(exam_id=match["exam_id"].lower(), student_id=match["student_id"])


def make_stream_name(exam_id: str, student_id: str) -> str:
    return f"exam-{exam_id}-user-{student_id}"


def new_session_id() -> str:
    return f"s-{uuid.uuid4()}"


def reader_url(url: str, mediamtx_rtsp_url: str, user: str, password: str) -> str:
    """工作进程实际打开的地址：指向本系统 MediaMTX（与 ``mediamtx_rtsp_url`` 同主机同端口）且没有自带账号时
    加上读取账号；其他来源（后端用 rtsp/start 指定的外部流）原样返回，账号不会发给第三方。"""
    parts, ours = urlsplit(url), urlsplit(mediamtx_rtsp_url)
    if not user or parts.username or (parts.hostname, parts.port) != (ours.hostname, ours.port):
        return url
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.netloc}"
    return urlunsplit(parts._replace(netloc=netloc))
