# syntax=docker/dockerfile:1
# realtime_sio container image: `docker build -t realtime-sio .` then `docker run -p 6001:6001 realtime-sio`.
# Installs exactly as the README does (`pip install .`) into a virtualenv in a build stage, then copies the
# virtualenv into a clean slim image that runs as an unprivileged user (uid/gid 10001, as the Helm chart expects).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src
# .dockerignore admits only the package and its packaging metadata.
COPY . .
RUN pip install . \
    && realtime-sio --help >/dev/null

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    REALTIME_SIO_HOST=0.0.0.0
RUN groupadd --system --gid 10001 realtime \
    && useradd --system --uid 10001 --gid realtime --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin realtime
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
EXPOSE 6001
# Kubernetes uses the chart's probes instead; this serves `docker run` and compose.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('REALTIME_SIO_PORT', '6001'), timeout=4)"]
CMD ["realtime-sio", "serve"]
