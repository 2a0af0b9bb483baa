# graphrun server image.
#
#   docker build -t graphrun .
#   docker run --rm -p 127.0.0.1:50051:50051 \
#     -e GRAPHRUN_DATABASE_URL=postgresql://user:password@db-host:5432/graphrun graphrun
#
# GRAPHRUN_DATABASE_URL is REQUIRED in a container. Without it graphrun would start its
# embedded PostgreSQL (the pgserver wheel), which needs a writable data directory and,
# when run as root, runs postgres as a separate `pgserver` user: neither fits this image
# (non-root user, read-only /app, read-only root filesystem in deploy/kubernetes). The
# embedded database is for `make serve` on a workstation only; here it fails at start.
#
# Arguments after the image name go to `graphrun serve` (e.g. `--config /graphs/langgraph.json`);
# every setting also has a GRAPHRUN_* environment variable (README, "Configuration").
# compose.yaml and deploy/kubernetes/ show complete deployments; tests/test_deploy.py
# lints this file and runs its ENTRYPOINT and HEALTHCHECK outside a container.

# -- builder: wheels of graphrun (the server) and graphrun-client, installed with their dependencies into a venv
FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
RUN python -m venv /opt/venv

# Only what the wheel is built from (.dockerignore keeps the rest out of the context).
COPY pyproject.toml README.md ./
COPY client/ client/
COPY server/ server/

# The dependencies come from the two pyproject.toml files; the wheels are built without them.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/wheels ./client . \
    && /opt/venv/bin/pip install --no-cache-dir /tmp/wheels/graphrun_client-*.whl /tmp/wheels/graphrun-*.whl

# -- runtime: the venv only, no sources, no build tools
FROM python:3.11-slim

# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
RUN groupadd --system --gid 10001 graphrun \
    && useradd --system --no-log-init --uid 10001 --gid 10001 \
       --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin graphrun

COPY --from=builder /opt/venv /opt/venv

# GRAPHRUN_HOST=0.0.0.0: in a container the port must be reachable from outside it. graphrun
# has no authentication configured by default, so publish the port only where trusted
# clients reach it (compose.yaml binds 127.0.0.1 on the host). If binding a non-loopback
# address later needs an explicit opt-in, add that variable to this ENV line.
# GRAPHRUN_METRICS_PORT: Prometheus /metrics on its own port (unset it to turn metrics off).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GRAPHRUN_HOST=0.0.0.0 \
    GRAPHRUN_PORT=50051 \
    GRAPHRUN_METRICS_PORT=9464

# Nothing is written here when GRAPHRUN_DATABASE_URL is set; root-owned and read-only to the server.
WORKDIR /app
USER 10001:10001

EXPOSE 50051 9464

# SIGTERM drains: NOT_SERVING at once, runs get GRAPHRUN_GRACE_SECONDS (default 10) to finish,
# the rest is handed to other replicas. Give the container longer than that to stop
# (compose: stop_grace_period; Kubernetes: terminationGracePeriodSeconds; docker stop -t).
STOPSIGNAL SIGTERM

# SERVING only while the database answers and the server is not draining.
# The target follows GRAPHRUN_PORT: change both together.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["graphrun", "health", "--target", "127.0.0.1:50051"]

# Exec form: the server is PID 1 and receives SIGTERM itself (no shell in between).
ENTRYPOINT ["graphrun", "serve"]
