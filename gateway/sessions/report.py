"""由会话记录与 Redis 中的汇总数据组装会话报告（纯函数，不做 I/O）。"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import cast

from shared.api import (
    AnomalyEpisode,
    HeartRateSummary,
    IdentityReference,
    MediaSummary,
    SessionInfo,
    SessionReport,
    SessionStatus,
    StateTransition,
    Viewer,
)
from shared.keys import as_text
from shared.messages import iso_utc
from shared.risk import RiskEvent, risk_score


def _ratio(numerator: float, denominator: float, digits: int = 3) -> float | None:
    return round(numerator / denominator, digits) if denominator > 0 else None


def current_status(info: SessionInfo, aggregate: dict) -> SessionStatus:
    """会话记录只在创建与结束时写入；其间的媒体状态（STREAMING / DEGRADED）由工作进程写在汇总里。"""
    if info.status == "ENDED":
        return "ENDED"
    state = aggregate.get("state")
    # 汇总里的值是工作进程写的字符串；SessionReport 构造时由 pydantic 校验它是否为合法状态
    return cast(SessionStatus, as_text(state)) if state else info.status


def build_report(
    info: SessionInfo,
    aggregate: dict,
    episodes: list[bytes | str],
    transitions: list[bytes | str],
    viewers: Sequence[bytes | str] = (),
) -> SessionReport:
    raw = {as_text(k): as_text(v) for k, v in aggregate.items()}
    nums = {k: float(v) for k, v in raw.items() if k != "state"}
    emotion_total = sum(v for k, v in nums.items() if k.startswith("emotion:"))
    hr_s = nums.get("hr_s", 0.0)
    changes = [StateTransition(**_transition(json.loads(t))) for t in transitions]
    started = next((t.at for t in changes if t.state == "STREAMING"), None)
    anomalies = sorted((AnomalyEpisode.model_validate_json(e) for e in episodes), key=lambda e: e.start)
    return SessionReport(
        session_id=info.session_id,
        stream_name=info.stream_name,
        status=current_status(info, raw),
        final=info.status == "ENDED",
        created_at=info.created_at,
        started_at=started,
        ended_at=info.ended_at,
        end_reason=info.end_reason,
        streaming_seconds=round(nums.get("analyzed_s", 0.0), 1),
        face_present_seconds=round(nums.get("face_s", 0.0), 1),
        attention_mean=_ratio(nums.get("attention_weighted", 0.0), nums.get("attention_s", 0.0)),
        look_away_seconds=round(nums.get("look_away_s", 0.0), 1),
        looking_down_seconds=round(nums.get("looking_down_s", 0.0), 1),
        talking_seconds=round(nums.get("talking_s", 0.0), 1),
        multi_face_seconds=round(nums.get("multi_face_s", 0.0), 1),
        identity_held=_identity_held(nums, anomalies),
        identity_reference=_identity_reference(nums),
        emotion_distribution={
            k.removeprefix("emotion:"): round(v / emotion_total, 3)
            for k, v in sorted(nums.items())
            if k.startswith("emotion:") and emotion_total > 0
        },
        heart_rate=HeartRateSummary(
            mean_bpm=_ratio(nums.get("hr_weighted", 0.0), hr_s, 1),
            min_bpm=nums.get("hr_min"),
            max_bpm=nums.get("hr_max"),
            quality_mean=_ratio(nums.get("hr_quality_weighted", 0.0), hr_s),
            seconds_with_hr=round(hr_s, 1),
        ),
        anomalies=anomalies,
        risk=risk_score((RiskEvent(e.code, e.peak_severity, e.duration_s) for e in anomalies), decay=False),
        media=MediaSummary(
            reconnects=int(nums.get("reconnects", 0)),
            dropped_frames=int(nums.get("dropped_frames", 0)),
            degraded_episodes=sum(t.state == "DEGRADED" for t in changes),
        ),
        transitions=changes,
        viewers=sorted((Viewer.model_validate_json(v) for v in viewers), key=lambda v: (v.first_at, v.teacher)),
    )


def _identity_held(nums: dict[str, float], anomalies: list[AnomalyEpisode]) -> bool | None:
    if nums.get("identity_checked_s", 0.0) <= 0:
        return None
    return nums.get("identity_changed_s", 0.0) <= 0 and not any(e.code == "IDENTITY_CHANGED" for e in anomalies)


def _identity_reference(nums: dict[str, float]) -> IdentityReference | None:
    if nums.get("identity_photo_s", 0.0) > 0:
        return "photo"
    if nums.get("identity_photo_unusable_s", 0.0) > 0:
        return "photo_unusable"
    return "session_start" if nums.get("identity_checked_s", 0.0) > 0 else None


def _transition(item: dict) -> dict:
    return {"state": item["state"], "at": iso_utc(item["at_ms"] / 1000.0), "reason": item["reason"]}
