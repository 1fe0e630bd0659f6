# shellcheck shell=bash
# Container images without a Docker engine or a registry: buildah (Debian's package) builds the
# recipes in deploy/docker exactly as users build them with `docker build`, but on base images
# made here (deploy/local/images) from Debian packages (debootstrap) and the artifacts the local
# stack runs, instead of the public ones, which cannot be pulled. Every image the demo runs is
# saved as a docker-archive tarball in the cache, keyed by its inputs, for `ctr images import`
# on the single-node cluster.

IMAGES_HOME="$STACK_CACHE/images"
IMAGES_RECIPES="$STACK_REPO/deploy/local/images"
IMAGES_DEBIAN_SUITE=bookworm
IMAGES_DEBIAN_MIRROR=${IMAGES_DEBIAN_MIRROR:-http://deb.debian.org/debian}
IMAGES_PREFIX=localhost/segment-autoscaler
# The tag of the project's own images, as deploy/k8s/kustomization.yaml gives it (its first
# newTag: the three entries share it).
IMAGES_TAG=$(sed -n 's/^ *newTag: *\([^ ]*\)$/\1/p' "$STACK_REPO/deploy/k8s/kustomization.yaml" | head -n 1)

# images_buildah ARGS...: buildah with its storage in the cache, away from the system's.
images_buildah() {
  buildah --root "$STACK_CACHE/buildah/root" --runroot "$STACK_CACHE/buildah/runroot" --storage-driver overlay "$@"
}

images_present() { images_buildah inspect --type image "$1" >/dev/null 2>&1; }

# images_save REFERENCE TARBALL: the built image as a docker-archive containerd imports.
images_save() {
  rm -f "$2" && images_buildah push --quiet "$1" "docker-archive:$2:$1"
}

# images_key WORD...: 16 hex digits naming the words and the content of those that are files
# (a file counts by its content only, so the key is the same in every clone).
images_key() {
  local word
  for word in "$@"; do
    if [[ -f $word ]]; then sha256sum <"$word"; else echo "$word"; fi
  done | sha256sum | cut -c1-16
}

# images_link SOURCE... DIRECTORY: hard links when the cache shares a file system, else copies.
images_link() { cp -al "$@" 2>/dev/null || cp -a "$@"; }

# images_build_local NAME VERSION STAGE [BUILD-ARG...]: builds deploy/local/images/NAME.Dockerfile
# as $IMAGES_PREFIX/NAME:VERSION-KEY unless that exists; KEY covers the recipe, its helper files
# (deploy/local/images/NAME-*) and the build arguments, VERSION the artifacts the command STAGE
# puts into the build context (given as its argument; it already holds the recipe and helpers).
# Prints the reference.
images_build_local() {
  local name=$1 version=$2 stage=$3 ref arg context
  shift 3
  local build_args=()
  for arg in "$@"; do build_args+=(--build-arg "$arg"); done
  local helpers
  mapfile -t helpers < <(find "$IMAGES_RECIPES" -maxdepth 1 -name "$name-*" | sort)
  ref="$IMAGES_PREFIX/$name:$version-$(images_key "$IMAGES_RECIPES/$name".Dockerfile "${helpers[@]}" "$@")"
  if ! images_present "$ref"; then
    context="$IMAGES_HOME/context-$name"
    rm -rf "$context" && mkdir -p "$context"
    cp "$IMAGES_RECIPES/$name".Dockerfile "$context/Dockerfile"
    ((${#helpers[@]} == 0)) || cp "${helpers[@]}" "$context/"
    "$stage" "$context"
    log "images: building $ref (deploy/local/images/$name.Dockerfile)"
    run_logged "images-$name" images_buildah bud --quiet --network host "${build_args[@]}" -t "$ref" "$context" >&2 ||
      die "building $ref failed"
    rm -rf "$context"
  fi
  echo "$ref"
}

# A context with nothing besides the recipe.
images_stage_nothing() { :; }

# The Debian base: debootstrap's minbase of the suite. Prints its reference.
images_debian_base() {
  local rootfs="$IMAGES_HOME/debian-$IMAGES_DEBIAN_SUITE/rootfs.tar"
  if [[ ! -f $rootfs ]]; then
    command -v debootstrap >/dev/null || die "debootstrap is required (cluster install brings it)"
    log "images: debootstrap $IMAGES_DEBIAN_SUITE (minbase) from $IMAGES_DEBIAN_MIRROR"
    local work=${rootfs%/*}
    rm -rf "$work" && mkdir -p "$work"
    run_logged images-debootstrap debootstrap --variant=minbase "$IMAGES_DEBIAN_SUITE" "$work/rootfs" "$IMAGES_DEBIAN_MIRROR" ||
      die "debootstrap failed"
    # apt's package lists come back with the first `apt-get update` of a build.
    rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin
    tar -C "$work/rootfs" -cf "$rootfs.partial" . && mv "$rootfs.partial" "$rootfs" && rm -rf "$work/rootfs"
  fi
  images_build_local debian "$IMAGES_DEBIAN_SUITE" images_stage_debian
}
images_stage_debian() { images_link "$IMAGES_HOME/debian-$IMAGES_DEBIAN_SUITE/rootfs.tar" "$1/"; }

# The certificate authorities this machine adds (an egress proxy's here) into CONTEXT/ca-certificates.
images_stage_ca_certificates() {
  mkdir -p "$1/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$1/ca-certificates/" 2>/dev/null || true
}

# The Rust build base, with this machine's toolchain. Prints its reference.
images_rust_base() {
  local debian
  debian=$(images_debian_base)
  images_build_local rust "$(rustc --version | awk '{print $2}')-$IMAGES_DEBIAN_SUITE" images_stage_rust "DEBIAN_IMAGE=$debian"
}
images_stage_rust() {
  local toolchain
  toolchain=$(rustc --print sysroot)
  images_stage_ca_certificates "$1"
  mkdir -p "$1/toolchain"
  cp -a "$toolchain/bin" "$toolchain/lib" "$1/toolchain/"
  [[ ! -d $toolchain/libexec ]] || cp -a "$toolchain/libexec" "$1/toolchain/"
}

# The Maven build base. Prints its reference.
images_maven_base() {
  local debian
  debian=$(images_debian_base)
  images_build_local maven "java17-$IMAGES_DEBIAN_SUITE" images_stage_ca_certificates "DEBIAN_IMAGE=$debian"
}

# The Java runtime base. Prints its reference.
images_java_base() {
  local debian
  debian=$(images_debian_base)
  images_build_local java "17-$IMAGES_DEBIAN_SUITE" images_stage_nothing "DEBIAN_IMAGE=$debian"
}

# The Flink base: the local stack's Flink distribution. Prints its reference.
images_flink_base() {
  flink_installed || die "images: Flink is not installed: run '$0 install flink'"
  local java
  java=$(images_java_base)
  images_build_local flink "$FLINK_VERSION-java17" images_stage_flink "JAVA_IMAGE=$java"
}
images_stage_flink() { images_link "$FLINK_HOME_CACHE"/{bin,conf,lib,plugins} "$1/"; }

# images_tarball NAME KEY REFERENCE BUILD...: $IMAGES_HOME/NAME-KEY.tar holding REFERENCE; runs
# BUILD (which builds REFERENCE) only when that tarball is missing. Prints the tarball's path.
images_tarball() {
  local name=$1 key=$2 ref=$3 tarball
  shift 3
  tarball="$IMAGES_HOME/$name-$key.tar"
  if [[ ! -f $tarball ]]; then
    "$@"
    images_save "$ref" "$tarball.partial" && mv "$tarball.partial" "$tarball" || die "saving $ref failed"
    # Older tarballs of this image are never imported again.
    find "$IMAGES_HOME" -maxdepth 1 -name "$name-*.tar" ! -name "${tarball##*/}" -delete
  fi
  echo "$tarball"
}

# images_key_of_sources PATH...: the key of the tracked files below PATHs (relative to the repository).
images_key_of_sources() {
  (cd "$STACK_REPO" && git ls-files -z -- "$@" | xargs -0 sha256sum) | sha256sum | cut -c1-16
}

# images_bud DOCKERFILE REFERENCE [BUILDAH-BUD-ARG...]: a recipe of deploy/docker, built from the
# repository root as users build it.
images_bud() {
  local name=$1 ref=$2
  shift 2
  log "images: building $ref from deploy/docker/$name.Dockerfile"
  run_logged "images-$name" images_buildah bud --quiet --network host "$@" \
    -f "$STACK_REPO/deploy/docker/$name.Dockerfile" -t "$ref" "$STACK_REPO" >&2 || die "building the $name image failed"
}

# A Rust image of deploy/docker (segment-autoscaler or data-generator) on the local Rust base.
# Cargo's caches are mounts, kept by buildah between builds, so no layer is worth keeping.
images_build_rust() {
  local name=$1 base key
  base=$(images_rust_base)
  key=$(images_key "$(images_key_of_sources Cargo.toml Cargo.lock src data-generator demo-report logging benches deploy/docker)" "$base")
  images_tarball "$name" "$key" "$IMAGES_PREFIX/$name:$IMAGES_TAG" \
    images_bud "$name" "$IMAGES_PREFIX/$name:$IMAGES_TAG" --layers=false --build-arg "RUST_IMAGE=$base"
}

# The busy-reader job of deploy/docker on the local Maven and Flink bases; layers are kept so
# Maven's dependency download is reused while only the job's sources change.
images_build_flink_job() {
  local maven flink key
  maven=$(images_maven_base)
  flink=$(images_flink_base)
  key=$(images_key "$(images_key_of_sources deploy/flink-job/pom.xml deploy/flink-job/src deploy/docker/flink-job.Dockerfile)" "$maven" "$flink")
  images_tarball flink-job "$key" "$IMAGES_PREFIX/flink-job:$IMAGES_TAG" \
    images_bud flink-job "$IMAGES_PREFIX/flink-job:$IMAGES_TAG" --layers=true \
    --build-arg "MAVEN_IMAGE=$maven" --build-arg "FLINK_IMAGE=$flink" --build-arg "FLINK_VERSION=$FLINK_VERSION"
}

# images_retag FROM TO: TO names the same image as FROM.
images_retag() { images_buildah tag "$1" "$2" >/dev/null; }

# Pravega standalone from the local stack's classpath (only the local overlay runs it).
images_build_pravega() {
  pravega_installed || die "images: Pravega is not installed: run '$0 install pravega'"
  local java ref
  java=$(images_java_base)
  ref=$(images_build_local pravega "$PRAVEGA_VERSION" images_stage_pravega "JAVA_IMAGE=$java")
  images_tarball pravega "${ref##*:}" "$IMAGES_PREFIX/pravega:$PRAVEGA_VERSION" \
    images_retag "$ref" "$IMAGES_PREFIX/pravega:$PRAVEGA_VERSION"
}
images_stage_pravega() {
  images_link "$PRAVEGA_HOME/lib" "$1/"
  sed "s|$PRAVEGA_HOME/lib|/opt/pravega/lib|g" "$PRAVEGA_HOME/classpath.txt" >"$1/classpath.txt"
}

# Prometheus from the local stack's Debian package (only the local overlay runs it).
images_build_prometheus() {
  prometheus_installed || die "images: Prometheus is not installed: run '$0 install prometheus'"
  local debian ref version=${PROMETHEUS_DEB_VERSION%%+*}
  debian=$(images_debian_base)
  ref=$(images_build_local prometheus "${PROMETHEUS_DEB_VERSION//+/_}" images_stage_prometheus "DEBIAN_IMAGE=$debian")
  images_tarball prometheus "${ref##*:}" "$IMAGES_PREFIX/prometheus:$version" \
    images_retag "$ref" "$IMAGES_PREFIX/prometheus:$version"
}
images_stage_prometheus() { images_link "$PROMETHEUS_HOME/root" "$1/"; }

# curl for tests that call the API server from inside a pod (not part of the demo).
images_build_curl() {
  local debian ref
  debian=$(images_debian_base)
  ref=$(images_build_local curl "$IMAGES_DEBIAN_SUITE" images_stage_nothing "DEBIAN_IMAGE=$debian")
  images_tarball curl "${ref##*:}" "$IMAGES_PREFIX/curl:$IMAGES_DEBIAN_SUITE" \
    images_retag "$ref" "$IMAGES_PREFIX/curl:$IMAGES_DEBIAN_SUITE"
}

# The images the Kubernetes demo runs, in the order they are best built (the slowest last).
IMAGES_ALL=(prometheus pravega flink-job data-generator segment-autoscaler)

# images_reference NAME: the reference the local overlay (deploy/local/k8s) gives image NAME.
images_reference() {
  case $1 in
    pravega) echo "$IMAGES_PREFIX/pravega:$PRAVEGA_VERSION" ;;
    curl) echo "$IMAGES_PREFIX/curl:$IMAGES_DEBIAN_SUITE" ;;
    prometheus) echo "$IMAGES_PREFIX/prometheus:${PROMETHEUS_DEB_VERSION%%+*}" ;;
    *) echo "$IMAGES_PREFIX/$1:$IMAGES_TAG" ;;
  esac
}

# images_build [--load] [NAME...]: builds what is missing; prints "NAME REFERENCE TARBALL" per
# image. With --load, also imports each into the running single-node cluster's containerd.
images_build() {
  local load=0
  [[ ${1:-} == --load ]] && { load=1; shift; }
  (($# > 0)) || set -- "${IMAGES_ALL[@]}"
  command -v buildah >/dev/null || die "buildah is required: run '$0 install cluster' (it brings buildah and debootstrap)"
  ((load == 0)) || cluster_running || die "--load needs the cluster: run '$0 up cluster'"
  local name tarball
  for name in "$@"; do
    case $name in
      segment-autoscaler | data-generator) tarball=$(images_build_rust "$name") ;;
      flink-job) tarball=$(images_build_flink_job) ;;
      pravega) tarball=$(images_build_pravega) ;;
      prometheus) tarball=$(images_build_prometheus) ;;
      curl) tarball=$(images_build_curl) ;;
      *) die "unknown image '$name' (expected: ${IMAGES_ALL[*]} curl)" ;;
    esac
    ((load == 0)) || cluster_import_image "$tarball"
    echo "$name $(images_reference "$name") $tarball"
  done
}
