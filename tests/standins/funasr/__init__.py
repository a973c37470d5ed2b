"""FunASR 的替身（stand-in），不是真实模型。

真实的 funasr + emotion2vec 需要 torch 与联网下载的权重，在测试机器上无法运行（见 FACTS.md），
所以端到端测试把本目录放进工作进程的 PYTHONPATH：``from funasr import AutoModel`` 得到这里的
``AutoModel``。它按真实接口校验调用方式（离线目录、16 kHz float32 单声道、utterance 粒度），
并以真实输出的形状返回结果（含 ``unuse_*`` 占位标签）；判定规则只是“片段够响就是 happy”。
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

LABELS = ["生气/angry", "unuse_0", "恐惧/fearful", "开心/happy", "中立/neutral", "其他/other", "难过/sad", "unuse_1", "<unk>"]
STAND_IN = True


class AutoModel:
    """emotion2vec 的替身模型对象。"""

    def __init__(self, model: str, disable_update: bool = False, device: str = "cpu", **_: Any) -> None:
        if not Path(model).is_dir():
            raise FileNotFoundError(model)
        if not disable_update:
            raise AssertionError("离线使用必须 disable_update=True")
        self.calls = 0

    def generate(
        self, input: Any, fs: int = 16000, granularity: str = "utterance", extract_embedding: bool = True, **_: Any
    ) -> list[dict[str, Any]]:
        wav = np.asarray(input)
        assert wav.dtype == np.float32 and wav.ndim == 1, (wav.dtype, wav.shape)
        assert fs == 16000 and granularity == "utterance" and not extract_embedding
        assert len(wav) >= 16000 and np.abs(wav).max() <= 1.0
        self.calls += 1
        loud = float(np.sqrt(np.mean(wav**2))) > 0.01
        scores = np.full(len(LABELS), 0.01)
        scores[LABELS.index("开心/happy" if loud else "中立/neutral")] = 0.92
        return [{"key": "stand_in", "labels": LABELS, "scores": (scores / scores.sum()).tolist()}]
