"""风险分：教师墙的排序与报告的复核优先级（shared/risk.py），以及异常状态机给出的实时风险分。"""

from __future__ import annotations

from shared.risk import RiskEvent, risk_score
from workers.analysis.anomalies import AnomalyTracker


def test_a_second_person_ranks_above_talking_and_longer_ranks_above_shorter() -> None:
    multi = risk_score([RiskEvent("MULTI_FACE", "low", 3.0)])
    talking = risk_score([RiskEvent("TALKING", "low", 3.0)])
    longer = risk_score([RiskEvent("TALKING", "medium", 8.0)])
    assert multi.score > talking.score > 0 and longer.score > talking.score
    assert risk_score([]).score == 0.0 and risk_score([]).level == "none"
    assert risk_score([RiskEvent("MULTI_FACE", "high", 30.0)]).level == "high"
    assert talking.level == "low"


def test_several_kinds_add_up_but_the_score_stays_bounded() -> None:
    one = risk_score([RiskEvent("LOOK_AWAY", "medium", 6.0)])
    many = risk_score([RiskEvent(code, "high", 600.0) for code in ("MULTI_FACE", "NO_FACE", "OCCLUSION", "TALKING")])
    assert many.score > one.score and many.score <= 100.0


def test_ended_episodes_fade_on_the_wall_but_count_fully_in_the_report() -> None:
    just_ended = risk_score([RiskEvent("MULTI_FACE", "medium", 8.0, ended_ago_s=0.0)])
    later = risk_score([RiskEvent("MULTI_FACE", "medium", 8.0, ended_ago_s=240.0)])  # 两个半衰期
    report = risk_score([RiskEvent("MULTI_FACE", "medium", 8.0, ended_ago_s=240.0)], decay=False)
    assert later.score < just_ended.score / 2 and report.score == just_ended.score


def test_tracker_risk_rises_with_an_anomaly_and_decays_after_it_ends() -> None:
    tracker = AnomalyTracker()
    t = 0.0
    assert tracker.risk(t).score == 0.0
    for _ in range(40):  # 8 秒多人
        t += 0.2
        tracker.update({"MULTI_FACE": True}, t)
    during = tracker.risk(t)
    for _ in range(15):  # 3 秒后事件段结束（offset 1.5 秒）
        t += 0.2
        tracker.update({"MULTI_FACE": False}, t)
    assert not tracker.active(t)
    ended = tracker.risk(t)
    assert during.score > 50 and 0 < ended.score <= during.score
    assert tracker.risk(t + 600.0).score < 5.0  # 10 分钟后几乎不再影响排序
