"""运行统计：Prometheus 指标（每个工作进程写、监督进程汇总后提供 ``/metrics``）与 GPU 读数（NVML，可选）。"""
