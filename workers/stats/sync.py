"""把各流消费者的累计计数（解码、丢帧、分析、重连）按增量并入本进程的 Prometheus 计数器（协调线程每个周期调用）。

计数本身由拉流线程与分析线程维护（它们也用于 ``rtsp/status``），这里只读，热路径上不多做任何事。"""

from __future__ import annotations

from collections.abc import Iterable

from ..pipeline.consumer import StreamConsumer
from .metrics import WorkerMetrics


def _counts(consumer: StreamConsumer) -> tuple[int, int, int, int]:
    return (consumer.ingest.frames_decoded, consumer.missed_analyses, consumer.state.frames_analyzed, consumer.ingest.reconnects)


class StreamCounters:
    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics
        self._seen: dict[StreamConsumer, tuple[int, int, int, int]] = {}

    def update(self, consumers: Iterable[StreamConsumer]) -> None:
        """并入这些消费者自上次以来的增量；不在其中的（已停止的）不再跟踪。"""
        m = self.metrics
        counters = (m.frames_decoded, m.frames_dropped, m.frames_analyzed, m.reconnects)
        seen = {}
        for consumer in consumers:
            now = _counts(consumer)
            before = self._seen.get(consumer, (0, 0, 0, 0))
            for counter, value, last in zip(counters, now, before):
                if value > last:
                    counter.inc(value - last)
            seen[consumer] = now
        self._seen = seen
