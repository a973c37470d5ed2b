"""分析节奏：跟不上时所有流一起放慢、报告降级，错过的分析计为丢帧。"""

from __future__ import annotations

import pytest

from workers.pipeline.pacing import AnalysisPacer

pytestmark = pytest.mark.unit


def test_keeps_target_rate_while_load_fits() -> None:
    pacer = AnalysisPacer(0.2)
    for _ in range(30):
        pacer.record(busy_s=0.04, streams=4, active=8)  # 每路 10 ms，8 路 = 80 ms < 0.85 * 200 ms
    assert not pacer.degraded and pacer.fps == pytest.approx(5.0)
    assert pacer.headroom == pytest.approx(1 - 0.08 / 0.17, abs=0.01)
    assert pacer.fits_one_more()


def test_slows_every_stream_to_the_same_interval_when_overloaded() -> None:
    pacer = AnalysisPacer(0.2)
    for _ in range(60):
        pacer.record(busy_s=0.3, streams=10, active=20)  # 每路 30 ms，20 路 = 600 ms
    assert pacer.degraded and pacer.headroom is not None and pacer.headroom < 0
    assert pacer.interval_s == pytest.approx(0.6 / 0.85, rel=0.02)  # 分析线程最多忙 85%
    assert not pacer.fits_one_more()
    # 到点判断对每路流用同一个有效间隔
    assert not pacer.due(10.0, 10.0 + 0.5) and pacer.due(10.0, 10.0 + 0.7)


def test_reports_degraded_when_due_frames_wait_although_the_analysis_work_fits() -> None:
    pacer = AnalysisPacer(0.2)
    for _ in range(30):
        pacer.record(busy_s=0.04, streams=4, active=8)  # 分析本身放得下（CPU 时间）
        pacer.waited(0.15)  # 但 CPU 被别人占去：到点的帧平均等 150 ms 才被分析
    assert pacer.degraded and pacer.headroom == 0.0 and not pacer.fits_one_more()
    assert pacer.fps == pytest.approx(1 / 0.35, rel=0.05)
    assert pacer.interval_s == 0.2  # 不额外放宽间隔：各路流照到点先后轮流分析


def test_missed_analyses_count_only_frames_that_arrived() -> None:
    pacer = AnalysisPacer(0.2)
    assert pacer.missed(None, 5.0, frames_since=10) == 0
    assert pacer.missed(10.0, 10.2, frames_since=3) == 0
    assert pacer.missed(10.0, 10.6, frames_since=9) == 2  # 降级到 1/3：每次错过 2 帧
    assert pacer.missed(10.0, 15.0, frames_since=1) == 0  # 断流：没有帧可丢
