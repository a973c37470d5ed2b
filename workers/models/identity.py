"""人脸描述子服务：dlib 的 ResNet 描述子（``face_recognition_models`` 包的 ``dlib_face_recognition_resnet_model_v1.dat``）
在一个子进程里计算。

每张脸约 100 ms（单核），而且 dlib 计算时不释放 GIL（实测同进程里另一个线程只剩约一成的进度）：放在工作进程的线程里会让
拉流与分析线程每次停顿 100 ms，所以放进子进程，工作进程只把分析线程对齐好的 150x150 人脸（:func:`..analysis.identity.face_chip`）
经管道送过去（子进程用 spawn 启动：不继承工作进程的线程与模型）。请求有界排队（满了丢弃新的请求，下一次到点再取），
等待结果有超时；子进程退出或超时则按退避重启，重启次数有上限，超过后身份比对停用（其余分析照常，事件里
``face.identity_distance`` 一直是 null）。

算力有上限（``budget_cores``，令牌桶：每秒攒这么多秒的计算时间，每个描述子按子进程实测的 CPU 时间扣；
按墙钟扣的话机器一忙，排队等 CPU 的时间也算进去，预算就缩到名义的几分之一）：超出时 ``submit`` 拒绝，
那一路下一帧再试。所以一个进程的流多了，每路的比对间隔会拉长（而不是挤占分析）：``间隔 ≈ 路数 × 0.1 秒 / budget_cores``。
等着比对的各路按先来后到轮流（:class:`Turns`）：否则令牌攒够的那一刻总是相位上最先被分析的那一路抢到，
一路一直对不上（1 秒复查一次）的流能让同一进程里另一路永远登记不上。

    >>> service = IdentityService()
    >>> service.start()
    >>> if service.available("exam-a-user-1"):   # 轮到这一路且预算够
    ...     service.submit(chip, lambda descriptor: ..., "exam-a-user-1")  # 回调在服务线程里调用；失败时 None
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

import numpy as np

from shared.retry import Backoff

log = logging.getLogger(__name__)

Callback = Callable[[np.ndarray | None], None]


class FaceDescriber:
    """进程内的描述子模型：``describe(chip)`` -> 128 维 float32（计算期间占着 GIL；工作进程里只在子进程中使用）。"""

    def __init__(self) -> None:
        import dlib
        import face_recognition_models

        self._model = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())

    def describe(self, chip: np.ndarray) -> np.ndarray:
        return np.asarray(self._model.compute_face_descriptor(np.ascontiguousarray(chip)), np.float32)


def serve(conn: Connection) -> None:
    """子进程：载入模型，逐个计算描述子并回 ``(描述子, CPU 秒)``，直到管道关闭（停止由父进程负责：终端的 Ctrl-C
    发给整个进程组，这里忽略）。"""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    describer = FaceDescriber()
    conn.send("ready")
    while True:
        try:
            chip = conn.recv()
        except EOFError:
            return
        started = time.process_time()  # 子进程所有线程的 CPU 时间
        descriptor = describer.describe(chip)
        conn.send((descriptor, time.process_time() - started))


class Turns:
    """先来后到的轮次：想提交的各路按第一次来问的先后排队，只有排在最前的那一路能提交；提交了就出队。
    超过 ``stale_s`` 没再来问的一路移出队列（那一路已停止，或此刻不再需要比对），不挡住后面的。

    >>> turns.ask("a", now)   # True：轮到 a
    >>> turns.served("a")
    """

    def __init__(self, stale_s: float = 2.0) -> None:
        self.stale_s = stale_s
        self._asked: dict[str, float] = {}  # 按入队先后：谁 -> 最近一次来问的时刻

    def ask(self, who: str, now: float) -> bool:
        self._asked[who] = now  # 已在队中时位置不变
        for key in [k for k, at in self._asked.items() if now - at > self.stale_s]:
            del self._asked[key]
        return next(iter(self._asked)) == who

    def served(self, who: str) -> None:
        self._asked.pop(who, None)


class IdentityService:
    LOAD_TIMEOUT_S = 30.0
    RESULT_TIMEOUT_S = 2.0  # 一个描述子约 0.1 s；CPU 被占满时也不该超过这么久
    MAX_RESTARTS = 5

    def __init__(self, enabled: bool = True, budget_cores: float = 0.05, queue_size: int = 4) -> None:
        self.enabled = enabled
        self.budget_cores = budget_cores
        self._lock = threading.Lock()
        self._cost_s = 0.1  # 每个描述子的 CPU 时间（实测后更新）
        self._tokens_s = 0.0  # 攒下的计算时间
        self._turns = Turns()
        self._tokens_at = time.monotonic()
        self._jobs: queue.Queue[tuple[np.ndarray, Callback]] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self.ready = False
        self.restarts = 0

    def start(self) -> None:
        if not self.enabled:
            log.info("identity checks disabled (IDENTITY_CHECK_S=0)")
            return
        self._thread = threading.Thread(target=self._run, name="identity", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(3.0)
        self._close()

    def available(self, who: str) -> bool:
        """``who``（一路流）现在提交会不会被接受：已就绪、轮到它且预算够。分析线程在这一路需要比对时先问这个，
        再去对齐人脸；问过就算排了队。"""
        if not self.ready:
            return False
        with self._lock:
            turn = self._turns.ask(who, time.monotonic())
            return turn and self._refill() >= self._cost_s

    def _refill(self) -> float:
        now = time.monotonic()
        cap = 2 * self._cost_s  # 至多攒两个描述子的时间：空闲久了也不会一下子涌进一大批
        self._tokens_s = min(cap, self._tokens_s + (now - self._tokens_at) * self.budget_cores)
        self._tokens_at = now
        return self._tokens_s

    def submit(self, chip: np.ndarray, callback: Callback, who: str = "") -> bool:
        """排队 ``who`` 的一张人脸；服务未就绪、没轮到它、超出预算或队列满时返回 False。"""
        if not self.ready:
            return False
        with self._lock:
            if not self._turns.ask(who, time.monotonic()) or self._refill() < self._cost_s:
                return False
            try:
                self._jobs.put_nowait((chip, callback))
            except queue.Full:
                return False
            self._tokens_s -= self._cost_s
            self._turns.served(who)
            return True

    def _run(self) -> None:
        backoff = Backoff(base_s=1.0, cap_s=30.0)
        starts = 0
        while not self._stop.is_set():
            if self._conn is None:
                if starts > self.MAX_RESTARTS:
                    log.error("identity checks stopped after %d restarts of the identity process", self.MAX_RESTARTS)
                    return
                self.restarts, starts = starts, starts + 1
                if not self._spawn():
                    self._stop.wait(backoff.failed())
                    continue
            try:
                chip, callback = self._jobs.get(timeout=0.5)
            except queue.Empty:
                continue
            descriptor, cpu_s = self._describe(chip)
            if cpu_s is not None:
                with self._lock:
                    self._cost_s = 0.8 * self._cost_s + 0.2 * cpu_s
            if descriptor is None:
                self._stop.wait(backoff.failed())
            else:
                backoff.succeeded()
            callback(descriptor)

    def _spawn(self) -> bool:
        self._close()
        parent, child = multiprocessing.get_context("spawn").Pipe()
        process = multiprocessing.get_context("spawn").Process(target=serve, args=(child,), name="identity", daemon=True)
        process.start()
        child.close()
        self._process, self._conn = process, parent
        if parent.poll(self.LOAD_TIMEOUT_S) and parent.recv() == "ready":
            self.ready = True
            log.info("identity model loaded (pid %s)", process.pid)
            return True
        log.error("identity model did not load within %.0f s", self.LOAD_TIMEOUT_S)
        self._close()
        return False

    def _describe(self, chip: np.ndarray) -> tuple[np.ndarray | None, float | None]:
        """(描述子, 子进程用的 CPU 秒)；失败时 (None, None)。"""
        assert self._conn is not None
        try:
            self._conn.send(chip)
            if self._conn.poll(self.RESULT_TIMEOUT_S):
                descriptor, cpu_s = self._conn.recv()
                return np.asarray(descriptor), float(cpu_s)
            log.warning("identity descriptor timed out; restarting the identity process")
        except (EOFError, OSError) as exc:
            log.warning("identity process failed (%s); restarting it", exc)
        self._close()
        return None, None

    def _close(self) -> None:
        self.ready = False
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.terminate()
            self._process.join(2.0)
            self._process = None
