"""会话汇总的增量累积（纯逻辑，不做 I/O）：每次推送 monitor.update 时按与上次推送的间隔累加，
由工作进程定期把增量原子地并入 Redis 中的会话汇总（见 ``workers/report_sink.py``）。

以增量而不是全量写入：流被另一个工作进程接管后继续累加到同一份汇总里，进程崩溃最多丢失最近一次刷写后的几秒。
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.keys import HISTORY_INTERVAL_S
from shared.messages import MonitorUpdate, iso_utc

from ..analysis.anomalies import Episode

# 两次推送间隔超过该值（断流、重连）时只按该值计入，断流期间不算作被分析的时间
MAX_STEP_S = 2.0


@dataclass
class Deltas:
    """一次刷写的内容：计数/时长增量（``sums``）与心率极值（``hr_min`` / ``hr_max``）。"""

    sums: dict[str, float] = field(default_factory=dict)
    hr_min: float | None = None
    hr_max: float | None = None
    episodes: list[dict] = field(default_factory=list)  # 已结束的异常事件段（JSON 形状见 shared.api.AnomalyEpisode）
    samples: list[list] = field(default_factory=list)  # 时间序列的行（列见 shared.api.HISTORY_FIELDS）

    def add(self, name: str, value: float) -> None:
        if value:
            self.sums[name] = self.sums.get(name, 0.0) + value

    def add_hr(self, bpm: float) -> None:
        self.hr_min = bpm if self.hr_min is None else min(self.hr_min, bpm)
        self.hr_max = bpm if self.hr_max is None else max(self.hr_max, bpm)

    @property
    def empty(self) -> bool:
        return not self.sums and self.hr_min is None and not self.episodes and not self.samples


def history_row(update: MonitorUpdate, wall_ms: int) -> list:
    """一条 monitor.update -> 时间序列的一行（列的顺序即 ``shared.api.HISTORY_FIELDS``）。"""
    m = update.metrics
    return [
        wall_ms, _r(m.attention.score, 3), _r(m.ppg.hr_bpm, 1), _r(m.ppg.signal_quality, 2), m.emotion.dominant,
        _r(m.emotion.confidence, 2), _r(m.audio.level_dbfs, 1), update.risk.score if update.risk else None,
        _r(update.latency_ms, 0), update.system.dropped_frames, _r(update.system.analysis_fps, 1),
    ]


def _r(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def episode_record(ep: Episode, clock_offset: float) -> dict:
    """事件段（monotonic 时刻）-> 报告里的记录（ISO 时间）；``clock_offset`` = time.time() - time.monotonic()。"""
    end = ep.end if ep.end is not None else ep.start
    return {
        "code": ep.code,
        "start": iso_utc(ep.start + clock_offset),
        "end": iso_utc(end + clock_offset),
        "duration_s": round(end - ep.start, 2),
        "peak_severity": ep.peak_severity,
    }


class SessionAggregator:
    """一路流的会话汇总增量。``add_update`` 在分析线程调用，``take`` 在协调线程调用（内部加锁）。"""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deltas = Deltas()
        self._last_at: float | None = None
        self._multi_face_secs = 0.0
        self._sampled_at: float | None = None

    def add_update(self, update: MonitorUpdate, dominant_emotion: str | None, now: float) -> None:
        """``now``：monotonic 时钟；``dominant_emotion``：同一时刻面部情绪（未知时 None）。"""
        step = 0.0 if self._last_at is None else min(MAX_STEP_S, max(0.0, now - self._last_at))
        self._last_at = now
        m = update.metrics
        codes = {a.code for a in update.anomalies}
        sample = self._sampled_at is None or now - self._sampled_at >= HISTORY_INTERVAL_S
        if sample:
            self._sampled_at = now
        with self._lock:
            d = self._deltas
            if sample:
                d.samples.append(history_row(update, int(time.time() * 1000)))
            d.add("updates", 1)
            d.add("analyzed_s", step)
            if m.face.detected:
                d.add("face_s", step)
            if m.attention.score is not None:
                d.add("attention_weighted", m.attention.score * step)
                d.add("attention_s", step)
            if "LOOK_AWAY" in codes:
                d.add("look_away_s", step)
            if "LOOKING_DOWN" in codes:
                d.add("looking_down_s", step)
            if m.face.identity_distance is not None:
                d.add("identity_checked_s", step)
                if m.face.identity_reference == "photo":
                    d.add("identity_photo_s", step)
            if m.face.identity_reference == "photo_unusable":
                d.add("identity_photo_unusable_s", step)
            if "IDENTITY_CHANGED" in codes:
                d.add("identity_changed_s", step)
            if "TALKING" in codes:
                d.add("talking_s", step)
            if m.face.multi_face_secs is not None:
                d.add("multi_face_s", max(0.0, m.face.multi_face_secs - self._multi_face_secs))
                self._multi_face_secs = m.face.multi_face_secs
            if dominant_emotion:
                d.add(f"emotion:{dominant_emotion}", step)
            if m.ppg.hr_bpm is not None:
                d.add("hr_weighted", m.ppg.hr_bpm * step)
                d.add("hr_quality_weighted", (m.ppg.signal_quality or 0.0) * step)
                d.add("hr_s", step)
                d.add_hr(m.ppg.hr_bpm)

    def add_episodes(self, episodes: Iterable[Episode]) -> None:
        offset = time.time() - time.monotonic()
        records = [episode_record(ep, offset) for ep in episodes]
        if records:
            with self._lock:
                self._deltas.episodes.extend(records)

    def add_media(self, reconnects: int = 0, dropped_frames: int = 0) -> None:
        with self._lock:
            self._deltas.add("reconnects", reconnects)
            self._deltas.add("dropped_frames", dropped_frames)

    def take(self) -> Deltas:
        """取出并清空累积的增量（刷写失败时调用方用 ``restore`` 放回）。"""
        with self._lock:
            deltas, self._deltas = self._deltas, Deltas()
            return deltas

    def restore(self, deltas: Deltas) -> None:
        with self._lock:
            for name, value in deltas.sums.items():
                self._deltas.add(name, value)
            self._deltas.episodes[:0] = deltas.episodes
            self._deltas.samples[:0] = deltas.samples
            for bound in (deltas.hr_min, deltas.hr_max):
                if bound is not None:
                    self._deltas.add_hr(bound)
