"""参考照片 ``reference_photo:<会话>``（``create_session`` 时给出）：认领流时读取，交给该流的身份比对
（:meth:`workers.analysis.identity.IdentityTracker.offer_photo`）。照片只在内存里经过，不写盘、不发出。"""

from __future__ import annotations

import logging

import redis

from shared.keys import RedisKeys

log = logging.getLogger(__name__)


class ReferencePhotos:
    """>>> photo = ReferencePhotos(client, keys).get(session_id)   # JPEG / PNG 字节；没有照片或读不到时 None"""

    def __init__(self, client: redis.Redis, keys: RedisKeys) -> None:
        self.r = client
        self.keys = keys

    def get(self, session_id: str) -> bytes | None:
        try:
            data = self.r.get(self.keys.reference_photo(session_id))
        except redis.RedisError as exc:  # 读不到：这一路改为画面登记，不影响认领
            log.warning("reference photo of %s not read: %s", session_id, exc)
            return None
        return data if isinstance(data, bytes) and data else None
