# syntax=docker/dockerfile:1
# BurnCloud's headless gateway (`burncloud router`, no GTK/WebKit linked) in a small
# Debian image. `docker compose up -d` runs it with PostgreSQL (docker-compose.yml);
# alone it uses SQLite in /data:
#   docker build -t burncloud .
#   docker run -d -p 8080:8080 -e JWT_SECRET=$(openssl rand -hex 32) burncloud

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The registry and the target folder are build caches (BuildKit), not image layers.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release -p burncloud --no-default-features --locked \
    && install -m 0755 target/release/burncloud /usr/local/bin/burncloud

FROM debian:bookworm-slim
# ca-certificates: TLS to the cloud providers; curl: the health check (burncloud has no
# health subcommand).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
# A non-root user owning the data folder (SQLite, JWT secret, provider-keys.key, setup token).
RUN groupadd --system --gid 10001 burncloud \
    && useradd --system --uid 10001 --gid burncloud --home-dir /data --shell /usr/sbin/nologin burncloud \
    && install -d -m 0700 -o burncloud -g burncloud /data
COPY --from=build /usr/local/bin/burncloud /usr/local/bin/burncloud
USER 10001:10001
WORKDIR /data
ENV HOST=0.0.0.0 PORT=8080 BURNCLOUD_DATA_DIR=/data
EXPOSE 8080
# From inside the container: 127.0.0.1 is loopback, so /health answers without a key.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD curl -fsS -o /dev/null "http://127.0.0.1:${PORT}/health" || exit 1
ENTRYPOINT ["burncloud"]
CMD ["router"]
