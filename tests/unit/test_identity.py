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
