"""分析节奏：每路流按目标间隔分析；进程跟不上时所有流一起放慢（同一个有效间隔），并如实报告。

分析线程每一步处理所有“到点”的流（各取拉流线程放入的最新一帧，所以帧龄不超过一个解码帧间隔，
不会排队积压旧帧）。``AnalysisPacer`` 记录每路流一次分析的平均耗时 ``c``（墙钟时间，含与拉流线程、
其他进程争抢 CPU 的等待），有效间隔取 ``max(目标间隔, c * 流数 / MAX_BUSY)``：分析线程最多忙
``MAX_BUSY`` 的时间，剩下的留给解码与 rPPG 采样（它们每帧都要做，不降级）。有效间隔大于目标时即为降级。

用法::

    pacer = AnalysisPacer(target_interval_s=0.2)
    if pacer.due(consumer.last_analysed_at, now): ...      # 选出到点的流
    skipped = pacer.missed(consumer.last_analysed_at, now, frames_since=5)
    pacer.record(busy_s=0.03, streams=4, active=12)         # 一步处理完后
    pacer.degraded, pacer.fps, pacer.headroom
"""

from __future__ import annotations


class AnalysisPacer:
    MAX_BUSY = 0.85  # 分析线程最多占用的时间比例
    SMOOTHING = 0.1  # 每路流耗时的指数平滑系数（约 10 步的记忆）
    DEGRADED_RATIO = 1.05  # 有效间隔超过目标的这个倍数才算降级（避免在边界上来回跳）

    def __init__(self, target_interval_s: float) -> None:
        self.target_interval_s = target_interval_s
        self.interval_s = target_interval_s
        self.cost_s: float | None = None  # 每路流一次分析的平均耗时
        self._active = 0

    def due(self, last_analysed_at: float | None, now: float) -> bool:
        # 提前 5%：拉流帧到达的时刻与分析线程醒来的时刻不对齐，按整点判会系统性地晚一帧
        return last_analysed_at is None or now >= self.next_due(last_analysed_at)

    def next_due(self, analysed_at: float) -> float:
        return analysed_at + 0.95 * self.interval_s

    def missed(self, last_analysed_at: float | None, now: float, frames_since: int) -> int:
        """上次分析以来，按目标帧率本应分析而没有分析的帧数（计为丢帧）；其间只解码了
        ``frames_since`` 帧时最多算 ``frames_since - 1``（断流时没有帧可丢）。"""
        if last_analysed_at is None:
            return 0
        return max(0, min(round((now - last_analysed_at) / self.target_interval_s) - 1, frames_since - 1))

    def record(self, busy_s: float, streams: int, active: int) -> None:
        """一步处理了 ``streams`` 路流、用时 ``busy_s``；本进程当前共 ``active`` 路流。"""
        self._active = active
        if streams > 0:
            cost = busy_s / streams
            self.cost_s = cost if self.cost_s is None else self.cost_s + self.SMOOTHING * (cost - self.cost_s)
        self.interval_s = max(self.target_interval_s, self.load_s / self.MAX_BUSY)

    @property
    def load_s(self) -> float:
        """所有流各分析一次需要的时间。"""
        return (self.cost_s or 0.0) * self._active

    @property
    def degraded(self) -> bool:
        return self.interval_s > self.DEGRADED_RATIO * self.target_interval_s

    @property
    def fps(self) -> float:
        """当前每路流的有效分析帧率。"""
        return 1.0 / self.interval_s

    @property
    def headroom(self) -> float | None:
        """还能按目标帧率多承担的负载比例（1 = 空闲，0 = 刚好满，负数 = 已降级）；还没测到耗时时 None。"""
        if self.cost_s is None:
            return None
        return round(1.0 - self.load_s / (self.MAX_BUSY * self.target_interval_s), 3)

    def fits_one_more(self) -> bool:
        """按目标帧率再加一路流是否仍不降级（还没测到耗时时视为可以）。"""
        if self.cost_s is None:
            return True
        return self.cost_s * (self._active + 1) <= self.MAX_BUSY * self.target_interval_s
