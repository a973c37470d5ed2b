"""工作进程 -> 网关的事件批（shared/fanout.py）：相同负载只写一次、网关能认出并还原、坏下标被拒绝。"""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from devtools.bench.fanout_feed import SyntheticSession
from shared.fanout import BATCH_PREFIX, EmissionBatch, pack_batch


def test_a_step_packs_into_one_message_with_each_payload_once() -> None:
    emissions = SyntheticSession("sess-1", "exam-x-user-1", "x").step(1.7e9)
    text = pack_batch(emissions)
    assert text.encode().startswith(BATCH_PREFIX)
    assert len(json.loads(text)["payloads"]) == 3  # monitor.update、情绪事件、心率事件：14 条事件共用 3 份负载
    unpacked = list(EmissionBatch.model_validate_json(text).unpacked())
    assert [(e, d, n, r) for e, d, n, r in unpacked] == [(e, d, n, r) for e, d, n, r in emissions]
    plain = sum(len(json.dumps(d)) for _, d, _, _ in emissions)
    assert len(text) < plain / 2


def test_a_batch_that_points_past_its_payloads_is_rejected() -> None:
    with pytest.raises(ValidationError):
        EmissionBatch.model_validate_json('{"method":"emit_batch","payloads":[{}],"emissions":[["e",1,"/","all"]]}')
