#!/usr/bin/env bash
# 按缺少的程序安装 Debian 包（每个程序对应一个包），只装缺少的那些。
#
#   devtools/sysdeps.sh [--simulate] 程序...
#
# - 程序都已存在：什么也不做；
# - npm：已有可用的 npm（例如 Node.js 官方源装的 nodejs 自带的）时绝不装 Debian 的 npm（它与那种 nodejs 冲突）；
#   有 node 而没有 npm 时报错说明，不去改动已有的 Node.js；两者都没有时装 Debian 的 nodejs + npm；
# - 以 root 运行且有 apt-get 时安装（--no-install-recommends），否则给出缺少什么、该装哪些包后退出 1；
# - --simulate：像全新机器那样把除 npm 以外的程序都当作缺少，只做 apt-get install -s（不需要 root，不改动系统），
#   用来证明这份包列表在本机能解析（npm 按本机实际情况判断：全新机器上它随 Node.js 预装）。
set -euo pipefail

simulate=0
if [ "${1:-}" = "--simulate" ]; then simulate=1; shift; fi

package_for() {
  case "$1" in
    ffmpeg | ffprobe) echo ffmpeg ;;
    rtsp-server-perl) echo rtsp-server-perl ;;
    chromium) echo chromium fonts-wqy-microhei ;;  # 页面与截图里的中文需要 CJK 字体
    espeak-ng) echo espeak-ng ;;
    promtool | prometheus) echo prometheus ;;
    ip) echo iproute2 ;;
    caddy) echo caddy ;;
    *) echo "sysdeps: 不知道程序 $1 属于哪个 Debian 包" >&2; return 1 ;;
  esac
}

missing=()
packages=()
for prog in "$@"; do
  if [ $simulate = 0 ] || [ "$prog" = npm ]; then
    command -v "$prog" >/dev/null 2>&1 && continue
  fi
  missing+=("$prog")
  if [ "$prog" = npm ]; then
    if command -v node >/dev/null 2>&1; then
      echo "sysdeps: 有 node（$(node --version 2>/dev/null)）但没有 npm。请安装与这个 Node.js 配套的 npm；" \
        "不会安装 Debian 的 npm（它与 Node.js 官方源的 nodejs 包冲突）。" >&2
      exit 1
    fi
    packages+=(nodejs npm)
  else
    read -ra found <<<"$(package_for "$prog")"
    packages+=("${found[@]}")
  fi
done

[ ${#missing[@]} -eq 0 ] && exit 0
# 去重并保持顺序
mapfile -t packages < <(printf '%s\n' "${packages[@]}" | awk '!seen[$0]++')

if ! command -v apt-get >/dev/null 2>&1; then
  echo "sysdeps: 缺少程序：${missing[*]}。这台机器没有 apt-get，请手动安装（Debian 包名：${packages[*]}）。" >&2
  exit 1
fi
if [ $simulate = 1 ]; then
  echo "sysdeps: 模拟安装（缺少 ${missing[*]}）：apt-get install -s --no-install-recommends ${packages[*]}"
  apt-get install -s --no-install-recommends "${packages[@]}"
  exit $?
fi
if [ "$(id -u)" != 0 ]; then
  echo "sysdeps: 缺少程序：${missing[*]}。请以 root 运行，或手动安装 Debian 包：${packages[*]}" >&2
  exit 1
fi
echo "sysdeps: 缺少 ${missing[*]}，安装 Debian 包：${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq; then
  echo "sysdeps: apt-get update 失败（软件源不可达？）" >&2
  exit 1
fi
if ! apt-get install -y -qq --no-install-recommends "${packages[@]}" >/tmp/sysdeps-apt.log 2>&1; then
  tail -20 /tmp/sysdeps-apt.log >&2
  echo "sysdeps: apt-get install ${packages[*]} 失败（完整输出见 /tmp/sysdeps-apt.log）" >&2
  exit 1
fi
for prog in "${missing[@]}"; do
  command -v "$prog" >/dev/null 2>&1 || echo "sysdeps: 警告：装完 ${packages[*]} 后仍找不到 $prog（PATH 是否包含 /usr/bin？）" >&2
done
