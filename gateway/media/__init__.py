"""MediaMTX：控制 API 客户端（``mediamtx``）与路径可用性 -> 启停分析（``paths``）。"""
