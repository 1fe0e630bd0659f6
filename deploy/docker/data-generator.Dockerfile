# data-generator: build with the Rust toolchain, run on a distroless base as non-root.
# Build from the repository root: docker build -f deploy/docker/data-generator.Dockerfile -t data-generator:0.1.0 .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p data-generator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/data-generator /usr/local/bin/data-generator
USER 65532:65532
EXPOSE 9465
ENTRYPOINT ["/usr/local/bin/data-generator"]
