"""身份比对的状态机（纯逻辑，构造的描述子；像素上的表现见 tests/integration/test_identity.py）。"""

from __future__ import annotations

import numpy as np

from workers.analysis.identity import IdentityTracker


def test_no_identity_check_before_enrolment_and_a_swap_during_enrolment_restarts_it() -> None:
    """登记期间的描述子彼此不符（登记时换了人）：从新的人重新登记，不报告。"""
    tracker = IdentityTracker(check_interval_s=5.0, confirm_interval_s=1.0, enrol_count=3)
    a, b = np.zeros(128, np.float32), np.full(128, 0.1, np.float32)  # 距离 1.13
    assert tracker.condition() is None
    for t, d in ((0.0, a), (1.0, b), (2.0, b), (3.0, b)):
        assert tracker.due(t, usable=True)
        tracker.deliver(d, t)
        assert tracker.condition() is None or tracker.enrolled
    assert tracker.enrolled and np.allclose(tracker.reference, b) and tracker.condition() is False
    assert not tracker.due(4.0, usable=True)  # 下次在 3 + 5 秒
    assert not tracker.due(9.0, usable=False)  # 不是正脸：不取
    assert tracker.due(9.0, usable=True)
    tracker.deliver(a, 9.0)
    assert tracker.condition() is True
    assert tracker.due(10.0, usable=True)  # 不符之后 1 秒再比


def test_streams_waiting_for_the_identity_budget_take_turns_instead_of_the_first_in_phase_winning_every_time() -> None:
    """预算每 2 秒够一个描述子；三路每 0.2 秒各来问一次，a 的相位总在最前、一直需要比对（对不上，1 秒复查）。
    按先来后到轮流时三路得到的次数相差至多一次；只看谁先问的话 a 次次抢到（b、c 一次也没有）。"""
    from workers.models.identity import Turns

    def grants(fair: bool) -> dict[str, int]:
        turns, tokens, got = Turns(), 0.0, {"a": 0, "b": 0, "c": 0}
        for step in range(300):  # 60 秒
            tokens = min(2.0, tokens + 0.2 * 0.05 / 0.1)  # 0.05 核、每个描述子 0.1 核秒
            for k, who in enumerate(("a", "b", "c")):
                now = step * 0.2 + k * 0.01
                if (turns.ask(who, now) if fair else True) and tokens >= 1.0:
                    tokens -= 1.0
                    got[who] += 1
                    turns.served(who)
        return got

    fair = grants(fair=True)
    assert sum(fair.values()) == 30 and max(fair.values()) - min(fair.values()) <= 1, fair
    assert grants(fair=False) == {"a": 30, "b": 0, "c": 0}


def test_a_stream_that_stops_asking_leaves_the_queue_and_does_not_block_the_rest() -> None:
    from workers.models.identity import Turns

    turns = Turns(stale_s=2.0)
    assert turns.ask("gone", 0.0) and not turns.ask("b", 0.1)  # gone 排在前面，之后不再来问（流停止了）
    assert not turns.ask("b", 1.9)
    assert turns.ask("b", 2.5)  # 超过 2 秒没来问的出队
