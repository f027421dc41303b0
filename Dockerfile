# syntax=docker/dockerfile:1.7
#
# airsync: one binary for every role (serve, worker, migrate, the CLI).
#   docker build -t airsync .
#   docker run --env-file .env -p 8080:8080 airsync                # the API, worker inside
#   docker run --env-file .env airsync worker                      # a separate worker
#   docker run --env-file .env airsync migrate
# docker-compose.yml runs PostgreSQL, the migrations, the API and a worker.
#
# Builder and runtime share one Debian release, so that the binary finds the
# glibc it was linked against.
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
WORKDIR /src
# Dependency caching: the registry and the target directory live in BuildKit
# cache mounts, kept between builds, so a change to airsync's own code
# recompiles only the crates it touches, not the dependencies. The target
# directory is not part of the image, hence the copy out.
COPY Cargo.toml Cargo.lock ./
COPY config ./config
COPY crates ./crates
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p airsync --bin airsync \
    && install -m 0755 target/release/airsync /usr/local/bin/airsync

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 airsync \
    && useradd --system --uid 10001 --gid airsync --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin airsync
COPY --from=builder /usr/local/bin/airsync /usr/local/bin/airsync
COPY deploy/docker/healthcheck.sh /usr/local/bin/airsync-healthcheck
USER 10001:10001
ENV AIRSYNC_LOG_FORMAT=json
EXPOSE 8080
# `serve` and `worker` finish requests and batches in flight on SIGTERM.
STOPSIGNAL SIGTERM
# Meaningful for `serve` on port 8080; docker-compose.yml turns it off for
# the worker and the one-shot commands.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["airsync-healthcheck", "8080"]
ENTRYPOINT ["airsync"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
