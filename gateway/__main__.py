"""``python -m gateway``：用 uvicorn 运行网关（地址与端口来自 GATEWAY_HOST / GATEWAY_PORT）。"""

from __future__ import annotations

import uvicorn

from shared.logs import configure_logging
from shared.settings import Settings

from .app import create_app


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
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
        ws_max_size=settings.socket_max_message_bytes + 1024,  # 超大的 WebSocket 消息在读完之前就被拒绝
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
