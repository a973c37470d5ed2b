"""HTTP 入口：考试后端调用的 REST 接口（``api``）、MediaMTX 的鉴权回调与路径钩子（``media_hooks``）、
页面与静态资源（``pages``）。"""
