# Vigil's API server: migrate, load the protocols, serve on port 8000.
# Not built on our development machines or in CI (they run no Docker engine): see README.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIGIL_ENVIRONMENT=production \
    VIGIL_HOST=0.0.0.0 \
    VIGIL_PORT=8000

RUN groupadd --gid 10001 vigil && useradd --create-home --uid 10001 --gid 10001 vigil
WORKDIR /app

# The pinned dependencies first, in a layer that changes only with pyproject.toml or
# constraints.txt. Vigil finds alembic.ini, migrations/ and protocols/ beside its app/ package,
# so it is installed in place (editable) in /app, not copied into site-packages.
COPY pyproject.toml constraints.txt README.md ./
RUN mkdir app && touch app/__init__.py \
    && pip install -c constraints.txt -e . \
    && rm -r app

COPY alembic.ini ./
COPY migrations ./migrations
COPY protocols ./protocols
COPY app ./app
# var/ holds the embedded SQLite database when VIGIL_DATABASE_URL is not set.
RUN mkdir var && chown 10001:10001 var

USER 10001:10001
EXPOSE 8000
# Liveness (/healthz): the process answers. A database outage must not mark the container
# unhealthy (a restart would not help); readiness for traffic is /readyz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]

# VIGIL_ENVIRONMENT=production refuses to start without a real VIGIL_SECRET_KEY.
CMD ["sh", "-c", "vigil migrate && vigil protocol load && exec vigil serve --host 0.0.0.0"]
