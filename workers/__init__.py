"""推理工作进程池。

- ``python -m workers``：监督进程（``supervisor``）启动并看护 N 个工作进程；
- 一个工作进程（``process``）：协调（``coordination``）、一帧的路径（``pipeline`` -> ``state`` -> ``output``）、
  模型服务（``models``）；分析器本身是纯函数（``analysis``）。
"""
