"""网关的业务错误（存储与流程共用）：REST 把它们映射为 404 / 409，Socket.IO 处理函数把它们变成 ack 里的说明。"""


class NotFound(Exception):
    """请求的会话或流不存在。"""


class Conflict(Exception):
    """请求与现有状态冲突。"""


class Rejected(Exception):
    """请求体格式正确但不被允许（REST 返回 422，形状与请求体校验错误相同）。"""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
