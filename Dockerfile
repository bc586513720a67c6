# syntax=docker/dockerfile:1
# The Ordergate server as a container image (docs/deploy.md, "Container").
#   docker build -t ordergate .
#   docker run -p 50051:50051 -p 9464:9464 ordergate serve --demo
# Build stage: every third-party package from requirements.lock (pinned, hashes checked), then
# the two packages of this repository, into one virtual environment that the runtime copies.
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/ordergate
COPY requirements.lock ./
RUN /opt/ordergate/bin/pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY client_sdk ./client_sdk
COPY server ./server
RUN /opt/ordergate/bin/pip install --no-deps ./client_sdk . \
    && /opt/ordergate/bin/pip check

# Runtime stage: the environment and nothing of the build; a user of its own, not root.
FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/ordergate --create-home ordergate
COPY --from=build /opt/ordergate /opt/ordergate
ENV PATH=/opt/ordergate/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ORDERGATE_LISTEN=0.0.0.0:50051 \
    ORDERGATE_METRICS_LISTEN=0.0.0.0:9464 \
    ORDERGATE_HTTP_LISTEN=0.0.0.0:8080 \
    ORDERGATE_DATABASE_URL=sqlite:////var/lib/ordergate/ordergate.sqlite3 \
    ORDERGATE_LOG_FORMAT=json
USER ordergate
WORKDIR /var/lib/ordergate
VOLUME ["/var/lib/ordergate"]
EXPOSE 50051 8080 9464
# gRPC health (grpc.health.v1): NOT_SERVING while the database does not answer.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["ordergate", "health", "--timeout", "4"]
# SIGTERM: health NOT_SERVING, calls in flight finish (ORDERGATE_SHUTDOWN_GRACE_SECONDS), exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["ordergate"]
CMD ["serve"]
