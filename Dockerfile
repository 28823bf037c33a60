# syntax=docker/dockerfile:1
# One image for every process type: the container runs `satchel ARGS`, web by default.
#   docker build --build-arg RELEASE_ID="$(git rev-parse --short=12 HEAD)" -t satchel:RELEASE .
#   docker run satchel:RELEASE                          -> satchel web
#   docker run satchel:RELEASE worker --queues scan --no-relay
# See docs/deploy/docker.md.

# The pinned uv, the same version as tasks.py installs, so the lock is read the same way everywhere.
FROM ghcr.io/astral-sh/uv:0.13.8 AS uv

# Build stage: the full Python image carries a C toolchain for any dependency without a wheel
# for the platform being built. None of it reaches the runtime stage, which copies only the virtualenv.
FROM python:3.11-trixie AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_PROJECT_ENVIRONMENT=/opt/satchel \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
WORKDIR /src

# Dependencies from the lock alone: this layer is rebuilt only when the lock or pyproject.toml change.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-project

# Satchel itself, as a wheel rather than an editable install, so the runtime needs no source tree.
COPY README.md ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

# Runtime stage: slim Python, no compiler, no uv, no source; everything it runs is in /opt/satchel.
FROM python:3.11-slim-trixie AS runtime
ARG RELEASE_ID=dev
LABEL org.opencontainers.image.title="satchel" \
      org.opencontainers.image.description="Self-hosted file sharing, built as a reference twelve-factor app." \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${RELEASE_ID}" \
      org.opencontainers.image.revision="${RELEASE_ID}"

# A fixed numeric uid/gid: Kubernetes' runAsNonRoot can only verify a number, and volumes can be chowned to it.
RUN groupadd --system --gid 10001 satchel \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin satchel

# Owned by root and not writable by the app user: the process cannot change its own code.
COPY --from=build /opt/satchel /opt/satchel

# Bytecode was compiled in the build stage; nothing is written at run time, so a read-only
# root filesystem works (Gunicorn's heartbeats use /dev/shm; /tmp may be a tmpfs).
ENV PATH="/opt/satchel/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000 \
    RELEASE_ID="${RELEASE_ID}"
WORKDIR /app
USER 10001:10001

# 8000: HTTP ($PORT). 9100: the recommended SATCHEL_METRICS_PORT, off unless that variable is set.
EXPOSE 8000 9100

# Liveness of the web process type; other process types switch it off (compose.yaml) or ignore it (Kubernetes).
# Python alone, since a slim image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]

# Exec form: satchel is PID 1 and receives SIGTERM itself.
ENTRYPOINT ["satchel"]
CMD ["web"]
