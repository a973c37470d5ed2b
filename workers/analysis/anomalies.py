"""异常事件：带起止滞回的状态机，严重度随持续时间增长，并记录完整的事件段（供会话报告使用）。"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from shared.risk import HALF_LIFE_S, Risk, RiskEvent, risk_score

SEVERITIES = ("low", "medium", "high")


@dataclass(frozen=True)
class AnomalyPolicy:
    """``onset_s``：条件持续多久才算发生；``offset_s``：条件消失多久才算结束；
    持续超过 ``medium_s`` / ``high_s`` 时严重度升为 medium / high。"""

    onset_s: float
    offset_s: float = 1.5
    medium_s: float = 5.0
    high_s: float = 15.0

    def severity(self, duration_s: float) -> str:
        if duration_s >= self.high_s:
            return "high"
        if duration_s >= self.medium_s:
            return "medium"
        return "low"


DEFAULT_POLICIES = {
    "NO_FACE": AnomalyPolicy(onset_s=2.0),
    "MULTI_FACE": AnomalyPolicy(onset_s=1.0),
    "LOOK_AWAY": AnomalyPolicy(onset_s=3.0),
    "LOOKING_DOWN": AnomalyPolicy(onset_s=3.0),
    "OCCLUSION": AnomalyPolicy(onset_s=2.0),
    "TALKING": AnomalyPolicy(onset_s=0.5, offset_s=2.0),
    # 一次比对不符后 1 秒再比一次：两次都不符（条件持续 2 秒）才报告
    "IDENTITY_CHANGED": AnomalyPolicy(onset_s=2.0),
}


@dataclass(frozen=True)
class ActiveAnomaly:
    code: str
    severity: str
    duration_ms: int


@dataclass
class Episode:
    code: str
    start: float
    end: float | None = None
    peak_severity: str = "low"


@dataclass
class _State:
    true_since: float | None = None  # 条件连续为真的起点
    false_since: float | None = None  # 活跃期间条件连续为假的起点
    episode: Episode | None = None


@dataclass
class AnomalyTracker:
    RECENT_S = 10 * HALF_LIFE_S  # 结束超过这么久的事件段对风险分的贡献已不到 1/1000

    policies: dict[str, AnomalyPolicy] = field(default_factory=lambda: dict(DEFAULT_POLICIES))
    episodes: list[Episode] = field(default_factory=list)
    _states: dict[str, _State] = field(default_factory=dict)
    _recent: deque[Episode] = field(default_factory=lambda: deque(maxlen=64))  # 最近结束的事件段（风险分用）

    def update(self, conditions: dict[str, bool | None], t: float) -> list[ActiveAnomaly]:
        """``conditions[code]``：此刻条件是否成立；None 表示无法判断（保持原状态）。"""
        for code, value in conditions.items():
            if value is None or code not in self.policies:
                continue
            policy = self.policies[code]
            st = self._states.setdefault(code, _State())
            if value:
                st.false_since = None
                if st.true_since is None:
                    st.true_since = t
                if st.episode is None and t - st.true_since >= policy.onset_s:
                    st.episode = Episode(code=code, start=st.true_since)
                    self.episodes.append(st.episode)
            else:
                st.true_since = None if st.episode is None else st.true_since
                if st.episode is not None:
                    if st.false_since is None:
                        st.false_since = t
                    if t - st.false_since >= policy.offset_s:
                        st.episode.end = st.false_since
                        self._recent.append(st.episode)
                        st.episode = None
                        st.true_since = None
                        st.false_since = None
        return self.active(t)

    def pop_finished(self) -> list[Episode]:
        """取出已结束的事件段（供写入会话汇总）；进行中的留在原处。"""
        done = [e for e in self.episodes if e.end is not None]
        if done:
            self.episodes = [e for e in self.episodes if e.end is None]
        return done

    def close_all(self, t: float) -> list[Episode]:
        """流停止时：把进行中的事件段在 ``t`` 结束，连同已结束的一起取出，状态清零。"""
        self.active(t)  # 更新峰值严重度
        for st in self._states.values():
            if st.episode is not None:
                st.episode.end = t
        self._states.clear()
        return self.pop_finished()

    def risk(self, t: float) -> Risk:
        """此刻的风险分：进行中的事件段，加上最近结束、按半衰期衰减的（见 :mod:`shared.risk`）。"""
        events = [RiskEvent(a.code, a.severity, a.duration_ms / 1000.0) for a in self.active(t)]
        for ep in self._recent:
            assert ep.end is not None
            if t - ep.end <= self.RECENT_S:
                events.append(RiskEvent(ep.code, ep.peak_severity, ep.end - ep.start, ended_ago_s=t - ep.end))
        return risk_score(events)

    def active(self, t: float) -> list[ActiveAnomaly]:
        out = []
        for code, st in self._states.items():
            ep = st.episode
            if ep is None:
                continue
            duration = t - ep.start
            severity = self.policies[code].severity(duration)
            if SEVERITIES.index(severity) > SEVERITIES.index(ep.peak_severity):
                ep.peak_severity = severity
            out.append(ActiveAnomaly(code=code, severity=severity, duration_ms=int(duration * 1000)))
        return sorted(out, key=lambda a: a.code)
