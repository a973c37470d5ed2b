"""令牌只以摘要保存（Redis 里没有可用的明文令牌）；比较一律用常量时间。"""

from __future__ import annotations

import hashlib
import secrets


def token_digest(token: str) -> str:
    """推流令牌的 SHA-256 摘要（十六进制）。令牌本身是 192 位随机数，不需要加盐或慢哈希。"""
    return hashlib.sha256(token.encode()).hexdigest()


def same_secret(a: str, b: str) -> bool:
    return secrets.compare_digest(a.encode(), b.encode())


def matches_digest(token: str | None, digest: str) -> bool:
    """``token`` 的摘要是否为 ``digest``（令牌为空时 False）。"""
    return bool(token) and same_secret(token_digest(token or ""), digest)
