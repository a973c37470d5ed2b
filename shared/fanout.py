"""工作进程 -> 网关的事件批（Socket.IO 的 Redis 频道上的一种消息）。

每次分析后一路流有 10 多条事件（``monitor.update`` 两个命名空间、兼容旧前端的四个事件名、``student.*``）。
python-socketio 的 Redis 管理器每条事件一条 Redis 消息、每条都带完整负载；300 路 x 2.5 次/秒时网关要解析
上万条消息/秒。这里一次分析的全部事件合成一条消息，相同的负载只写一次（按下标引用）::

    {"method": "emit_batch", "payloads": [{...}, ...],
     "emissions": [[事件名, 负载下标, 命名空间, 房间或房间列表], ...]}

网关（:class:`gateway.realtime.fanout.FanoutManager`）照旧接受 python-socketio 的单条 ``emit`` 消息。

用法::

    text = pack_batch([(event, data, namespace, room), ...])   # 工作进程
    batch = EmissionBatch.model_validate_json(text)            # 网关
    for event, data, namespace, room in batch.unpacked(): ...
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, model_validator

EMIT_BATCH = "emit_batch"
# :func:`pack_batch` 写出的消息都以此开头：网关据此区分事件批与 python-socketio 自己的消息，不必先整条解析
BATCH_PREFIX = b'{"method":"emit_batch",'

Room = str | list[str]
Emission = tuple[str, Any, str, Room]  # (事件, 负载, 命名空间, 房间)


class EmissionBatch(BaseModel):
    method: Literal["emit_batch"] = "emit_batch"
    payloads: list[Any]
    emissions: list[tuple[str, int, str, Room]]

    @model_validator(mode="after")
    def _indices_in_range(self) -> EmissionBatch:
        for event, index, _, _ in self.emissions:
            if not 0 <= index < len(self.payloads):
                raise ValueError(f"emission {event!r} refers to payload {index} of {len(self.payloads)}")
        return self

    def unpacked(self) -> Iterator[Emission]:
        for event, index, namespace, room in self.emissions:
            yield event, self.payloads[index], namespace, room


def pack_batch(emissions: list[Emission]) -> str:
    """一批事件 -> 一条消息的 JSON 文本；同一个负载对象（``is`` 相同）只写一次。"""
    payloads: list[Any] = []
    index_of: dict[int, int] = {}
    packed = []
    for event, data, namespace, room in emissions:
        index = index_of.get(id(data))
        if index is None:
            index = index_of[id(data)] = len(payloads)
            payloads.append(data)
        packed.append((event, index, namespace, room))
    return json.dumps({"method": EMIT_BATCH, "payloads": payloads, "emissions": packed},
                      ensure_ascii=False, separators=(",", ":"))
