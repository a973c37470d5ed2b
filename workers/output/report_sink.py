"""把会话汇总增量原子地并入 Redis（一个 Lua 脚本：累加、心率极值、追加事件段与时间序列、记录状态变化）。"""

from __future__ import annotations

import json

import redis

from shared.keys import HISTORY_MAXLEN, RedisKeys

from .aggregate import Deltas

# KEYS: 汇总哈希、事件段列表、状态变化列表、时间序列列表
# ARGV: 状态（'' 不变）、原因、hr_min（'' 无）、hr_max、累加项个数 n、事件段条数 e、时间序列保留的行数、
#       n 对 (名称, 增量)、e 条事件段 JSON、其余每个参数一行时间序列 JSON
_FLUSH = """
local agg, eps, trans, hist = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local n, e, keep = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
for i = 0, n - 1 do
  redis.call('HINCRBYFLOAT', agg, ARGV[8 + 2 * i], ARGV[9 + 2 * i])
end
if ARGV[3] ~= '' then
  local cur = redis.call('HGET', agg, 'hr_min')
  if not cur or tonumber(ARGV[3]) < tonumber(cur) then redis.call('HSET', agg, 'hr_min', ARGV[3]) end
  cur = redis.call('HGET', agg, 'hr_max')
  if not cur or tonumber(ARGV[4]) > tonumber(cur) then redis.call('HSET', agg, 'hr_max', ARGV[4]) end
end
local first = 8 + 2 * n
for i = first, first + e - 1 do
  redis.call('RPUSH', eps, ARGV[i])
end
for i = first + e, #ARGV do
  redis.call('RPUSH', hist, ARGV[i])
end
if #ARGV >= first + e then redis.call('LTRIM', hist, -keep, -1) end
if ARGV[1] ~= '' and redis.call('HGET', agg, 'state') ~= ARGV[1] then
  local t = redis.call('TIME')
  local at_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('HSET', agg, 'state', ARGV[1])
  redis.call('RPUSH', trans, cjson.encode({state = ARGV[1], at_ms = at_ms, reason = ARGV[2]}))
  return 1
end
return 0
"""


class SessionSink:
    def __init__(self, client: redis.Redis, keys: RedisKeys) -> None:
        self.keys = keys
        self._flush = client.register_script(_FLUSH)

    def flush(self, session_id: str, deltas: Deltas, state: str | None = None, reason: str = "") -> bool:
        """写入一次增量；``state``（STREAMING / DEGRADED）与当前不同时记录一次状态变化并返回 True。"""
        if deltas.empty and state is None:
            return False
        args: list[str | float] = [
            state or "", reason, _num(deltas.hr_min), _num(deltas.hr_max), len(deltas.sums), len(deltas.episodes),
            HISTORY_MAXLEN,
        ]
        for name, value in deltas.sums.items():
            args += [name, repr(round(value, 4))]
        args += [json.dumps(e, ensure_ascii=False) for e in deltas.episodes]
        args += [json.dumps(row, separators=(",", ":")) for row in deltas.samples]
        k = self.keys
        keys = [k.aggregate(session_id), k.episodes(session_id), k.transitions(session_id), k.history(session_id)]
        return bool(self._flush(keys=keys, args=args))


def _num(value: float | None) -> str:
    return "" if value is None else repr(round(value, 1))
