# syntax=docker/dockerfile:1
# cpkmon: one image for every role (`cpkmon worker`, `cpkmon api`, `cpkmon simulate`, ...).
# Build:  docker build -t cpkmon:0.1.0 .
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# A C compiler for the mypyc-compiled core (setup.py; the image already has the Python headers). Build stage
# only: the runtime stage copies the finished virtualenv and has no compiler.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Dependencies first (their layer is cached while only the source changes), at the exact tested versions.
COPY deploy/requirements.lock /src/deploy/requirements.lock
RUN python -m venv /opt/cpkmon \
 && /opt/cpkmon/bin/pip install --require-virtualenv -r /src/deploy/requirements.lock
# Then the package itself; --no-deps so nothing outside the lock file is ever pulled in.
COPY pyproject.toml setup.py README.md* /src/
COPY deploy/build-constraints.txt /src/deploy/build-constraints.txt
COPY cpkmon /src/cpkmon
COPY capability /src/capability
COPY alerts /src/alerts
COPY stream /src/stream
COPY api /src/api
# pip builds it in an isolated environment with the pinned build tools (mypy brings mypyc) and compiles the
# hot core; the build fails rather than ship a pure core silently.
RUN PIP_CONSTRAINT=/src/deploy/build-constraints.txt \
    /opt/cpkmon/bin/pip install --require-virtualenv --no-deps /src \
 && /opt/cpkmon/bin/python -c "import cpkmon, sys; sys.exit(not cpkmon.compiled_core())" \
 && /opt/cpkmon/bin/cpkmon --help >/dev/null

FROM python:3.11-slim

ENV PATH=/opt/cpkmon/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CPKMON_DATA_DIR=/var/lib/cpkmon

# A fixed non-root user; the data directory is created owned by it so that a named volume mounted there
# inherits the ownership.
RUN groupadd --system --gid 10001 cpkmon \
 && useradd --system --uid 10001 --gid cpkmon --home-dir /var/lib/cpkmon --shell /usr/sbin/nologin cpkmon \
 && mkdir -p /var/lib/cpkmon \
 && chown cpkmon:cpkmon /var/lib/cpkmon

COPY --from=build /opt/cpkmon /opt/cpkmon

USER 10001:10001
WORKDIR /var/lib/cpkmon
# API (CPKMON_API_PORT) and the worker's health/metrics port (CPKMON_WORKER_PORT). Both bind 127.0.0.1 unless
# CPKMON_API_HOST / CPKMON_WORKER_HOST say otherwise: docker-compose.yml sets 0.0.0.0 explicitly.
EXPOSE 8000 6066
ENTRYPOINT []
CMD ["cpkmon", "--help"]
