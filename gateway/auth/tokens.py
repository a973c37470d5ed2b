"""教师监控令牌：网关用 ``MONITOR_TOKEN_SECRET`` 签名的短期 JWT（HS256），不在服务端保存。

令牌里是一次授权（grant）：``gid``（授权 ID，续期不变，撤销按它）、``sub``（教师）、可选的 ``exam``（只看该考试）、
``exp``（过期）与 ``renew_until``（最多续期到何时）。续期签发同一授权的新令牌；撤销把 ``gid`` 记入 Redis
直到它最后可能的过期时刻（见 :mod:`gateway.store.grants`）。

用法::

    tokens = MonitorTokens(secret, ttl_s=900, max_age_s=12 * 3600)
    token, grant = tokens.issue("teacher-1", exam_id="math-101")
    grant = tokens.verify(token)          # 过期、伪造、格式错误时 TokenRefused
    token, grant = tokens.renew(grant)    # 新的 exp，不超过 renew_until
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
AUDIENCE = "proctor-monitor"


class TokenRefused(Exception):
    """令牌不可用；``reason`` 是给客户端的原因代码（token_missing / token_invalid / token_expired / token_revoked）。"""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Grant:
    grant_id: str
    teacher: str
    exam_id: str | None
    expires_at: float
    renew_until: float

    def sees_exam(self, exam_id: str | None) -> bool:
        """未限定考试的授权看全部会话；限定了的只看该考试的会话。"""
        return self.exam_id is None or self.exam_id == exam_id


class MonitorTokens:
    def __init__(self, secret: str, ttl_s: float, max_age_s: float) -> None:
        self._secret = secret
        self.ttl_s = ttl_s
        self.max_age_s = max_age_s

    def issue(self, teacher: str, exam_id: str | None = None, ttl_s: float | None = None) -> tuple[str, Grant]:
        now = time.time()
        renew_until = float(int(now + self.max_age_s))  # 令牌里的时刻是整秒
        grant = Grant(
            grant_id=secrets.token_hex(12),
            teacher=teacher,
            exam_id=exam_id,
            expires_at=min(float(int(now + (ttl_s or self.ttl_s))), renew_until),
            renew_until=renew_until,
        )
        return self._sign(grant), grant

    def renew(self, grant: Grant) -> tuple[str, Grant]:
        """同一授权的新令牌（有效期重新计算，不超过 ``renew_until``）；已到 ``renew_until`` 时 TokenRefused。"""
        now = time.time()
        if now >= grant.renew_until:
            raise TokenRefused("token_expired", "授权已到最长续期时间，请重新打开监控页")
        expires = min(float(int(now + self.ttl_s)), grant.renew_until)
        renewed = Grant(grant.grant_id, grant.teacher, grant.exam_id, expires, grant.renew_until)
        return self._sign(renewed), renewed

    def verify(self, token: object) -> Grant:
        if not isinstance(token, str) or not token:
            raise TokenRefused("token_missing", "需要监控令牌（auth.token）")
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], audience=AUDIENCE,
                options={"require": ["exp", "gid", "sub", "renew_until"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRefused("token_expired", "监控令牌已过期") from None
        except jwt.InvalidTokenError:
            raise TokenRefused("token_invalid", "监控令牌无效") from None
        exam = claims.get("exam")
        return Grant(str(claims["gid"]), str(claims["sub"]), exam if isinstance(exam, str) else None,
                     float(claims["exp"]), float(claims["renew_until"]))

    def _sign(self, grant: Grant) -> str:
        claims = {
            "aud": AUDIENCE, "gid": grant.grant_id, "sub": grant.teacher, "exp": int(grant.expires_at),
            "renew_until": int(grant.renew_until), "jti": secrets.token_hex(8),  # 每个令牌都不同，即使同一秒续期
        }
        if grant.exam_id is not None:
            claims["exam"] = grant.exam_id
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)
