# syntax=docker/dockerfile:1

# audian-receiver's image: a release build, stripped, on a distroless base as a non-root user.
#   docker build -t audian-receiver .
#   docker run -p 8443:8443 -e AUDIAN_WEBHOOK_SECRET=... -e DATABASE_URL=... \
#     -v /path/to/tls:/etc/audian-receiver/tls:ro audian-receiver
# CI builds this file unchanged with podman (`podman build --format docker --pull=never`, on
# local stand-ins for the two base images) and runs the image: scripts/container-check.sh.

# Build on Debian 12 (bookworm), the same glibc as the runtime image. Keep the Rust version
# at or above Cargo.toml's rust-version.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Only what the build reads (.dockerignore admits nothing else): the manifest and lock file,
# build.rs, the sources, migrations/ (embedded at compile time) and vendor/ (sqlx-core and rskafka,
# [patch.crates-io] path dependencies).
COPY Cargo.toml Cargo.lock build.rs ./
COPY vendor ./vendor
COPY migrations ./migrations
COPY src ./src
# The repository's release profile, unchanged (it keeps line tables for profiling); the
# image's copy is stripped afterwards: about 110 MB -> under 20 MB.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin audian-receiver \
    && strip --strip-all -o /audian-receiver target/release/audian-receiver

# glibc, libgcc, CA certificates and nothing else: no shell, no package manager, no curl.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /audian-receiver /usr/local/bin/audian-receiver
COPY config/container.toml /etc/audian-receiver/config.toml
# nonroot (uid 65532), by number so that a runAsNonRoot policy can check it.
USER 65532:65532
# 8443: the public HTTPS listener. 9090: the admin listener (/healthz, /readyz, /metrics) for
# the private network only: do not publish it.
EXPOSE 8443 9090
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/audian-receiver", "healthcheck", "--config", "/etc/audian-receiver/config.toml"]
ENTRYPOINT ["/usr/local/bin/audian-receiver"]
CMD ["serve", "--config", "/etc/audian-receiver/config.toml"]
