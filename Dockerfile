# Chorus in a container: the embedded model (SmolLM2, llama.cpp) and the embedder
# (all-MiniLM-L6-v2, ONNX) are inside, as they ship in their PyPI packages; nothing is
# downloaded when it starts. Run it with `docker compose up` (compose.yaml: PostgreSQL, Redis
# and a Chroma server beside it), or alone on the embedded defaults:
#
#   docker build -t chorus .
#   docker run -p 3000:3000 -e SLACK_BOT_TOKEN=… -e SLACK_APP_TOKEN=… chorus
#
# Stage 1 builds the wheels (llama-cpp-python compiles llama.cpp: a few minutes).
FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
COPY plugins ./plugins
# llama.cpp is compiled for any x86-64 CPU with AVX2 (GGML_NATIVE=OFF), not for the CPU that
# builds the image: the host it runs on may lack that one's instructions (AVX-512, AMX).
RUN CMAKE_ARGS="-DGGML_NATIVE=OFF" pip wheel --no-cache-dir --wheel-dir /wheels .

# Stage 2: the runtime, without the compilers, as a user that owns nothing but its data.
FROM python:3.11-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 chorus
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /home/chorus
COPY config ./config
RUN mkdir -p /home/chorus/data && chown chorus:chorus /home/chorus/data
USER chorus
# Listen on every interface inside the container (the default, 127.0.0.1, would not be
# reachable through a published port); data under the volume below.
ENV CHORUS_HTTP__HOST=0.0.0.0 \
    CHORUS_HTTP__PORT=3000 \
    CHORUS_STORAGE__DATA_DIR=/home/chorus/data \
    PYTHONUNBUFFERED=1
VOLUME ["/home/chorus/data"]
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=2).status == 200 else 1)"]
CMD ["chorus", "run"]
