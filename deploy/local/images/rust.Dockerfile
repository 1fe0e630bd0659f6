# The Rust build base: the Debian base, a C toolchain from Debian, and this machine's Rust
# toolchain (Debian's rustc is too old for the workspace), laid out like the public rust image
# (cargo on PATH, CARGO_HOME /usr/local/cargo). It trusts the certificate authorities the machine
# adds (an egress proxy's here), or cargo could not reach crates.io from inside the build.
# Context: toolchain/ (the sysroot) and ca-certificates/, staged by images.sh.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc g++ libc6-dev make pkg-config ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY ca-certificates /usr/local/share/ca-certificates
RUN update-ca-certificates
COPY toolchain /usr/local/rust
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/rust/bin:/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
