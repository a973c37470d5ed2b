"""一帧的路径：拉流（``ingest``）-> 最新帧槽位（``frames``）-> 分析一步（``analysis_step``）-> 每流状态（``workers.state``）
-> 事件（``workers.output``）。另有学生端编码前心率样本的读取线程（``client_ppg``）。"""
