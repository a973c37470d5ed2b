"""网关的 Prometheus 指标（``/metrics``）。指标对象挂在各自的注册表上、由 ``create_app`` 创建一份，没有模块级实例。

标签都是有界的（原因代码、命名空间、接口名），不含会话或教师标识。"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.auth_refusals = Counter(
            "proctor_gateway_auth_refusals_total",
            "被拒绝的鉴权（REST API Key、监控令牌、推流令牌、MediaMTX 回调），按入口与原因",
            ["endpoint", "reason"],
            registry=self.registry,
        )
        self.socket_events_refused = Counter(
            "proctor_gateway_socketio_events_refused_total",
            "未处理的 Socket.IO 客户端事件（保留名、格式错误、超限），按原因",
            ["namespace", "reason"],
            registry=self.registry,
        )
        self.socket_disconnects = Counter(
            "proctor_gateway_socketio_forced_disconnects_total",
            "网关主动断开的 Socket.IO 连接，按原因（rate_limited、token_expired、token_revoked）",
            ["namespace", "reason"],
            registry=self.registry,
        )
        self.requests = Histogram(
            "proctor_gateway_http_request_duration_seconds",
            "REST 与页面请求的耗时，按路由模板、方法与状态码",
            ["route", "method", "status"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.signaling = Counter(
            "proctor_gateway_signaling_total",
            "学生端信令事件的结果，按事件与结果（ok 或原因代码）",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.redis_up = Gauge("proctor_gateway_redis_up", "网关最近一次检查能否连上 Redis（1 / 0）", registry=self.registry)
        self.streams = Gauge(
            "proctor_gateway_streams", "期望运行的流，按消费状态（pending / connecting / streaming / reconnecting / failed）",
            ["state"], registry=self.registry,
        )
        self.events_relayed = Counter(
            "proctor_gateway_events_relayed_total",
            "网关转发给本实例客户端的服务端事件（来自工作进程与其他网关实例），按命名空间与事件名",
            ["namespace", "event"],
            registry=self.registry,
        )
        self.socket_deliveries = Counter(
            "proctor_gateway_socketio_deliveries_total",
            "投递给本实例各连接的事件条数（一条事件发给 N 个连接计 N），按命名空间与方式"
            "（direct 逐条、batched 进批、dropped_backlog 该连接积压太多而丢弃）",
            ["namespace", "mode"],
            registry=self.registry,
        )
        self.socket_clients = Gauge(
            "proctor_gateway_socketio_clients",
            "本网关实例上的 Socket.IO 连接数，按命名空间与角色（teacher / student）",
            ["namespace", "role"],
            registry=self.registry,
        )
