# Vigil's API server, in two stages: a builder makes the virtualenv /opt/venv with the pinned
# dependencies (constraints.txt); the final image holds that virtualenv and the app files, no
# compiler or build tool, and runs as the numeric user 10001.
#
#   docker build -t vigil .
#   buildah bud --format docker --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt -t vigil .
#
# The default command only serves. Migrations and the protocol files are a separate one-shot
# step, run once per release before (or while) the servers start:
#   docker run --rm -e VIGIL_DATABASE_URL=... -e VIGIL_SECRET_KEY=... vigil \
#       sh -c 'vigil migrate && vigil protocol load'
# (`vigil migrate` holds a PostgreSQL advisory lock, so replicas migrating at once are safe.)
# See docs/deployment.md; scripts/build_image.sh builds and runs this file without Docker.
#
# BASE_IMAGE: any Debian-based image with Python 3.11+ as python3 and its venv module (the
# official python images, or Debian's own python3 + python3-venv: scripts/build_image.sh).
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
# The package index pip uses (a mirror's URL; never one with a password in it: build
# arguments are kept in the image's history).
ARG PIP_INDEX_URL=https://pypi.org/simple

WORKDIR /app
# The pinned dependencies first, in a layer that changes only with pyproject.toml,
# constraints.txt or README.md (the package's description). Vigil finds alembic.ini,
# migrations/ and protocols/ beside its app/ package (app/config.py: ROOT), so the project is
# installed editable at /app, and the final stage puts the real app/ at that same path.
#
# A CA bundle for pip (a TLS-intercepting proxy's) comes as the build secret "ca": mounted for
# this RUN only, it is never written to a layer. Without the secret pip uses the base image's CAs.
COPY pyproject.toml constraints.txt README.md ./
RUN --mount=type=secret,id=ca,target=/run/secrets/ca,required=false \
    if [ -s /run/secrets/ca ]; then \
        export PIP_CERT=/run/secrets/ca REQUESTS_CA_BUNDLE=/run/secrets/ca SSL_CERT_FILE=/run/secrets/ca; \
    fi \
    && python3 -m venv /opt/venv \
    && mkdir app && touch app/__init__.py \
    && pip install --index-url "$PIP_INDEX_URL" -c constraints.txt -e . \
    && rm -r app

FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    MPLCONFIGDIR=/tmp/matplotlib \
    VIGIL_ENVIRONMENT=production \
    VIGIL_HOST=0.0.0.0 \
    VIGIL_PORT=8000 \
    VIGIL_WORKERS=1

RUN groupadd --gid 10001 vigil \
    && useradd --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin vigil

COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY alembic.ini ./
COPY migrations ./migrations
COPY protocols ./protocols
COPY app ./app
# var/ holds the embedded SQLite database when VIGIL_DATABASE_URL is not set (one container
# only: replicas share a PostgreSQL database).
RUN mkdir var && chown 10001:10001 var

USER 10001:10001
EXPOSE 8000
# Liveness (/healthz): the process answers. A database outage must not mark the container
# unhealthy (a restart would not help); readiness for traffic is /readyz, for the load balancer.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('VIGIL_PORT', '8000'), timeout=2)"]

# VIGIL_ENVIRONMENT=production refuses to start without a real VIGIL_SECRET_KEY. VIGIL_WORKERS
# processes serve; one of them, elected through the database, runs the scheduler.
CMD ["sh", "-c", "exec vigil serve --host \"$VIGIL_HOST\" --workers \"$VIGIL_WORKERS\""]
