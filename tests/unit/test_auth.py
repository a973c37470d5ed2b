"""访问控制的纯逻辑（进程内）：监控令牌的签发、校验、续期与篡改；令牌桶限额；启动前的密钥检查。"""

from __future__ import annotations

import time

import jwt
import pytest

from gateway.app import create_app
from gateway.auth.limits import KeyedLimiter
from gateway.auth.tokens import MonitorTokens, TokenRefused
from gateway.digest import matches_digest, token_digest
from shared.settings import Settings

SECRET = "unit-test-monitor-secret-0123456789abcdef"


def _reason(tokens: MonitorTokens, token: object) -> str:
    with pytest.raises(TokenRefused) as caught:
        tokens.verify(token)
    return caught.value.reason


def test_tokens_verify_renew_and_refuse_tampering() -> None:
    tokens = MonitorTokens(SECRET, ttl_s=900, max_age_s=3600)
    token, grant = tokens.issue("teacher-1", exam_id="math")
    assert tokens.verify(token) == grant and grant.sees_exam("math") and not grant.sees_exam("art")
    renewed, again = tokens.renew(grant)
    assert renewed != token and again.grant_id == grant.grant_id and again.renew_until == grant.renew_until

    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="proctor-monitor")
    unscoped = {k: v for k, v in claims.items() if k != "exam"}
    widened = jwt.encode(unscoped, "another-secret-0123456789abcdef0123", algorithm="HS256")
    assert _reason(tokens, widened) == "token_invalid"  # 去掉考试限定后重新签名：密钥不对
    header, body, signature = token.split(".")
    assert _reason(tokens, f"{header}.{body}x.{signature}") == "token_invalid"
    assert _reason(tokens, jwt.encode({**claims, "exp": int(time.time()) - 1}, SECRET, algorithm="HS256")) == "token_expired"
    assert _reason(tokens, jwt.encode({**claims, "aud": "other"}, SECRET, algorithm="HS256")) == "token_invalid"
    assert _reason(tokens, jwt.encode({**claims}, None, algorithm="none")) == "token_invalid"
    assert _reason(tokens, None) == "token_missing" and _reason(tokens, 42) == "token_missing"


def test_renewal_stops_at_the_maximum_age() -> None:
    tokens = MonitorTokens(SECRET, ttl_s=900, max_age_s=60)
    _, grant = tokens.issue("teacher-1")
    assert grant.expires_at <= grant.renew_until  # 有效期不超过最长续期时间
    from dataclasses import replace

    with pytest.raises(TokenRefused) as caught:
        tokens.renew(replace(grant, renew_until=time.time() - 1))
    assert caught.value.reason == "token_expired"


def test_keyed_limiter_blocks_a_key_after_its_burst_and_recovers() -> None:
    limiter = KeyedLimiter(rate_per_s=1.0, burst=3, max_keys=2)
    assert [limiter.allow("a", now=0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.blocked("a", now=0.0) and not limiter.blocked("b", now=0.0)
    assert not limiter.blocked("a", now=1.5) and limiter.allow("a", now=1.5)  # 每秒恢复一个
    limiter.allow("b", now=2.0)
    limiter.allow("c", now=2.0)  # 超过 max_keys：最久未用的 a 被忘掉
    assert not limiter.blocked("a", now=2.0)


def test_publish_tokens_are_compared_by_digest() -> None:
    digest = token_digest("tok-123")
    assert len(digest) == 64 and "tok-123" not in digest
    assert matches_digest("tok-123", digest) and not matches_digest("tok-124", digest) and not matches_digest(None, digest)


def test_gateway_refuses_to_start_with_missing_short_or_default_secrets_outside_dev_mode() -> None:
    good = {"api_key": "k" * 20, "monitor_token_secret": "m" * 40, "mediamtx_auth_secret": "s" * 20}
    assert Settings(**good).secret_problems() == []
    for field, value, hint in [
        ("monitor_token_secret", "", "MONITOR_TOKEN_SECRET"),
        ("mediamtx_auth_secret", "short", "MEDIAMTX_AUTH_SECRET"),
        ("api_key", "change-me", "API_KEY"),
    ]:
        settings = Settings(**{**good, field: value})
        with pytest.raises(ValueError, match=hint):
            create_app(settings)
    reader = Settings(**good, mediamtx_read_user="reader", mediamtx_read_password="123")
    assert any("MEDIAMTX_READ_PASSWORD" in p for p in reader.secret_problems())
    create_app(Settings(api_key="dev-key", dev_mode=True))  # 开发模式：只要有 API Key 就能启动
