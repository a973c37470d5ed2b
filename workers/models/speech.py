"""工作进程内的语音情绪（可选）：配置了 ``AUDIO_EMOTION_MODEL`` 时在后台线程加载 emotion2vec，
并在同一线程里逐段分类（有界队列，来不及时丢弃新片段，绝不阻塞分析线程）。"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

import numpy as np

from ..analysis.speech_emotion import Emotion2vec, SpeechEmotion

log = logging.getLogger(__name__)

Callback = Callable[[SpeechEmotion | None], None]


class SpeechEmotionService:
    def __init__(
        self, model_dir: str | None, loader: Callable[[str], Emotion2vec] = Emotion2vec.load, queue_size: int = 8
    ) -> None:
        self.model_dir = model_dir
        self.loader = loader
        self.model: Emotion2vec | None = None
        self.error: str | None = None
        self._jobs: queue.Queue[tuple[np.ndarray, Callback]] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.model_dir:
            log.info("speech emotion disabled (AUDIO_EMOTION_MODEL not set)")
            return
        self._thread = threading.Thread(target=self._run, name="speech-emotion", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

    @property
    def ready(self) -> bool:
        return self.model is not None

    def submit(self, pcm: np.ndarray, callback: Callback) -> bool:
        """排队一个片段；队列满或模型未就绪时返回 False。"""
        if self.model is None:
            return False
        try:
            self._jobs.put_nowait((pcm, callback))
            return True
        except queue.Full:
            return False

    def _run(self) -> None:
        assert self.model_dir is not None
        try:
            model = self.loader(self.model_dir)
        except Exception as exc:  # noqa: BLE001 - 语音情绪不可用时其余分析照常
            self.error = str(exc)
            log.error("speech emotion model failed to load: %s", exc)
            return
        self.model = model
        log.info("speech emotion model loaded from %s", self.model_dir)
        while not self._stop.is_set():
            try:
                pcm, callback = self._jobs.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                callback(model.classify(pcm))
            except Exception:  # noqa: BLE001 - 单个片段失败不影响后续
                log.exception("speech emotion classification failed")
