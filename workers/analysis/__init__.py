"""纯分析代码：输入 numpy 数组，输出 dataclass；不做任何 I/O。"""
