# fulcrum-sync: one image for every job (sync, cache-load, discover, backfill, ...).
#
#   docker build -t fulcrum-sync:0.1.0 .        (--build-arg VERSION=... for a release)
#   docker run --rm --read-only --tmpfs /tmp fulcrum-sync:0.1.0 --help
#
# Needs BuildKit (the default builder since Docker 23; DOCKER_BUILDKIT=1 on 20.10) for the
# `RUN --mount` below. There is deliberately no `# syntax=` line: BuildKit's built-in
# Dockerfile frontend has every feature used here, and a syntax line makes each build pull
# the frontend image from Docker Hub, which fails where only a registry mirror is reachable.
#
# Stage 1 builds wheels (the project's and every dependency's), so compilers and build
# backends never reach the final image. The dependencies are exactly requirements.lock's
# (pinned with hashes, pip-compile --generate-hashes; `python scripts/lock.py` refreshes it),
# and pip refuses any file whose hash is not in the lock. Stage 2 installs those wheels, not
# an editable checkout, from a build-time mount that leaves no layer behind.
#
# No secret is baked in: FULCRUM_SYNC_DATABASE_URL, FULCRUM_SYNC_CUBE_API_SECRET and the
# Snowflake credentials come from the environment at run time (a Kubernetes Secret).
# For reproducible builds pin the base by digest: python:3.11-slim-bookworm@sha256:...

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY requirements.lock ./
RUN pip wheel --require-hashes --wheel-dir /wheels -r requirements.lock
COPY pyproject.toml README.md ./
COPY fulcrum_sync ./fulcrum_sync
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime

# The version `fulcrum-sync --version` prints (fulcrum_sync.__version__; tests keep them equal).
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="fulcrum-sync" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.description="Keep semantic time series, the Snowflake cache and analysis patterns fresh."

# The root filesystem is read-only in Kubernetes: everything the tool, Python and the
# Snowflake connector write goes under /tmp, an emptyDir (or `--tmpfs /tmp`).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    XDG_CACHE_HOME=/tmp/.cache

RUN groupadd --system --gid 10001 fulcrum \
    && useradd --system --uid 10001 --gid fulcrum --home-dir /tmp --no-create-home \
       --shell /usr/sbin/nologin fulcrum

# Install from the builder's wheels only (--no-index, --no-deps: the locked set and the
# project, nothing resolved anew): what was built is what ships. pip check proves the
# locked set satisfies the project's requirements.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --no-deps /wheels/*.whl \
    && pip check \
    && fulcrum-sync --help > /dev/null

# Without FULCRUM_SYNC_DATABASE_URL the tool falls back to a SQLite file in the working
# directory; /tmp keeps that (demo) case writable too.
WORKDIR /tmp
USER 10001:10001

ENTRYPOINT ["fulcrum-sync"]
CMD ["--help"]
