# 两个入口：make run（起全套服务 + 演示流）与 make test（完整测试）。
# 两者都会按需创建 .venv、安装依赖；以 root 运行且缺少系统包时用 apt-get 安装。

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SYSTEM_BINARIES := ffmpeg rtsp-server-perl
SYSTEM_PACKAGES := ffmpeg rtsp-server-perl
PYTEST_ARGS ?=

.PHONY: run test install sysdeps clean

run: install
	$(PY) -m workers.devstack

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

install: sysdeps $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

sysdeps:
	@missing=""; for b in $(SYSTEM_BINARIES); do command -v $$b >/dev/null 2>&1 || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "安装系统包：$(SYSTEM_PACKAGES)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES) >/dev/null; \
	  else \
	    echo "缺少系统程序：$$missing。请以 root 运行，或手动安装 Debian 包：$(SYSTEM_PACKAGES)"; exit 1; \
	  fi; \
	fi

clean:
	rm -rf $(VENV) .devstack .pytest_cache
