"""学生端推流的信令：Socket.IO 信令 -> WHIP 的中继（``relay``）、WHIP 客户端（``whip``）、offer 校验与 trickle ICE 片段
（``sdp``，纯函数）、推流令牌与 MediaMTX 鉴权决策（``publish_auth``，纯函数）。"""
