"""工作进程内的情绪模型：启动时同步检查配置（显式 deepface 缺权重立即失败），后台线程加载模型并做一次推理
（TensorFlow 导入与构图约需数秒），工作进程等它完成再认领流（见 workers/process.py）；没有模型时情绪字段为 null。"""

from __future__ import annotations

import logging
import threading

import numpy as np

from ..analysis.emotion import EmotionBackendError, EmotionModel, deepface_weights_path, select_backend

log = logging.getLogger(__name__)


class EmotionService:
    def __init__(self, backend: str, deepface_home: str | None = None) -> None:
        self.backend = backend
        self.deepface_home = deepface_home
        self.model: EmotionModel | None = None
        self.error: str | None = None
        if backend not in ("auto", "deepface", "fer", "none"):
            raise EmotionBackendError(f"未知的 EMOTION_BACKEND={backend!r}（可选 auto / deepface / fer / none）")
        if backend == "deepface" and not deepface_weights_path(deepface_home).is_file():
            select_backend(backend, deepface_home)  # 抛出说明权重应放在哪里的错误：进程启动即失败
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.backend == "none":
            return
        self._thread = threading.Thread(target=self._load, name="emotion-loader", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        try:
            model = select_backend(self.backend, self.deepface_home)
            # 第一次推理要构建 tf.function 的图（数秒，占着 GIL）：在这里做掉，不让它卡住已经在分析的流
            model.predict(np.zeros((1, model.input_size, model.input_size), np.uint8))
            self.model = model
        except Exception as exc:  # noqa: BLE001 - 情绪不可用时其余分析照常
            self.error = str(exc)
            log.error("emotion backend failed to load: %s", exc)

    def wait(self, timeout: float) -> bool:
        """等加载结束（成功或失败）至多 ``timeout`` 秒；返回模型是否可用。"""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.ready

    @property
    def ready(self) -> bool:
        return self.model is not None

    def predict(self, crops: list[np.ndarray]) -> np.ndarray | None:
        if self.model is None or not crops:
            return None
        return self.model.predict(np.stack(crops))
