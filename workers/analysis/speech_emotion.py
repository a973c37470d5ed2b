"""语音情绪：FunASR emotion2vec 适配层（可选扩展 ``pip install .[audio-emotion]``）。

模型从本地目录离线加载（``AUDIO_EMOTION_MODEL``，见 README“语音情绪模型离线安装”），运行时从不下载。
``generate`` 的输出形如 ``[{'labels': ['生气/angry', ...], 'scores': [...]}]``；部分模型版本会把
四个标签换成 ``unuse_*``，这些与 ``<unk>``、``other`` 一样不参与判定。
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .audio import SAMPLE_RATE

IGNORED_LABELS = {"other", "<unk>", "unk", "unknown"}
# 少于该时长的片段不分类（emotion2vec 对极短语音没有意义）
MIN_CLIP_S = 1.0


class SpeechEmotionError(RuntimeError):
    """语音情绪模型无法加载（缺依赖或模型目录），消息说明如何解决。"""


class GenerateModel(Protocol):
    def generate(self, input: Any, **kwargs: Any) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class SpeechEmotion:
    dominant: str
    confidence: float
    scores: dict[str, float]


def english_label(label: str) -> str:
    """``'生气/angry'`` -> ``'angry'``；没有斜杠时原样（小写）。"""
    return label.rsplit("/", 1)[-1].strip().lower()


def parse_generate_output(result: Sequence[dict[str, Any]]) -> SpeechEmotion | None:
    """把 ``generate`` 的输出变成主导情绪；没有可用标签时 None。"""
    if not result:
        return None
    item = result[0]
    scores: dict[str, float] = {}
    for label, score in zip(item.get("labels", []), item.get("scores", [])):
        name = english_label(str(label))
        if name in IGNORED_LABELS or name.startswith("unuse"):
            continue
        scores[name] = round(float(score), 4)
    if not scores:
        return None
    dominant = max(scores, key=scores.__getitem__)
    return SpeechEmotion(dominant=dominant, confidence=scores[dominant], scores=scores)


class Emotion2vec:
    """包装任何带 ``generate`` 方法的 emotion2vec 模型对象（真实的 funasr ``AutoModel`` 或测试替身）。"""

    def __init__(self, model: GenerateModel) -> None:
        self.model = model

    @classmethod
    def load(cls, model_dir: str) -> Emotion2vec:
        path = Path(model_dir)
        if not (path / "model.pt").is_file() and not (path / "configuration.json").is_file():
            raise SpeechEmotionError(
                f"AUDIO_EMOTION_MODEL={model_dir} 不是 emotion2vec 模型目录（应含 model.pt 与 configuration.json），"
                "离线安装步骤见 README“语音情绪模型离线安装”"
            )
        try:
            from funasr import AutoModel
        except ImportError as exc:
            raise SpeechEmotionError("未安装 funasr：请 pip install '.[audio-emotion]'（见 README）") from exc
        return cls(AutoModel(model=str(path), disable_update=True, device="cpu"))

    def classify(self, pcm: np.ndarray) -> SpeechEmotion | None:
        """16 kHz 单声道 int16 PCM 片段 -> 主导情绪；片段太短时 None。"""
        if len(pcm) < MIN_CLIP_S * SAMPLE_RATE:
            return None
        wav = np.asarray(pcm, dtype=np.float32) / 32768.0
        result = self.model.generate(wav, fs=SAMPLE_RATE, granularity="utterance", extract_embedding=False)
        return parse_generate_output(result)
