# syntax=docker/dockerfile:1
# segment-autoscaler: build with the Rust toolchain, run FROM scratch as non-root: the image holds
# the binary, the C libraries it links, CA certificates and a passwd entry, nothing else (no
# shell, no package manager). `deploy/docker/minimal-rootfs` assembles that file system.
# Build from the repository root:
#   docker build -f deploy/docker/segment-autoscaler.Dockerfile -t segment-autoscaler:TAG .   (TAG: deploy/k8s/kustomization.yaml)
# RUST_IMAGE names the build stage's base (any Debian-based image with cargo on PATH); the local
# stack builds this file with buildah on a base made from Debian packages (deploy/local/images).
ARG RUST_IMAGE=rust:1.95-bookworm
FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# The registry and target caches survive between builds (and are shared with data-generator).
# Both binaries build together in both recipes: built apart, each recompiled most of the shared
# dependencies with its own features (5 min 48 s, then 7 min 30 s on 2 cores); together, the
# second image's build finds its binary already fresh in the shared target cache.
RUN --mount=type=cache,id=cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=cargo-target,target=/src/target \
    cargo build --release --locked -p segment-autoscaler -p data-generator \
 && deploy/docker/minimal-rootfs target/release/segment-autoscaler /rootfs

FROM scratch
COPY --from=build /rootfs /
USER 65532:65532
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/segment-autoscaler"]
CMD ["run", "--config", "/etc/segment-autoscaler/config.yaml", "--log-format", "json"]
