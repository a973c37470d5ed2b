"""网关：FastAPI（REST）+ python-socketio（AsyncRedisManager 跨进程广播），同一个 ASGI 应用。"""
