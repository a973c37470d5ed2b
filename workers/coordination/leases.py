"""流归属在 Redis 里的读写：期望流集合 + 每流一个租约键 + 工作进程心跳与状态。

- 期望运行的流：哈希 ``streams``（网关 rtsp/start 写入、rtsp/stop 删除）；
- 归属：``lease:<stream>`` = 工作进程 ID，``SET NX PX`` 认领，所属进程按周期用 Lua 原子续约；
  进程死亡后租约过期，其他进程在下一个周期接管。任一时刻一个流最多一个所属进程；
- ``holder:<stream>``：最近的所属进程，有效期是租约的 10 倍、随续约延长，主动交出时删除；认领时它还在、又不是自己，
  说明上一个所属进程没有交出就消失了：这次认领是“接管”（指标 ``taken_over``）；
- 负载均衡的规则在 ``balance``（纯函数），每个周期的流程在 ``assigner``。
"""

from __future__ import annotations

import redis

from shared.api import ConsumerStatus, StreamJob, WorkerStatus
from shared.keys import RedisKeys, as_text

_RENEW = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('pexpire', KEYS[2], ARGV[2] * HOLDER_TTL_FACTOR)
return redis.call('pexpire', KEYS[1], ARGV[2])
"""
_RELEASE = """
if redis.call('get', KEYS[2]) == ARGV[1] then redis.call('del', KEYS[2]) end
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""
HOLDER_TTL_FACTOR = 10


class Leases:
    """工作进程一侧的 Redis 操作（同步客户端，全部带超时）。"""

    def __init__(self, client: redis.Redis, keys: RedisKeys, worker_id: str, lease_ttl_ms: int) -> None:
        self.r = client
        self.keys = keys
        self.worker_id = worker_id
        self.lease_ttl_ms = lease_ttl_ms
        self._renew = client.register_script(_RENEW.replace("HOLDER_TTL_FACTOR", str(HOLDER_TTL_FACTOR)))
        self._release = client.register_script(_RELEASE)

    def server_time_ms(self) -> int:
        seconds, micros = self.r.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def desired(self) -> dict[str, StreamJob]:
        raw = self.r.hgetall(self.keys.streams)
        return {as_text(k): StreamJob.model_validate_json(v) for k, v in raw.items()}

    def owners(self, names: list[str]) -> dict[str, str | None]:
        if not names:
            return {}
        values = self.r.mget([self.keys.lease(n) for n in names])
        return {n: (as_text(v) if v is not None else None) for n, v in zip(names, values)}

    def try_claim(self, name: str) -> str | None:
        """认领无主的流：没拿到时 None；拿到时 ``claimed``，或上一个所属进程没有交出就消失时 ``taken_over``。"""
        if not self.r.set(self.keys.lease(name), self.worker_id, nx=True, px=self.lease_ttl_ms):
            return None
        previous = self.r.set(self.keys.holder(name), self.worker_id, px=self.lease_ttl_ms * HOLDER_TTL_FACTOR, get=True)
        return "taken_over" if previous is not None and as_text(previous) != self.worker_id else "claimed"

    def renew(self, names: list[str]) -> set[str]:
        """续约自己持有的租约，返回已失去的流。"""
        if not names:
            return set()
        pipe = self.r.pipeline(transaction=False)
        for name in names:
            keys = [self.keys.lease(name), self.keys.holder(name)]
            self._renew(keys=keys, args=[self.worker_id, self.lease_ttl_ms], client=pipe)
        results = pipe.execute()
        return {name for name, ok in zip(names, results) if not ok}

    def release(self, name: str) -> None:
        self._release(keys=[self.keys.lease(name), self.keys.holder(name)], args=[self.worker_id])
        self.r.delete(self.keys.stream_status(name))

    def heartbeat(self, status: WorkerStatus, now_ms: int) -> list[WorkerStatus]:
        """写入本进程心跳，清理过期进程，返回其他存活进程的状态。"""
        pipe = self.r.pipeline(transaction=False)
        pipe.set(self.keys.worker(self.worker_id), status.model_dump_json(), px=self.lease_ttl_ms)
        pipe.zadd(self.keys.workers, {self.worker_id: now_ms})
        pipe.zremrangebyscore(self.keys.workers, "-inf", now_ms - self.lease_ttl_ms)
        pipe.zrange(self.keys.workers, 0, -1)
        ids = [i for i in map(as_text, pipe.execute()[-1]) if i != self.worker_id]
        if not ids:
            return []
        raw = self.r.mget([self.keys.worker(i) for i in ids])
        return [WorkerStatus.model_validate_json(v) for v in raw if v is not None]

    def update_status(self, status: WorkerStatus) -> None:
        """本周期交出/认领了流之后立即刷新自身状态，使 rtsp/status 里的归属不滞后一个周期。"""
        self.r.set(self.keys.worker(self.worker_id), status.model_dump_json(), px=self.lease_ttl_ms)

    def publish_status(self, statuses: list[ConsumerStatus]) -> None:
        if not statuses:
            return
        pipe = self.r.pipeline(transaction=False)
        for st in statuses:
            pipe.set(self.keys.stream_status(st.stream_name), st.model_dump_json(), px=self.lease_ttl_ms)
        pipe.execute()

    def leave(self) -> None:
        self.r.zrem(self.keys.workers, self.worker_id)
        self.r.delete(self.keys.worker(self.worker_id))
