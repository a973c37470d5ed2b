"""负载均衡规则（纯函数）：本周期认领几条无主流、是否交出一条。

目标是各进程负载接近：只在自己的负载低于平均目标 ceil(总流数 / 进程数)，或不超过“其他有空位进程的最小负载 + 1”时认领；
负载高于平均目标且有别的进程低于目标、还有空位时交出一条。按实测算力认领：自己再加一路就会降级、而别的进程还有余量时不认领
（都没有余量时仍按平均目标认领，由各进程一起降低分析帧率，见 ``pipeline.pacing``；别的进程都已到目标或满员时接下其余的）。
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PeerLoad:
    load: int
    capacity: int
    headroom: float | None = None  # 实测余量（``AnalysisPacer.headroom``）；还没测到时 None

    @property
    def can_take_more(self) -> bool:
        return self.load < self.capacity and (self.headroom is None or self.headroom > 0)


def plan_claims(
    unowned: int, my_load: int, capacity: int, total_desired: int, peers: list[PeerLoad], fits_one_more: bool = True
) -> int:
    """本周期最多认领几条流（纯函数）。

    ``peers`` 为其他存活工作进程。目标是各进程负载接近：
    - 不超过自身剩余容量与无主流数；
    - 可以补到平均目标 ceil(总流数 / 进程数)；
    - 或补到“其他有空位进程的最小负载 + 1”（容量不均时保证无主流终会被认领）；
    - ``fits_one_more`` 为 False（再加一路就会降级）而别的进程还有空位与余量时不认领。
    """
    room = min(capacity - my_load, unowned)
    if room <= 0:
        return 0
    if not fits_one_more and any(p.can_take_more for p in peers):
        return 0
    open_peers = [p.load for p in peers if p.can_take_more]
    target = math.ceil(total_desired / (len(peers) + 1))
    if not open_peers:
        # 谁都没有余量（一起降级）：仍按平均目标认领，剩下的由低于目标的进程认领；否则先看到无主流的进程全部接下，
        # 之后再一条条交出，流在过载时于进程之间来回移动（实测 2 倍过载时有一路在测量窗口里换了进程、分析帧率为 0）
        others_below = any(p.load < min(target, p.capacity) for p in peers)
        return min(room, max(0, target - my_load)) if others_below else room
    allowance = max(target - my_load, min(open_peers) + 1 - my_load)
    return max(0, min(room, allowance))


def plan_release(my_load: int, total_desired: int, peers: list[PeerLoad]) -> int:
    """本周期应交出几条流（0 或 1，纯函数）：自己高于平均目标 ceil(总流数 / 进程数)，
    且有别的进程低于目标并有空位时交出一条（例如进程被杀、重启后，接管了全部流的进程把一半还回去）。
    一次只交一条，由调用方限速，避免依据过期的对方负载交出过多。"""
    if not peers:
        return 0
    target = math.ceil(total_desired / (len(peers) + 1))
    if my_load <= target:
        return 0
    return 1 if any(p.load < target and p.load < p.capacity for p in peers) else 0
