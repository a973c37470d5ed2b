"""分析节奏：每路流按目标间隔分析；进程跟不上时所有流一起放慢（同一个有效间隔），并如实报告。

分析线程每一步处理所有“到点”的流（各取拉流线程放入的最新一帧，所以帧龄不超过一个解码帧间隔，
不会排队积压旧帧）。``AnalysisPacer`` 记录每路流一次分析在分析线程上的 CPU 时间 ``c``（不含等 GIL、
等 CPU 的时间：那是别人的负载，算进来会让节奏器在机器忙时越放越慢），有效间隔取
``max(目标间隔, c * 流数 / MAX_BUSY)``：分析线程最多忙 ``MAX_BUSY`` 的时间，剩下的留给解码与 rPPG 采样
（它们每帧都要做，不降级）。降级有两种，都会报告：有效间隔大于目标（分析本身的活太多），或到点的帧
平均要等目标间隔的 15% 以上才被分析（CPU 被别的线程、别的进程占去；这时各路流一样按到点先后轮流分析）。

用法::

    pacer = AnalysisPacer(target_interval_s=0.2)
    if pacer.due(consumer.last_analysed_at, now): ...      # 选出到点的流
    skipped = pacer.missed(consumer.last_analysed_at, now, frames_since=5)     # 错过的帧数
    pacer.waited(0.004)                                     # 到点的帧等了多久才被分析
    pacer.record(busy_s=0.03, streams=4, active=12)         # 一步处理完后（busy_s：分析线程的 CPU 秒）
    pacer.degraded, pacer.throttled, pacer.fps, pacer.headroom
"""

from __future__ import annotations


class AnalysisPacer:
    MAX_BUSY = 0.85  # 分析线程最多占用的时间比例
    SMOOTHING = 0.1  # 指数平滑系数（约 10 次的记忆）
    DEGRADED_RATIO = 1.05  # 有效间隔超过目标的这个倍数才算降级（避免在边界上来回跳）
    LATE_SHARE = 0.15  # 到点的帧平均等待超过目标间隔的这个比例也算降级（5 fps 时 30 ms：实际帧率约低于目标的 87%）

    def __init__(self, target_interval_s: float) -> None:
        self.target_interval_s = target_interval_s
        self.interval_s = target_interval_s
        self.cost_s: float | None = None  # 每路流一次分析的平均 CPU 时间
        self.wait_s: float | None = None  # 到点的帧等到被分析的平均时间
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

    def waited(self, seconds: float) -> None:
        """一路流的帧到点（见 ``FrameSlot.ready_at``）之后等了 ``seconds`` 才被分析。"""
        previous = self.wait_s or 0.0  # 从 0 起平滑：流刚开始时的一次长等待（模型还在加载）不会让它一上来就算降级
        self.wait_s = previous + self.SMOOTHING * (seconds - previous)

    def record(self, busy_s: float, streams: int, active: int) -> None:
        """一步处理了 ``streams`` 路流、分析线程用了 ``busy_s`` CPU 秒；本进程当前共 ``active`` 路流。"""
        self._active = active
        if active == 0:
            self.wait_s = None  # 没有流了：等待从头计
        if streams > 0:
            cost = busy_s / streams
            self.cost_s = cost if self.cost_s is None else self.cost_s + self.SMOOTHING * (cost - self.cost_s)
        self.interval_s = max(self.target_interval_s, self.load_s / self.MAX_BUSY)

    @property
    def load_s(self) -> float:
        """所有流各分析一次需要的 CPU 时间。"""
        return (self.cost_s or 0.0) * self._active

    @property
    def throttled(self) -> bool:
        """分析本身的活太多：有效间隔已放宽到目标之上。"""
        return self.interval_s > self.DEGRADED_RATIO * self.target_interval_s

    @property
    def degraded(self) -> bool:
        late = self.wait_s is not None and self.wait_s > self.LATE_SHARE * self.target_interval_s
        return self.throttled or late

    @property
    def fps(self) -> float:
        """当前每路流的分析帧率：有效间隔加上到点后的平均等待。"""
        return 1.0 / (self.interval_s + (self.wait_s or 0.0))

    @property
    def headroom(self) -> float | None:
        """还能按目标帧率多承担的负载比例（1 = 空闲，0 = 刚好满，负数 = 已降级；实际跟不上时不大于 0）；
        还没测到耗时时 None。"""
        if self.cost_s is None:
            return None
        spare = round(1.0 - self.load_s / (self.MAX_BUSY * self.target_interval_s), 3)
        return min(spare, 0.0) if self.degraded else spare

    def fits_one_more(self) -> bool:
        """按目标帧率再加一路流是否仍不降级（还没测到耗时时视为可以）。"""
        if self.cost_s is None:
            return True
        return not self.degraded and self.cost_s * (self._active + 1) <= self.MAX_BUSY * self.target_interval_s
