"""网关一侧的 Redis 状态访问（异步客户端）。"""

from .sessions import Conflict, NotFound, Store, connect

__all__ = ["Conflict", "NotFound", "Store", "connect"]
