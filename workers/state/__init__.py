"""每路流一个的分析状态（纯逻辑，不做 I/O）：由视觉、心率、音频、节流几个小部件组成，
``StreamState.snapshot`` 把它们此刻的值交给事件组装（``workers.output.events``）。"""
