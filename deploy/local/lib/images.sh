# shellcheck shell=bash
# Container images without a Docker engine or a registry: buildah (Debian's package) builds the
# recipes in deploy/docker exactly as users build them with `docker build`, but on base images
# made here from Debian packages (debootstrap) instead of the public ones, which cannot be
# pulled. Every image is saved as a docker-archive tarball in the cache, keyed by its inputs,
# for `ctr images import` on the single-node cluster.

IMAGES_HOME="$STACK_CACHE/images"
IMAGES_DEBIAN_SUITE=bookworm
IMAGES_DEBIAN_MIRROR=${IMAGES_DEBIAN_MIRROR:-http://deb.debian.org/debian}
IMAGES_PREFIX=localhost/segment-autoscaler
IMAGES_TAG=0.1.0
# Debian packages a Rust build stage needs besides the toolchain (as in the public rust image).
IMAGES_RUST_BUILD_PACKAGES="gcc g++ libc6-dev make pkg-config ca-certificates"

# images_buildah ARGS...: buildah with its storage in the cache, away from the system's.
images_buildah() {
  buildah --root "$STACK_CACHE/buildah/root" --runroot "$STACK_CACHE/buildah/runroot" --storage-driver overlay "$@"
}

# images_save REFERENCE TARBALL: the built image as a docker-archive containerd imports.
images_save() {
  rm -f "$2" && images_buildah push --quiet "$1" "docker-archive:$2:$1"
}

# The Debian base: debootstrap's minbase of the suite, imported FROM scratch.
# Prints its reference.
images_debian_base() {
  local ref="$IMAGES_PREFIX/debian:$IMAGES_DEBIAN_SUITE"
  if ! images_buildah inspect --type image "$ref" >/dev/null 2>&1; then
    local work="$IMAGES_HOME/debian-$IMAGES_DEBIAN_SUITE"
    if [[ ! -f $work/rootfs.tar ]]; then
      command -v debootstrap >/dev/null || die "debootstrap is required (cluster install brings it)"
      log "images: debootstrap $IMAGES_DEBIAN_SUITE (minbase) from $IMAGES_DEBIAN_MIRROR"
      rm -rf "$work" && mkdir -p "$work"
      run_logged images-debootstrap debootstrap --variant=minbase "$IMAGES_DEBIAN_SUITE" "$work/rootfs" "$IMAGES_DEBIAN_MIRROR" ||
        die "debootstrap failed"
      # apt's package lists come back with the first `apt-get update` of a build.
      rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin
      tar -C "$work/rootfs" -cf "$work/rootfs.tar" . && rm -rf "$work/rootfs"
    fi
    printf '%s\n' "FROM scratch" "ADD rootfs.tar /" 'CMD ["/bin/bash"]' >"$work/Dockerfile"
    run_logged images-debian images_buildah bud --quiet -t "$ref" "$work" >&2 || die "building $ref failed"
  fi
  echo "$ref"
}

# The Rust build base: the Debian base, a C toolchain from Debian, and this machine's Rust
# toolchain (Debian's rustc is too old for the workspace), laid out like the public rust image
# (cargo on PATH, CARGO_HOME /usr/local/cargo). It trusts the certificate authorities this
# machine adds (/usr/local/share/ca-certificates: an egress proxy's here), or cargo could not
# reach crates.io from inside the build. Prints its reference.
images_rust_base() {
  local version ref
  version=$(rustc --version | awk '{print $2}')
  ref="$IMAGES_PREFIX/rust:$version-$IMAGES_DEBIAN_SUITE"
  images_buildah inspect --type image "$ref" >/dev/null 2>&1 && { echo "$ref"; return; }
  local debian toolchain work="$IMAGES_HOME/rust-context"
  debian=$(images_debian_base)
  toolchain=$(rustc --print sysroot)
  log "images: Rust build base $ref (toolchain $toolchain)"
  rm -rf "$work" && mkdir -p "$work/toolchain" "$work/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$work/ca-certificates/" 2>/dev/null || true
  cp -a "$toolchain/bin" "$toolchain/lib" "$toolchain/libexec" "$work/toolchain/" 2>/dev/null ||
    cp -a "$toolchain/bin" "$toolchain/lib" "$work/toolchain/"
  cat >"$work/Dockerfile" <<DOCKERFILE
ARG DEBIAN_IMAGE
FROM \${DEBIAN_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends $IMAGES_RUST_BUILD_PACKAGES && rm -rf /var/lib/apt/lists/*
COPY ca-certificates /usr/local/share/ca-certificates
RUN update-ca-certificates
COPY toolchain /usr/local/rust
ENV CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/rust/bin:/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
DOCKERFILE
  run_logged images-rust images_buildah bud --quiet --network host --build-arg "DEBIAN_IMAGE=$debian" -t "$ref" "$work" >&2 ||
    die "building $ref failed"
  rm -rf "$work"
  echo "$ref"
}

# images_build_rust NAME: deploy/docker/NAME.Dockerfile on the local Rust base, saved as
# $IMAGES_HOME/NAME-KEY.tar (KEY: the tracked sources, the recipe and the base). Prints the
# tarball's path.
images_build_rust() {
  local name=$1 base key tarball
  base=$(images_rust_base)
  key=$( (cd "$STACK_REPO" && git ls-files -z -- Cargo.toml Cargo.lock src data-generator demo-report benches deploy/docker |
    xargs -0 sha256sum; echo "$base") | sha256sum | cut -c1-16)
  tarball="$IMAGES_HOME/$name-$key.tar"
  if [[ ! -f $tarball ]]; then
    log "images: building $IMAGES_PREFIX/$name:$IMAGES_TAG from deploy/docker/$name.Dockerfile (on $base)"
    run_logged "images-$name" images_buildah bud --quiet --network host --layers=false \
      --build-arg "RUST_IMAGE=$base" -f "$STACK_REPO/deploy/docker/$name.Dockerfile" \
      -t "$IMAGES_PREFIX/$name:$IMAGES_TAG" "$STACK_REPO" >&2 &&
      images_save "$IMAGES_PREFIX/$name:$IMAGES_TAG" "$tarball.partial" && mv "$tarball.partial" "$tarball" ||
      die "building the $name image failed"
  fi
  echo "$tarball"
}

# The images the demo stack runs that this project builds (deploy/docker).
IMAGES_PROJECT=(segment-autoscaler data-generator)

# images_build [--load] [NAME...]: builds what is missing; prints "NAME REFERENCE TARBALL" per
# image. With --load, also imports each into the running single-node cluster's containerd.
images_build() {
  local load=0
  [[ ${1:-} == --load ]] && { load=1; shift; }
  (($# > 0)) || set -- "${IMAGES_PROJECT[@]}"
  command -v buildah >/dev/null || die "buildah is required: run '$0 install cluster' (it brings buildah and debootstrap)"
  ((load == 0)) || cluster_running || die "--load needs the cluster: run '$0 up cluster'"
  local name tarball
  for name in "$@"; do
    case $name in
      segment-autoscaler | data-generator) tarball=$(images_build_rust "$name") ;;
      *) die "unknown image '$name' (expected: ${IMAGES_PROJECT[*]})" ;;
    esac
    ((load == 0)) || cluster_import_image "$tarball"
    echo "$name $IMAGES_PREFIX/$name:$IMAGES_TAG $tarball"
  done
}
