"""部署文件与文档：compose 符合 Compose 规范（每个服务有健康检查与重启策略、GPU 预留、CPU 变体）、.env.example 列出
全部变量、mediamtx.yml 的键都存在于 MediaMTX v1.20 默认配置、README 列出全部环境变量。"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import yaml

from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# MediaMTX v1.20.1 自带的默认配置与 Compose 规范的 JSON Schema（原样收录，供离线校验）
REFERENCE = Path(__file__).resolve().parents[1] / "reference"


def _reference(name: str) -> Path:
    return REFERENCE / name


def test_compose_file_matches_compose_spec() -> None:
    schema = json.loads(_reference("compose-spec.schema.json").read_text())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    jsonschema.Draft7Validator(schema).validate(compose)  # 该规范声明 draft-07（URL 少了结尾的 #）
    services = compose["services"]
    assert set(services) == {"redis", "mediamtx", "gateway", "workers", "workers-cpu", "prometheus", "proxy"}
    assert "--appendonly" in services["redis"]["command"]
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} 没有健康检查"
        assert service.get("restart") == "unless-stopped", f"{name} 没有重启策略"
        for dependency in (service.get("depends_on") or {}).values():
            assert dependency["condition"] == "service_healthy", name
    devices = services["workers"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices and devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "--gpus" in services["workers"]["command"] and "--processes" in services["workers-cpu"]["command"]
    assert services["workers"]["profiles"] == ["gpu"] and services["workers-cpu"]["profiles"] == ["cpu"]
    assert "workers" in services["workers-cpu"]["networks"]["default"]["aliases"]  # Prometheus 抓 workers:9101


def test_env_example_lists_every_variable_the_code_and_compose_read() -> None:
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, flags=re.M))
    missing = sorted(name.upper() for name in Settings.model_fields if name.upper() not in listed)
    assert missing == [], f".env.example 缺少：{missing}"
    compose_vars = set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", (ROOT / "docker-compose.yml").read_text()))
    assert sorted(compose_vars - listed) == [], "compose 读取但 .env.example 没有列出的变量"
    for required in ("API_KEY", "MONITOR_TOKEN_SECRET", "MEDIAMTX_AUTH_SECRET", "MEDIAMTX_READ_PASSWORD", "LAN_IP"):
        assert re.search(rf"^{required}=", example, flags=re.M), f"{required} 应是未注释的必填项"


def _keys(tree: object, prefix: str = "") -> set[str]:
    if not isinstance(tree, dict):
        return set()
    out = set()
    for key, value in tree.items():
        out.add(prefix + key)
        if key != "paths":  # paths 下是路径名，不是配置键
            out |= _keys(value, prefix + key + ".")
    return out


def test_every_mediamtx_key_exists_in_v1_20_defaults() -> None:
    reference = yaml.safe_load(_reference("mediamtx.v1.20.1.default.yml").read_text())
    ours = yaml.safe_load((ROOT / "mediamtx.yml").read_text())
    allowed = _keys(reference)
    # 列表项（如 authInternalUsers 的元素）的键与默认配置中列表元素的键比较
    item_keys = {k for item in reference["authInternalUsers"] for k in item}
    permission_keys = {k for item in reference["authInternalUsers"] for p in item["permissions"] for k in p}
    unknown = sorted(_keys(ours) - allowed)
    assert unknown == [], f"MediaMTX v1.20 默认配置中没有这些键：{unknown}"
    for user in ours.get("authInternalUsers", []):
        assert set(user) <= item_keys
        for perm in user["permissions"]:
            assert set(perm) <= permission_keys
    for perm in ours.get("authHTTPExclude", []):
        assert set(perm) <= permission_keys
    # 局域网部署的要求：网关鉴权、只有 host 候选、单个 UDP 端口、读取端 RTSP over TCP、API 与指标开启
    assert ours["authMethod"] == "http" and ours["authHTTPAddress"].endswith("/api/mediamtx/auth")
    assert ours["webrtcICEServers2"] == [] and ours["webrtcIPsFromInterfaces"] is False
    assert ours["webrtcLocalUDPAddress"] == ":8189" and ours["rtspTransports"] == ["tcp"]
    assert ours["api"] is True and ours["metrics"] is True
    hooks = ours["pathDefaults"]
    assert "event=available" in hooks["runOnAvailable"] and "event=unavailable" in hooks["runOnUnavailable"]
    assert ours["webrtcICEServers2"] == [] and ours["webrtcIPsFromInterfaces"] is False


def test_readme_documents_every_setting_and_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    head = "\n".join(readme.splitlines()[:15])
    assert "make run" in head and "make test" in head
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", readme))
    missing = sorted(name.upper() for name in Settings.model_fields if name.upper() not in documented)
    assert missing == [], f"README 未说明的环境变量：{missing}"
