"""安装步骤（devtools/sysdeps.sh）在全新机器上的行为：只为缺少的程序装 Debian 包，已有 npm 时绝不装 Debian 的 npm。

全新机器由一个目录模拟：PATH 里只有本机程序的符号链接，去掉了项目要装的那些；apt-get 换成记录参数的替身
（它“安装”一个包就放一个同名程序进去；prometheus 包另带 promtool，iproute2 包带 ip）。
另有一项用真实的 ``apt-get install -s`` 证明这份包列表在本机能解析。
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "devtools" / "sysdeps.sh"
HIDDEN = ("ffmpeg", "ffprobe", "rtsp-server-perl", "chromium", "espeak-ng", "promtool", "ip", "caddy", "apt-get")


def _makefile_list(name: str) -> list[str]:
    text = (ROOT / "Makefile").read_text()
    values = dict(re.findall(r"^(\w+) := (.*)$", text, flags=re.M))
    return values[name].replace("$(RUN_PROGRAMS)", values["RUN_PROGRAMS"]).split()


def _fresh_path(tmp_path: Path) -> Path:
    """本机 PATH 中全部程序的链接，去掉项目需要安装的那些，再放一个记录参数的 apt-get 替身。"""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for d in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(d):
            continue
        for entry in os.scandir(d):
            target = bin_dir / entry.name
            if entry.name not in HIDDEN and not target.exists():
                target.symlink_to(entry.path)
    stub = bin_dir / "apt-get"
    stub.write_text(
        "#!/bin/bash\n"
        f'echo "$*" >> "{tmp_path}/calls"\n'
        'if [ "$1" = install ]; then for p in "$@"; do case "$p" in -*|install) ;; '
        f'*) for b in "$p" $(case "$p" in prometheus) echo promtool;; iproute2) echo ip;; esac); do '
        f'printf "#!/bin/sh\\n" > "{bin_dir}/$b"; chmod +x "{bin_dir}/$b"; done;; esac; done; fi\n'
    )
    stub.chmod(0o755)
    return bin_dir


def _run(bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": str(bin_dir)}
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def test_fresh_machine_gets_only_the_missing_packages_and_never_debian_npm(tmp_path: Path) -> None:
    bin_dir = _fresh_path(tmp_path)
    programs = _makefile_list("TEST_PROGRAMS")
    assert "npm" in programs and shutil.which("npm", path=str(bin_dir)), "全新机器上 npm 随 Node.js 预装"
    result = _run(bin_dir, *programs)
    assert result.returncode == 0, result.stderr
    install = [c for c in (tmp_path / "calls").read_text().splitlines() if c.startswith("install")]
    assert len(install) == 1
    packages = [a for a in install[0].split() if not a.startswith("-") and a != "install"]
    assert packages == ["ffmpeg", "rtsp-server-perl", "chromium", "fonts-wqy-microhei", "espeak-ng", "prometheus", "iproute2",
                        "caddy"]
    assert "--no-install-recommends" in install[0]

    (tmp_path / "calls").unlink()
    again = _run(bin_dir, *programs)  # 都已存在：什么也不装
    assert again.returncode == 0 and not (tmp_path / "calls").exists()


def test_node_without_npm_fails_with_a_reason_instead_of_installing_debian_npm(tmp_path: Path) -> None:
    bin_dir = _fresh_path(tmp_path)
    (bin_dir / "npm").unlink()
    result = _run(bin_dir, "ffmpeg", "npm")
    assert result.returncode == 1
    assert "npm" in result.stderr and "Debian 的 npm" in result.stderr
    assert not (tmp_path / "calls").exists(), "不应调用 apt-get"


def test_the_test_package_list_resolves_with_apt_get_here() -> None:
    """真实的 apt-get 模拟安装（-s，不改动系统）：把除 npm 外的程序都当作缺少时，这份列表能解析。"""
    result = subprocess.run(
        [str(SCRIPT), "--simulate", *_makefile_list("TEST_PROGRAMS")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert not re.search(r"^E:", result.stdout + result.stderr, flags=re.M)
    assert re.search(r"^Inst chromium ", result.stdout, flags=re.M) or "chromium is already" in result.stdout
