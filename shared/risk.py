"""风险分：教师墙按它排序（谁现在最需要看一眼），会话报告用同一算法给出整场的复核优先级。只在这里计算。

每个异常事件段贡献 ``类别权重 x 严重度权重 x 时长因子 x 时近因子``，分数 ``100 x (1 - exp(-总贡献 / SCALE))``（0..100）：

- 类别（``KIND_WEIGHT``）：另一个人在场（MULTI_FACE）最重，其次离开座位（NO_FACE）、遮住脸（OCCLUSION）、
  视线偏离（LOOK_AWAY）、说话（TALKING）；
- 严重度（``SEVERITY_WEIGHT``）：low 1、medium 2、high 3（事件段持续 5 秒起 medium、15 秒起 high，见 ``AnomalyPolicy``）；
- 时长因子：``1 + ln(1 + 时长 / 10 秒)``（越久越重，但一段 10 分钟的事件不会压过几段不同的事件）；
- 时近因子：进行中的为 1；已结束的按 ``HALF_LIFE_S``（2 分钟）半衰期衰减（实时排序）；整场报告不衰减。

等级：``>= 60`` high、``>= 30`` medium、``> 0`` low、``0`` none。

用法::

    risk_score([RiskEvent("MULTI_FACE", "medium", 8.0)])               # 进行中的一段
    risk_score([RiskEvent("TALKING", "low", 3.0, ended_ago_s=60.0)])    # 一分钟前结束的一段
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

RiskLevel = Literal["none", "low", "medium", "high"]

KIND_WEIGHT = {
    "IDENTITY_CHANGED": 1.0,
    "MULTI_FACE": 1.0,
    "NO_FACE": 0.8,
    "OCCLUSION": 0.6,
    "LOOKING_DOWN": 0.6,
    "LOOK_AWAY": 0.5,
    "TALKING": 0.4,
}
OTHER_KIND_WEIGHT = 0.5  # 以后新增、这里还没列出的类别
SEVERITY_WEIGHT = {"low": 1.0, "medium": 2.0, "high": 3.0}
DURATION_SCALE_S = 10.0
HALF_LIFE_S = 120.0
SCALE = 3.0  # 总贡献 3（例如一段进行中的 medium 多人约 8 秒）时分数约 63


@dataclass(frozen=True)
class RiskEvent:
    code: str
    severity: str
    duration_s: float
    ended_ago_s: float | None = None  # None：进行中


class Risk(BaseModel):
    score: float = Field(ge=0, le=100, description="0..100，越高越需要关注（算法见 README “风险分”）")
    level: RiskLevel


def contribution(event: RiskEvent, decay: bool = True) -> float:
    kind = KIND_WEIGHT.get(event.code, OTHER_KIND_WEIGHT)
    severity = SEVERITY_WEIGHT.get(event.severity, 1.0)
    length = 1.0 + math.log1p(max(0.0, event.duration_s) / DURATION_SCALE_S)
    recency = 1.0
    if decay and event.ended_ago_s is not None:
        recency = 0.5 ** (max(0.0, event.ended_ago_s) / HALF_LIFE_S)
    return kind * severity * length * recency


def risk_score(events: Iterable[RiskEvent], decay: bool = True) -> Risk:
    """``decay=False``：整场报告（已结束的事件段不衰减）。"""
    total = sum(contribution(e, decay) for e in events)
    score = round(100.0 * (1.0 - math.exp(-total / SCALE)), 1)
    return Risk(score=score, level=risk_level(score))


def risk_level(score: float) -> RiskLevel:
    if score >= 60.0:
        return "high"
    if score >= 30.0:
        return "medium"
    return "low" if score > 0.0 else "none"
