"""SDP 的最小解析（纯函数）：校验学生端的 offer，生成 WHIP trickle ICE 用的 SDP 片段（RFC 8840）。

只做中继需要的事：统计媒体段、取 ICE 凭据与各段的 mid；不改写 SDP 内容。
"""

from __future__ import annotations

from shared.api import OfferSummary


class OfferRejected(ValueError):
    """offer 不符合要求（原因为中文说明）。"""


def parse_offer(sdp: str, max_bytes: int) -> OfferSummary:
    """校验 offer：大小上限、必须是 SDP、恰好 1 个视频段、至多 1 个音频段、没有其他段、带 ICE 凭据。"""
    size = len(sdp.encode())
    if size > max_bytes:
        raise OfferRejected(f"SDP 过大（{size} 字节，上限 {max_bytes}）")
    lines = [line.strip() for line in sdp.splitlines() if line.strip()]
    if not lines or lines[0] != "v=0":
        raise OfferRejected("不是 SDP offer（应以 v=0 开头）")
    kinds: list[str] = []
    mids: list[str] = []
    ufrag = pwd = ""
    for line in lines:
        if line.startswith("m="):
            kinds.append(line[2:].split(" ", 1)[0])
            mids.append(str(len(kinds) - 1))
        elif line.startswith("a=mid:") and kinds:
            mids[-1] = line[len("a=mid:") :]
        elif line.startswith("a=ice-ufrag:") and not ufrag:
            ufrag = line[len("a=ice-ufrag:") :]
        elif line.startswith("a=ice-pwd:") and not pwd:
            pwd = line[len("a=ice-pwd:") :]
    video, audio = kinds.count("video"), kinds.count("audio")
    others = sorted(set(kinds) - {"video", "audio"})
    if video != 1 or audio > 1 or others:
        raise OfferRejected(
            f"只接受 1 路视频 + 至多 1 路音频（收到 视频 {video}、音频 {audio}"
            + (f"、其他 {','.join(others)}" if others else "")
            + "）"
        )
    if not ufrag or not pwd:
        raise OfferRejected("SDP 缺少 a=ice-ufrag / a=ice-pwd")
    return OfferSummary(kinds=kinds, mids=mids, ice_ufrag=ufrag, ice_pwd=pwd)


def ice_fragment(offer: OfferSummary, candidate: str, sdp_mid: str | None, sdp_mline_index: int | None) -> str:
    """一个 ICE 候选 -> ``application/trickle-ice-sdpfrag`` 片段。

    MediaMTX 要求片段中的 mid 是数字（媒体段序号），所以按 mid 或 m 行序号找到对应段后写它的序号。"""
    if sdp_mid is not None and sdp_mid in offer.mids:
        index = offer.mids.index(sdp_mid)
    elif sdp_mline_index is not None and 0 <= sdp_mline_index < len(offer.kinds):
        index = sdp_mline_index
    else:
        raise OfferRejected(f"候选所属的媒体段不存在（sdpMid={sdp_mid!r}, sdpMLineIndex={sdp_mline_index!r}）")
    line = candidate.strip()
    if line.startswith("a="):
        line = line[2:]
    if not line.startswith("candidate:") or "\n" in line or "\r" in line:
        raise OfferRejected("candidate 应为一行 candidate:...")
    return (
        f"a=ice-ufrag:{offer.ice_ufrag}\r\n"
        f"a=ice-pwd:{offer.ice_pwd}\r\n"
        f"m={offer.kinds[index]} 9 UDP/TLS/RTP/SAVPF 0\r\n"
        f"a=mid:{index}\r\n"
        f"a={line}\r\n"
    )
