"""推流令牌与 MediaMTX 鉴权决策（纯函数，不做 I/O）。

- 学生端：``create_session`` 返回的 ``publish_token`` 只对该会话、该会话的流路径有效，
  到 ``publish_token_expires_at`` 过期，会话结束立即失效。
- MediaMTX（``authMethod: http``）：``publish`` 需要该路径所属会话的令牌（WHIP 的 Bearer 令牌在 ``token`` 字段，
  RTSP 推流可以把令牌作为密码）；``read`` / ``playback`` 只允许工作进程的读取账号；其他动作一律拒绝
  （MediaMTX 的 api / metrics 在 ``authHTTPExclude`` 中，不会到这里）。
"""

from __future__ import annotations

from datetime import datetime

from shared.api import MediaMtxAuthRequest, SessionInfo

from ..digest import matches_digest, same_secret

READ_ACTIONS = ("read", "playback")


def _timestamp(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def check_publish_token(info: SessionInfo | None, token: str | None, now: float, for_publish: bool = True) -> str | None:
    """令牌是否属于该未结束的会话：是时返回 None，否则返回原因代码。

    过期只限制发起新的推流（offer、MediaMTX 的 publish）；心跳、补充候选、结束推流只要求令牌正确，
    所以超过有效期仍在进行的考试不会被打断。"""
    if info is None:
        return "session_not_found"
    if info.status == "ENDED":
        return "session_ended"
    if not matches_digest(token, info.publish_token_sha256):
        return "invalid_token"
    if for_publish and info.publish_token_expires_at and now >= _timestamp(info.publish_token_expires_at):
        return "token_expired"
    return None


def decide(
    req: MediaMtxAuthRequest, path_session: SessionInfo | None, read_user: str, read_password: str, now: float
) -> str | None:
    """MediaMTX 的一次鉴权请求：允许时返回 None，否则返回原因代码。``path_session`` 是请求路径所属的会话。"""
    if req.action == "publish":
        if path_session is None or path_session.stream_name != req.path:
            return "path_not_bound_to_session"
        return check_publish_token(path_session, req.token or req.password, now)
    if req.action in READ_ACTIONS:
        if not read_user:
            return "reader_account_not_configured"
        if same_secret(req.user or "", read_user) and same_secret(req.password or "", read_password):
            return None
        return "invalid_reader_credentials"
    return "action_not_allowed"
