"""读取学生端在编码前采样的皮肤颜色（Redis 流 ``ppg:<会话>``，网关写入），交给所属流的分析状态。

WebRTC 编码器会把约 0.3% 的脉搏亮度变化量化掉，服务器解码出的画面里几乎没有心率信息；
学生端按 ``ppg.roi`` 在原始摄像头画面上取皮肤颜色均值，每秒上传一批（见 dashboard/ppg-sampler.js）。
每个工作进程一个读取线程，用一次阻塞 XREAD 同时等待全部所属会话。
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import redis

from shared.keys import RedisKeys, as_text
from shared.retry import Backoff

from .consumer import StreamConsumer

log = logging.getLogger(__name__)

# XREAD 的回复：[(流键, [(条目 ID, {字段: 值}), ...]), ...]
StreamReply = tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]


class ClientPpgReader(threading.Thread):
    BLOCK_MS = 500
    # 刚接手一条流（含从被杀进程接管）时从这么久以前读起：估计窗口立即就有数据
    HISTORY_MS = 12_000

    def __init__(
        self, client: redis.Redis, keys: RedisKeys, consumers: Callable[[], list[StreamConsumer]], stop_event: threading.Event
    ) -> None:
        super().__init__(name="client-ppg", daemon=True)
        self.client = client
        self.keys = keys
        self.consumers = consumers
        self.stop_event = stop_event
        self._cursors: dict[str, str] = {}  # 会话 ID -> 已读到的条目 ID

    def run(self) -> None:
        backoff = Backoff(base_s=0.5, cap_s=5.0)
        while not self.stop_event.is_set():
            try:
                self.step()
                backoff.succeeded()
            except redis.RedisError as exc:
                delay = backoff.failed()
                log.warning("client ppg: redis error (%s), retry %d in %.1fs", exc, backoff.failures, delay)
                self.stop_event.wait(delay)
            except Exception:  # noqa: BLE001 - 读取线程不能退出
                log.exception("client ppg: unexpected error")
                self.stop_event.wait(1.0)

    def step(self) -> None:
        owned = {c.job.session_id: c for c in self.consumers() if c.job.session_id}
        self._cursors = {sid: cur for sid, cur in self._cursors.items() if sid in owned}
        if not owned:
            self.stop_event.wait(self.BLOCK_MS / 1000)
            return
        if any(sid not in self._cursors for sid in owned):
            seconds, micros = self.client.time()
            start = f"{seconds * 1000 + micros // 1000 - self.HISTORY_MS}-0"
            for sid in owned:
                self._cursors.setdefault(sid, start)
        sessions = {self.keys.ppg(sid): sid for sid in owned}
        streams: dict[Any, Any] = {key: self._cursors[sid] for key, sid in sessions.items()}
        reply = cast(list[StreamReply], self.client.xread(streams, count=100, block=self.BLOCK_MS))
        now = time.monotonic()
        for key, entries in reply or []:
            sid = sessions[as_text(key)]
            for entry_id, fields in entries:
                self._cursors[sid] = as_text(entry_id)
                try:
                    rows = json.loads(fields[b"samples"])
                except (KeyError, ValueError):
                    log.warning("client ppg: malformed entry %s in %s", entry_id, key)
                    continue
                owned[sid].state.pulse.add_client_samples(rows, now)
