"use strict";
// 极简命令行解析：`--name value` 取值，后面没有值（或紧跟另一个 --xxx）的 `--flag` 记为 true。
// 不引入额外依赖；数值由调用方自己 Number() 转换。
module.exports = function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i];
    if (!key.startsWith("--")) continue;
    const eq = key.indexOf("=");
    if (eq > 0) { // 也接受 --name=value
      out[key.slice(2, eq)] = key.slice(eq + 1);
      continue;
    }
    const next = argv[i + 1];
    if (next === undefined || next.startsWith("--")) out[key.slice(2)] = true;
    else { out[key.slice(2)] = next; i++; }
  }
  return out;
};
