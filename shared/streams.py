"""流名称与会话的映射。

学生流名形如 ``exam-<uuid>-user-<id>``（MediaMTX 路径名）。流与会话的对应关系优先使用
显式绑定（create_session / rtsp/start 时写入），否则解析流名得到考试与考生，再按其查找会话。
"""

from __future__ import annotations

import ipaddress
import re
import socket
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
# rtsp_url 里不允许的字符：控制字符（含 CR/LF）与空白
_URL_FORBIDDEN_RE = re.compile(r"[\x00-\x20\x7f-\x9f\s]")
_HOST_LABEL_RE = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")


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


def check_rtsp_url(url: str) -> str:
    """``rtsp_url`` 的格式检查（原样的字符串，不做任何清理）：只允许 rtsp/rtsps，不含空白与控制字符，
    主机是规范的 IP 地址或域名（不接受 ``0x7f000001``、``127.1`` 这类数字别名，不接受链路本地、组播、未指定地址），
    端口在 1..65535。不合格时 ValueError，说明原因。"""
    if _URL_FORBIDDEN_RE.search(url):
        raise ValueError("rtsp_url 不能含空白或控制字符（如换行）")
    parts = urlsplit(url)
    if parts.scheme not in ("rtsp", "rtsps"):
        raise ValueError("rtsp_url 必须以 rtsp:// 或 rtsps:// 开头")
    if not parts.hostname:
        raise ValueError("rtsp_url 缺少主机名")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"rtsp_url 端口无效: {exc}") from None
    if port == 0:
        raise ValueError("rtsp_url 端口无效: 0")
    _check_host(parts.hostname)
    return url


def _check_host(host: str) -> None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        if ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
            raise ValueError(f"rtsp_url 的主机 {host} 不是可用的摄像头/媒体服务器地址（链路本地、组播、保留或未指定地址）")
        return
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(_HOST_LABEL_RE.match(label) for label in labels):
        raise ValueError(f"rtsp_url 的主机名 {host!r} 不合法")
    try:
        socket.inet_aton(host)
    except OSError:
        return
    raise ValueError(f"rtsp_url 的主机 {host} 是数字形式的地址别名，请写成点分十进制的 IP")


def rtsp_host_allowed(url: str, allowed_hosts: list[str]) -> bool:
    """``allowed_hosts`` 为空时任何主机都可以；否则主机名（不区分大小写）须在其中。"""
    host = urlsplit(url).hostname or ""
    return not allowed_hosts or host in {h.lower() for h in allowed_hosts}


def redact_url(url: str) -> str:
    """响应与日志里的地址：去掉密码（``user:***@host``）。"""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.netloc.rsplit('@', 1)[1]}"
    return urlunsplit(parts._replace(netloc=netloc))
