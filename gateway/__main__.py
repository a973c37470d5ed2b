"""``python -m gateway``：用 uvicorn 运行网关（地址与端口来自 GATEWAY_HOST / GATEWAY_PORT）。"""

from __future__ import annotations

import logging

import uvicorn

from shared.settings import Settings

from .app import create_app


def main() -> None:
    # 字段全部来自环境变量（都有默认值）。shared/settings.py 用 Field(默认值, ...) 的位置参数写默认值：不启用 pydantic 的
    # mypy 插件时，mypy 对 pydantic 的 dataclass_transform 只认 default= 关键字，把这些字段当作必填
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app(settings)
    except ValueError as exc:
        raise SystemExit(f"网关无法启动: {exc}") from None
    uvicorn.run(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level=settings.log_level.lower(),
        ws="websockets-sansio",
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
