"""schemathesis 按网关自己的 OpenAPI 描述生成请求（真实网关 + 真实 Redis，有界：每个接口 25 个例子）：
没有 5xx，每个响应的状态码都在该接口列出的范围里、响应体符合描述的模型。

请求带 API Key 与 MediaMTX 的共享密钥，所以生成的请求能走到鉴权之后的逻辑；鉴权失败的限额调得很高，
让本机不会因为生成的错误凭据被 429 挡住（429 本身也在描述里）。
"""

from __future__ import annotations

import base64

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import MEDIAMTX_AUTH_SECRET, Stack

WORKER_PROCESSES = 0
WORKER_ENV = {"AUTH_FAILURES_PER_MINUTE": "1000000", "STOP_WAIT_S": "0.5"}
EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_every_route_answers_within_its_documented_schema(stack: Stack) -> None:
    # schemathesis 的 pytest 惰性加载（from_fixture）与 pytest 9 不兼容：在测试里加载描述，逐个接口用 Hypothesis 运行
    schema = schemathesis.openapi.from_url(f"{stack.base_url}/openapi.json")
    basic = base64.b64encode(f"mediamtx:{MEDIAMTX_AUTH_SECRET}".encode()).decode()
    headers = {**stack.headers, "Authorization": f"Basic {basic}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 11, [op.label for op in operations]
    for operation in operations:

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)  # fmt: skip
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=stack.base_url, headers=headers, checks=CHECKS, timeout=15)

        run()
