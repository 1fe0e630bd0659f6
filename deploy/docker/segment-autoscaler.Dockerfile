# segment-autoscaler: build with the Rust toolchain, run FROM scratch as non-root: the image holds
# the binary, the C libraries it links, CA certificates and a passwd entry, nothing else (no
# shell, no package manager). `deploy/docker/minimal-rootfs` assembles that file system.
# Build from the repository root: docker build -f deploy/docker/segment-autoscaler.Dockerfile -t segment-autoscaler:0.1.0 .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p segment-autoscaler \
 && deploy/docker/minimal-rootfs target/release/segment-autoscaler /rootfs

FROM scratch
COPY --from=build /rootfs /
USER 65532:65532
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/segment-autoscaler"]
CMD ["run", "--config", "/etc/segment-autoscaler/config.yaml", "--log-format", "json"]
