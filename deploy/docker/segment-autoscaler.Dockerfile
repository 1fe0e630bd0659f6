# segment-autoscaler: build with the Rust toolchain, run on a distroless base as non-root.
# Build from the repository root: docker build -f deploy/docker/segment-autoscaler.Dockerfile -t segment-autoscaler:0.1.0 .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN apt-get update && apt-get install -y --no-install-recommends libfontconfig1-dev \
 && cargo build --release --locked -p segment-autoscaler

# Slim Debian rather than distroless: `report` draws text through fontconfig.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libfontconfig1 fonts-dejavu-core ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/segment-autoscaler /usr/local/bin/segment-autoscaler
USER 65532:65532
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/segment-autoscaler"]
CMD ["run", "--config", "/etc/segment-autoscaler/config.yaml", "--log-format", "json"]
