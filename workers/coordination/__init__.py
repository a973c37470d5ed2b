"""流的归属协调：Redis 租约与心跳（``leases``）、负载均衡规则（``balance``，纯函数）、每个协调周期做什么（``assigner``）。"""
