# syntax=docker/dockerfile:1
# data-generator: build with the Rust toolchain, run FROM scratch as non-root (the binary, the C
# libraries it links, CA certificates, a passwd entry; see deploy/docker/minimal-rootfs).
# Build from the repository root:
#   docker build -f deploy/docker/data-generator.Dockerfile -t data-generator:TAG .   (TAG: deploy/k8s/kustomization.yaml)
# RUST_IMAGE, and why both binaries build together: see segment-autoscaler.Dockerfile.
ARG RUST_IMAGE=rust:1.95-bookworm
FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,id=cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=cargo-target,target=/src/target \
    cargo build --release --locked -p segment-autoscaler -p data-generator \
 && deploy/docker/minimal-rootfs target/release/data-generator /rootfs

FROM scratch
COPY --from=build /rootfs /
USER 65532:65532
EXPOSE 9465
ENTRYPOINT ["/usr/local/bin/data-generator"]
