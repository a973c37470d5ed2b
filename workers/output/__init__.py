"""工作进程的输出：事件组装（``events``）、全部事件的命名空间与房间（``routing``）、一次分析后的事件出口（``outbox``）、
发布线程与回放缓冲（``publisher``）、会话汇总增量（``aggregate``）及其写入 Redis（``report_sink``）。"""
