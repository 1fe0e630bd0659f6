# shellcheck shell=bash
# A real single-node Kubernetes on this machine: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet, kube-proxy (iptables), containerd + runc, the bridge CNI and CoreDNS.
#
# Network rule: the whole node lives in a network namespace the stack creates ($CLUSTER_NETNS),
# joined to the host by one veth pair. The node has no default route and the host does not
# forward, so pods reach the node, each other, Services and the host's end of the veth, and
# nothing outside the machine. Cluster DNS answers cluster names only (no upstream forwarder).
# kube-proxy's rules live in the node's namespace and go with it.
#
# No registry is reachable: the sandbox ("pause") image, CoreDNS and the probe image are built
# here with buildah from what the stack builds or Debian ships, and imported into containerd.
#
# Processes run in the node's namespace through `nsenter --net` only (not `ip netns exec`, which
# would give each its own mount namespace: the kubelet's volume mounts must be seen by containerd).

CLUSTER_NETNS=${CLUSTER_NETNS:-sa-cluster}
CLUSTER_HOST_IF=sa-cluster-h           # the host's end of the veth (15 characters at most)
CLUSTER_NODE_IF=sa-cluster-n           # the node's end, inside $CLUSTER_NETNS
CLUSTER_HOST_IP=10.213.0.1
CLUSTER_NODE_IP=10.213.0.2
CLUSTER_POD_CIDR=10.244.0.0/24
CLUSTER_SERVICE_CIDR=10.96.0.0/24
CLUSTER_APISERVER_SERVICE_IP=10.96.0.1
CLUSTER_DNS_IP=10.96.0.10
CLUSTER_DOMAIN=cluster.local
CLUSTER_NODE_NAME=stack-node
CLUSTER_APISERVER_PORT=6443

COREDNS_VERSION=${COREDNS_VERSION:-v1.15.0}
# Debian bookworm packages the node runs on; `install` puts exactly these versions in place.
CLUSTER_DEBIAN_PACKAGES=(
  "containerd=1.6.20~ds1-1+deb12u3"
  "runc=1.1.5+ds1-1+deb12u1"
  "containernetworking-plugins=1.1.1+ds1-3+b5"
  "iptables=1.8.9-2"
  "buildah=1.28.2+ds1-3+deb12u1+b3"
  "busybox-static=1:1.35.0-4+deb12u1+b1"
  "debootstrap=1.0.128+nmu2+deb12u2"
)
CLUSTER_CNI_BIN=/usr/lib/cni

CLUSTER_HOME="$STACK_CACHE/cluster-$KUBE_VERSION-coredns-$COREDNS_VERSION"
CLUSTER_IMAGES="$CLUSTER_HOME/images"
CLUSTER_RUN="$STACK_RUN/cluster"
CLUSTER_KUBECONFIG="$CLUSTER_RUN/admin.kubeconfig"
CLUSTER_CONTAINERD_SOCK="$CLUSTER_RUN/containerd/containerd.sock"
CLUSTER_PAUSE_IMAGE=localhost/segment-autoscaler/pause:1
CLUSTER_COREDNS_IMAGE=localhost/segment-autoscaler/coredns:$COREDNS_VERSION
CLUSTER_PROBE_IMAGE=localhost/segment-autoscaler/busybox:1
# What each node process is, in start order (the inverse is the stop order).
# Paths the kubelet and containerd use whatever their configuration says (device plugin socket,
# container log links, the CNI result cache and lock, shim sockets). `up` records which existed;
# `down` removes those it created and, in those that existed, only this node's entries.
CLUSTER_HOST_PATHS=(/var/lib/kubelet /var/log/containers /var/lib/cni /etc/cni /run/containerd)
CLUSTER_PROCESSES=(cluster-etcd cluster-apiserver cluster-controller-manager cluster-scheduler
  cluster-containerd cluster-kubelet cluster-proxy)

cluster_binaries() { echo kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl etcd; }

cluster_installed() {
  local b
  for b in $(cluster_binaries); do [[ -x $KUBE_HOME/bin/$b ]] || return 1; done
  [[ -x $CLUSTER_HOME/bin/coredns ]] || return 1
  for b in pause coredns busybox; do [[ -f $CLUSTER_IMAGES/$b.tar ]] || return 1; done
  cluster_debian_packages_present
}

# cluster_debian_packages_present: every pinned Debian package is installed at its version.
cluster_debian_packages_present() {
  local spec
  for spec in "${CLUSTER_DEBIAN_PACKAGES[@]}"; do
    [[ $(dpkg-query -W -f='${Version}' "${spec%%=*}" 2>/dev/null) == "${spec#*=}" ]] || return 1
  done
}

cluster_install() {
  cluster_installed && return 0
  command -v go >/dev/null || die "go is required to build the cluster's binaries"
  if ! cluster_debian_packages_present; then
    command -v apt-get >/dev/null || die "apt-get is required for containerd, runc, the CNI plugins, iptables and buildah"
    log "cluster: installing Debian packages ${CLUSTER_DEBIAN_PACKAGES[*]}"
    apt_lists_know "${CLUSTER_DEBIAN_PACKAGES[@]}"
    DEBIAN_FRONTEND=noninteractive run_logged cluster-apt apt-get install -y --no-install-recommends \
      "${CLUSTER_DEBIAN_PACKAGES[@]}" || die "installing the cluster's Debian packages failed"
  fi
  kubernetes_install
  cluster_build_kubernetes
  cluster_build_coredns
  cluster_build_images
  log "cluster: installed (binaries in $KUBE_HOME/bin and $CLUSTER_HOME/bin, images in $CLUSTER_IMAGES)"
}

# The node's Kubernetes binaries, from the wrapper module kubernetes_install made.
cluster_build_kubernetes() {
  local src="$KUBE_HOME/src" b missing=()
  for b in kube-controller-manager kube-scheduler kubelet kube-proxy; do
    [[ -x $KUBE_HOME/bin/$b ]] || missing+=("$b")
  done
  ((${#missing[@]} > 0)) || return 0
  log "cluster: building ${missing[*]} $KUBE_VERSION (same module as kube-apiserver)"
  # Keeps the node's commands in the module graph for `go mod tidy`.
  cat >"$src/cluster_tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-proxy/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
	_ "k8s.io/kubernetes/cmd/kubelet/app"
)
GO
  (cd "$src" && run_logged cluster-mod-tidy go mod tidy) || die "go mod tidy for the node's binaries failed"
  for b in "${missing[@]}"; do
    (cd "$src" && run_logged "cluster-build-$b" go build -trimpath -o "$KUBE_HOME/bin/$b" "k8s.io/kubernetes/cmd/$b") ||
      die "$b build failed"
  done
}

# CoreDNS from the Go module proxy, static (it runs FROM scratch). `go install pkg@version`
# asks the proxy for a version list it refuses; a module requiring the version builds.
cluster_build_coredns() {
  [[ -x $CLUSTER_HOME/bin/coredns ]] && return 0
  log "cluster: building CoreDNS $COREDNS_VERSION from the Go module proxy"
  local src="$CLUSTER_HOME/coredns-src"
  rm -rf "$src" && mkdir -p "$src" "$CLUSTER_HOME/bin"
  printf '%s\n' "module segment-autoscaler.local/coredns-build" "" "go 1.26.0" >"$src/go.mod"
  (cd "$src" &&
    run_logged coredns-get go get "github.com/coredns/coredns@$COREDNS_VERSION" &&
    CGO_ENABLED=0 run_logged coredns-build go build -trimpath -o "$CLUSTER_HOME/bin/coredns" github.com/coredns/coredns) ||
    die "CoreDNS build failed"
}

# cluster_build_image NAME REFERENCE CONTEXT: builds CONTEXT/Dockerfile and saves the image as a
# docker-archive tarball $CLUSTER_IMAGES/NAME.tar that containerd imports under REFERENCE.
cluster_build_image() {
  local name=$1 ref=$2 context=$3
  mkdir -p "$CLUSTER_IMAGES"
  run_logged "cluster-image-$name" images_buildah bud --quiet --layers=false -t "$ref" "$context" &&
    run_logged "cluster-image-$name-save" images_save "$ref" "$CLUSTER_IMAGES/$name.tar" ||
    die "building the $name image failed"
}

# The images the node itself needs: the pod sandbox (a pause program built here), CoreDNS and a
# probe with busybox (Debian's static build) for the DNS check of `up`.
cluster_build_images() {
  local work="$CLUSTER_HOME/image-contexts"
  rm -rf "$work" && mkdir -p "$work/pause" "$work/coredns" "$work/busybox"
  [[ -f $CLUSTER_IMAGES/pause.tar ]] || {
    log "cluster: building the sandbox image $CLUSTER_PAUSE_IMAGE"
    gcc -static -Os -o "$work/pause/pause" "$STACK_REPO/deploy/local/cluster/pause.c" || die "compiling pause.c failed"
    printf '%s\n' "FROM scratch" "COPY pause /pause" "USER 65535:65535" 'ENTRYPOINT ["/pause"]' >"$work/pause/Dockerfile"
    cluster_build_image pause "$CLUSTER_PAUSE_IMAGE" "$work/pause"
  }
  [[ -f $CLUSTER_IMAGES/coredns.tar ]] || {
    log "cluster: building the image $CLUSTER_COREDNS_IMAGE"
    cp "$CLUSTER_HOME/bin/coredns" "$work/coredns/coredns"
    printf '%s\n' "FROM scratch" "COPY coredns /coredns" "USER 65532:65532" 'ENTRYPOINT ["/coredns"]' >"$work/coredns/Dockerfile"
    cluster_build_image coredns "$CLUSTER_COREDNS_IMAGE" "$work/coredns"
  }
  [[ -f $CLUSTER_IMAGES/busybox.tar ]] || {
    log "cluster: building the probe image $CLUSTER_PROBE_IMAGE"
    cp /bin/busybox "$work/busybox/busybox"
    printf '%s\n' "FROM scratch" "COPY busybox /bin/busybox" 'ENTRYPOINT ["/bin/busybox"]' >"$work/busybox/Dockerfile"
    cluster_build_image busybox "$CLUSTER_PROBE_IMAGE" "$work/busybox"
  }
}

# cluster_import_image TARBALL: a docker-archive into containerd's namespace for Kubernetes;
# nothing when this node already imported that tarball since it was last written (an import
# costs 20-50 s and every cluster test deploys; containerd's store goes with $CLUSTER_RUN).
cluster_import_image() {
  local marker
  marker="$CLUSTER_RUN/containerd/imported/$(basename "$1")"
  [[ -e $marker && $marker -nt $1 ]] && return 0
  run_logged "cluster-import-$(basename "$1" .tar)" ctr -a "$CLUSTER_CONTAINERD_SOCK" -n k8s.io images import "$1" ||
    die "cluster: importing $1 failed"
  mkdir -p "${marker%/*}" && touch "$marker"
}

# cluster_in_node CMD...: CMD in the node's network namespace (and only that namespace).
cluster_in_node() { nsenter --net="/run/netns/$CLUSTER_NETNS" "$@"; }

cluster_kubectl() { "$KUBE_HOME/bin/kubectl" --kubeconfig "$CLUSTER_KUBECONFIG" "$@"; }

# cluster_external_metrics_served: the aggregator serves external.metrics.k8s.io on the cluster
# (whichever peer's adapter registered it: keda or prometheus-adapter).
cluster_external_metrics_served() {
  cluster_kubectl --request-timeout=10s get --raw /apis/external.metrics.k8s.io/v1beta1 >/dev/null
}

cluster_endpoint() { echo "https://$CLUSTER_NODE_IP:$CLUSTER_APISERVER_PORT"; }

# The node's network namespace and its one link to the host. The host routes the pod and
# Service ranges to the node (so tests on the host reach them); the node routes nothing else.
cluster_make_network() {
  ls /run/netns 2>/dev/null | grep '^cni-' >"$CLUSTER_RUN/netns-before" || true
  # The first `ip netns add` on a machine bind-mounts /run/netns onto itself; `down` takes that
  # mount back when this stack made it and no namespace is left in it.
  cluster_run_netns_mounted && echo mounted >"$CLUSTER_RUN/run-netns-before" || : >"$CLUSTER_RUN/run-netns-before"
  local path
  for path in "${CLUSTER_HOST_PATHS[@]}"; do [[ -e $path ]] && echo "$path"; done >"$CLUSTER_RUN/paths-before" || true
  cluster_host_rules >"$CLUSTER_RUN/iptables-before"
  ip netns add "$CLUSTER_NETNS" &&
    ip link add "$CLUSTER_HOST_IF" type veth peer name "$CLUSTER_NODE_IF" netns "$CLUSTER_NETNS" &&
    ip addr add "$CLUSTER_HOST_IP/30" dev "$CLUSTER_HOST_IF" &&
    ip link set "$CLUSTER_HOST_IF" up &&
    ip route add "$CLUSTER_POD_CIDR" via "$CLUSTER_NODE_IP" dev "$CLUSTER_HOST_IF" &&
    ip route add "$CLUSTER_SERVICE_CIDR" via "$CLUSTER_NODE_IP" dev "$CLUSTER_HOST_IF" &&
    cluster_in_node ip link set lo up &&
    cluster_in_node ip addr add "$CLUSTER_NODE_IP/30" dev "$CLUSTER_NODE_IF" &&
    cluster_in_node ip link set "$CLUSTER_NODE_IF" up &&
    # The node's own processes (kubelet probes, the apiserver's webhooks) reach Service
    # addresses through kube-proxy's OUTPUT rules; the route only lets the packet leave.
    cluster_in_node ip route add "$CLUSTER_SERVICE_CIDR" dev "$CLUSTER_NODE_IF" &&
    # Per namespace: forwarding between pods and the veth, and bridged pod-to-pod traffic
    # through iptables so Service replies are un-NATed.
    cluster_in_node sysctl -q -w net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
}

# The cluster's PKI and identities. Every component authenticates with a token of its own
# identity (RBAC and the Node authorizer see the usual users); the kubelet serves with a
# certificate signed by the cluster CA. The aggregation layer is configured as kubeadm does
# (a front-proxy client certificate under its own CA), so extension API servers such as KEDA's
# metrics adapter authenticate the requests the API server proxies to them.
cluster_make_pki() {
  local pki="$CLUSTER_RUN/pki" sans
  sans="IP:$CLUSTER_NODE_IP,IP:$CLUSTER_APISERVER_SERVICE_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes"
  sans+=",DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN"
  mkdir -p "$pki"
  (
    cd "$pki" &&
      kubernetes_make_ca ca segment-autoscaler-cluster-ca &&
      kubernetes_sign_certificate apiserver "/CN=kube-apiserver" serverAuth "$sans" &&
      kubernetes_sign_certificate kubelet "/CN=system:node:$CLUSTER_NODE_NAME/O=system:nodes" serverAuth \
        "IP:$CLUSTER_NODE_IP,DNS:$CLUSTER_NODE_NAME" &&
      kubernetes_sign_certificate apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client" clientAuth "" &&
      openssl genrsa -out sa.key 2048 &&
      openssl rsa -in sa.key -pubout -out sa.pub &&
      kubernetes_make_ca front-proxy-ca segment-autoscaler-cluster-front-proxy-ca &&
      kubernetes_sign_certificate front-proxy-client "/CN=front-proxy-client" clientAuth "" front-proxy-ca
  ) >"$CLUSTER_RUN/pki.log" 2>&1 || fail_with_log "cluster pki" "$CLUSTER_RUN/pki.log"
}

# cluster_identity NAME USER GROUP: a token for USER in GROUP, and NAME.kubeconfig using it.
cluster_identity() {
  local token
  token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
  echo "$token,$2,$2,$3" >>"$CLUSTER_RUN/tokens.csv"
  write_token_kubeconfig "$CLUSTER_RUN/$1.kubeconfig" "$(cluster_endpoint)" "$CLUSTER_RUN/pki/ca.crt" "$2" "$token"
}

cluster_write_config() {
  local run=$CLUSTER_RUN
  mkdir -p "$run/cni/net.d" "$run/containerd" "$run/kubelet" "$run/pod-logs"
  cat >"$run/containerd/config.toml" <<TOML
# Generated by deploy/local/stack; edit deploy/local/lib/cluster.sh instead.
version = 2
root = "$run/containerd/root"
state = "$run/containerd/state"
[grpc]
  address = "$CLUSTER_CONTAINERD_SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$run/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$CLUSTER_PAUSE_IMAGE"
  # Root here lacks CAP_SYS_RESOURCE: no container may ask for a lower OOM score than
  # containerd's own (the kubelet asks -998 for sandboxes, which runc cannot set).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$run/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CLUSTER_CNI_BIN"
    conf_dir = "$run/cni/net.d"
TOML
  # No masquerade: pod traffic never leaves the node's namespace, which has no default route.
  cat >"$run/cni/net.d/10-stack.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "stack",
  "plugins": [
    {
      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$run/cni/ipam",
        "ranges": [[{"subnet": "$CLUSTER_POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
JSON
  # Pods' resolv.conf gets the cluster DNS and search path only: no host resolver leaks in.
  echo "# cluster DNS only; see deploy/local/lib/cluster.sh" >"$run/resolv.conf"
  cat >"$run/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine mounts cgroup v1; kubelet 1.35 refuses it unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CLUSTER_CONTAINERD_SOCK
address: $CLUSTER_NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
tlsCertFile: $run/pki/kubelet.crt
tlsPrivateKeyFile: $run/pki/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $run/pki/ca.crt}
authorization: {mode: Webhook}
clusterDNS: [$CLUSTER_DNS_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: $run/resolv.conf
podLogsDir: $run/pod-logs
failSwapOn: false
# Images cannot be pulled again here: never collect them, and evict only when really short.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
serializeImagePulls: false
YAML
  cat >"$run/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $run/kube-proxy.kubeconfig}
hostnameOverride: $CLUSTER_NODE_NAME
clusterCIDR: $CLUSTER_POD_CIDR
bindAddress: $CLUSTER_NODE_IP
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
# Leave the machine-wide conntrack table size alone.
conntrack: {maxPerCore: 0}
iptables: {localhostNodePorts: false}
YAML
}

cluster_apiserver_ready() {
  apiserver_ready "$(cluster_endpoint)" "$CLUSTER_RUN/pki/ca.crt" "$(cluster_admin_token)"
}

cluster_admin_token() { awk -F, '$2 == "stack-admin" { print $1 }' "$CLUSTER_RUN/tokens.csv"; }

# cluster_start NAME CMD...: a node process, in the node's network namespace.
cluster_start() {
  local name=$1; shift
  start_process "$name" "$CLUSTER_RUN/$name.log" nsenter --net="/run/netns/$CLUSTER_NETNS" "$@"
}

cluster_up() {
  cluster_installed || die "the cluster is not installed: run '$0 install cluster'"
  if process_alive cluster-apiserver; then log "cluster: already running"; return 0; fi
  [[ ! -e /run/netns/$CLUSTER_NETNS ]] || die "cluster: network namespace $CLUSTER_NETNS exists: run '$0 down cluster' first"
  rm -rf "$CLUSTER_RUN" && mkdir -p "$CLUSTER_RUN"
  cluster_make_network || die "cluster: could not make the node's network namespace"
  cluster_make_pki
  : >"$CLUSTER_RUN/tokens.csv"
  cluster_identity admin stack-admin system:masters
  cluster_identity controller-manager system:kube-controller-manager ""
  cluster_identity scheduler system:kube-scheduler ""
  cluster_identity kubelet "system:node:$CLUSTER_NODE_NAME" system:nodes
  cluster_identity kube-proxy system:kube-proxy ""
  cluster_write_config
  local run=$CLUSTER_RUN pki=$CLUSTER_RUN/pki bin=$KUBE_HOME/bin

  log "cluster: starting a single-node Kubernetes $KUBE_VERSION in network namespace $CLUSTER_NETNS ($(cluster_endpoint))"
  cluster_start cluster-etcd "$bin/etcd" --name node --data-dir "$run/etcd-data" --unsafe-no-fsync \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster node=http://127.0.0.1:2380 --log-level warn
  wait_for 60 cluster-etcd cluster_in_node curl -fsS http://127.0.0.1:2379/health ||
    fail_with_log etcd "$run/cluster-etcd.log" || return 1

  cluster_start cluster-apiserver "$bin/kube-apiserver" \
    --etcd-servers http://127.0.0.1:2379 --bind-address 0.0.0.0 --advertise-address "$CLUSTER_NODE_IP" \
    --secure-port "$CLUSTER_APISERVER_PORT" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" --client-ca-file "$pki/ca.crt" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP \
    --authorization-mode Node,RBAC --anonymous-auth=false --token-auth-file "$run/tokens.csv" \
    --service-account-issuer "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range "$CLUSTER_SERVICE_CIDR" --allow-privileged=true \
    --enable-admission-plugins NodeRestriction --profiling=false \
    --requestheader-client-ca-file "$pki/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$pki/front-proxy-client.crt" --proxy-client-key-file "$pki/front-proxy-client.key"
  wait_for 120 cluster-apiserver cluster_apiserver_ready ||
    fail_with_log kube-apiserver "$run/cluster-apiserver.log" || return 1
  # The API server's own identity towards kubelets (logs, exec, port-forward).
  cluster_kubectl create clusterrolebinding kube-apiserver-kubelet-api-admin --clusterrole system:kubelet-api-admin \
    --user kube-apiserver-kubelet-client >"$run/rbac.log" 2>&1 || fail_with_log "cluster RBAC" "$run/rbac.log" || return 1

  cluster_start cluster-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig "$run/controller-manager.kubeconfig" --authentication-kubeconfig "$run/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$run/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --service-cluster-ip-range "$CLUSTER_SERVICE_CIDR" --cluster-cidr "$CLUSTER_POD_CIDR" --allocate-node-cidrs=false \
    --profiling=false
  cluster_start cluster-scheduler "$bin/kube-scheduler" \
    --kubeconfig "$run/scheduler.kubeconfig" --authentication-kubeconfig "$run/scheduler.kubeconfig" \
    --authorization-kubeconfig "$run/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --profiling=false

  cluster_start cluster-containerd containerd --config "$run/containerd/config.toml"
  wait_for 60 cluster-containerd ctr -a "$CLUSTER_CONTAINERD_SOCK" version ||
    fail_with_log containerd "$run/cluster-containerd.log" || return 1
  local image
  for image in pause coredns busybox; do cluster_import_image "$CLUSTER_IMAGES/$image.tar"; done

  cluster_start_kubelet
  # iptables-restore and friends from Debian's iptables package.
  cluster_start cluster-proxy "$bin/kube-proxy" --config "$run/kube-proxy.yaml"

  wait_for 180 cluster-kubelet cluster_kubectl wait --for=condition=Ready "node/$CLUSTER_NODE_NAME" --timeout 5s ||
    fail_with_log kubelet "$run/cluster-kubelet.log" || return 1
  cluster_start_dns || return 1
  cluster_check_dns || return 1
  log "cluster: node $CLUSTER_NODE_NAME Ready, Services resolve by name (CLUSTER_KUBECONFIG=$CLUSTER_KUBECONFIG)"
}

# Cluster DNS: CoreDNS with the kubernetes plugin and nothing else to ask (no `forward`), so a
# name outside the cluster gets no answer from anywhere. It listens on 1053 as a non-root user;
# the kube-dns Service maps 53 to it.
cluster_start_dns() {
  cluster_kubectl apply -f - >"$CLUSTER_RUN/dns.log" 2>&1 <<YAML || fail_with_log "cluster DNS" "$CLUSTER_RUN/dns.log" || return 1
apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- apiGroups: [""]
  resources: [services, namespaces, pods]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects:
- {kind: ServiceAccount, name: coredns, namespace: kube-system}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  Corefile: |
    .:1053 {
        errors
        health :8080
        ready :8181
        kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
        }
        cache 30
        loop
        reload
    }
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  replicas: 1
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      serviceAccountName: coredns
      priorityClassName: system-cluster-critical
      dnsPolicy: Default
      containers:
      - name: coredns
        image: $CLUSTER_COREDNS_IMAGE
        imagePullPolicy: Never
        args: [-conf, /etc/coredns/Corefile]
        ports:
        - {name: dns, containerPort: 1053, protocol: UDP}
        - {name: dns-tcp, containerPort: 1053, protocol: TCP}
        resources:
          requests: {cpu: 50m, memory: 32Mi}
          limits: {memory: 128Mi}
        securityContext:
          runAsNonRoot: true
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}
        livenessProbe:
          httpGet: {path: /health, port: 8080}
          periodSeconds: 10
        readinessProbe:
          httpGet: {path: /ready, port: 8181}
          periodSeconds: 2
        volumeMounts:
        - {name: config, mountPath: /etc/coredns, readOnly: true}
      volumes:
      - name: config
        configMap: {name: coredns}
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  selector: {k8s-app: kube-dns}
  clusterIP: $CLUSTER_DNS_IP
  ports:
  - {name: dns, port: 53, targetPort: 1053, protocol: UDP}
  - {name: dns-tcp, port: 53, targetPort: 1053, protocol: TCP}
YAML
  cluster_kubectl -n kube-system rollout status deployment/coredns --timeout 120s >>"$CLUSTER_RUN/dns.log" 2>&1 ||
    fail_with_log "cluster DNS" "$CLUSTER_RUN/dns.log"
}

# A pod resolves a Service name through the cluster DNS (a bounded number of tries).
cluster_check_dns() {
  local name="kubernetes.default.svc.$CLUSTER_DOMAIN"
  cluster_kubectl -n default delete pod stack-dns-check --ignore-not-found --wait=false >/dev/null 2>&1
  cluster_kubectl -n default apply -f - >"$CLUSTER_RUN/dns-check.log" 2>&1 <<YAML || fail_with_log "cluster DNS check" "$CLUSTER_RUN/dns-check.log" || return 1
apiVersion: v1
kind: Pod
metadata: {name: stack-dns-check}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  containers:
  - name: check
    image: $CLUSTER_PROBE_IMAGE
    imagePullPolicy: Never
    command: [/bin/busybox, sh, -c, 'for i in \$(seq 30); do nslookup $name && exit 0; sleep 1; done; exit 1']
    securityContext: {runAsUser: 65534, allowPrivilegeEscalation: false}
YAML
  wait_for 90 cluster-kubelet cluster_pod_succeeded default stack-dns-check || {
    cluster_kubectl -n default logs stack-dns-check >>"$CLUSTER_RUN/dns-check.log" 2>&1
    fail_with_log "cluster DNS check (a pod resolving $name)" "$CLUSTER_RUN/dns-check.log"
    return 1
  }
  cluster_kubectl -n default logs stack-dns-check >>"$CLUSTER_RUN/dns-check.log" 2>&1
  cluster_kubectl -n default delete pod stack-dns-check --wait=false >/dev/null 2>&1
}

# cluster_pod_succeeded NAMESPACE POD: the pod ran to success (fails fast when it failed).
cluster_pod_succeeded() {
  local phase
  phase=$(cluster_kubectl -n "$1" get pod "$2" -o 'jsonpath={.status.phase}' 2>/dev/null)
  [[ $phase == Failed ]] && return 2
  [[ $phase == Succeeded ]]
}

# Stops every node process, then removes what they leave behind: container processes and
# shims, mounts under the run directory, the pods' network namespaces, the node's namespace
# (with it the veth pair, the bridge and kube-proxy's rules) and the pods' cgroups.
cluster_down() {
  [[ -d $CLUSTER_RUN ]] || return 0
  local i name
  for ((i = ${#CLUSTER_PROCESSES[@]} - 1; i >= 0; i--)); do
    name=${CLUSTER_PROCESSES[$i]}
    # Containers outlive the kubelet and containerd: stop them after the kubelet, before
    # containerd's shims go.
    [[ $name == cluster-containerd ]] && cluster_kill_containers
    stop_process "$name"
  done
  cluster_kill_containers
  local mounts
  mapfile -t mounts < <(findmnt -rn -o TARGET | grep -F "$CLUSTER_RUN/" | sort -r)
  for name in "${mounts[@]}"; do umount -l "$name" 2>/dev/null || true; done
  if [[ -f $CLUSTER_RUN/netns-before ]]; then
    for name in $(ls /run/netns 2>/dev/null | grep '^cni-' | grep -vxFf "$CLUSTER_RUN/netns-before"); do
      ip netns del "$name" 2>/dev/null || true
    done
  fi
  if [[ -e /run/netns/$CLUSTER_NETNS ]]; then ip netns del "$CLUSTER_NETNS" || true; fi
  if cluster_left_run_netns_mount; then umount /run/netns || true; fi
  ip link del "$CLUSTER_HOST_IF" 2>/dev/null || true
  cluster_remove_pod_cgroups
  cluster_remove_host_paths
  cluster_check_nothing_left
}

cluster_run_netns_mounted() { findmnt -rn -o TARGET | grep -qxF /run/netns; }

# cluster_left_run_netns_mount: /run/netns is a mount this stack's `up` made, and it is empty.
cluster_left_run_netns_mount() {
  [[ -f $CLUSTER_RUN/run-netns-before && ! -s $CLUSTER_RUN/run-netns-before ]] &&
    cluster_run_netns_mounted && [[ -z $(ls -A /run/netns 2>/dev/null) ]]
}

# The host's iptables rules (the node's live in its own namespace and must not appear here).
cluster_host_rules() { iptables-save 2>/dev/null | grep -E '^(-A|:)' | sed 's/ \[[0-9]*:[0-9]*\]$//' || true; }

# Fails, naming each, when a process, mount, namespace, interface or host iptables rule of the
# node is still there after `down`.
cluster_check_nothing_left() {
  local left=()
  pgrep -f -- "$CLUSTER_RUN/" >/dev/null && left+=("processes: $(pgrep -d, -f -- "$CLUSTER_RUN/")")
  findmnt -rn -o TARGET | grep -qF "$CLUSTER_RUN/" && left+=("mounts under $CLUSTER_RUN")
  [[ -e /run/netns/$CLUSTER_NETNS ]] && left+=("network namespace $CLUSTER_NETNS")
  ip link show "$CLUSTER_HOST_IF" >/dev/null 2>&1 && left+=("interface $CLUSTER_HOST_IF")
  cluster_left_run_netns_mount && left+=("the mount on /run/netns")
  if [[ -f $CLUSTER_RUN/iptables-before ]] && ! cluster_host_rules | cmp -s - "$CLUSTER_RUN/iptables-before"; then
    left+=("host iptables rules changed")
  fi
  ((${#left[@]} == 0)) || { log "cluster: left behind after down: ${left[*]}"; return 1; }
}

cluster_remove_host_paths() {
  [[ -f $CLUSTER_RUN/paths-before ]] || return 0
  local path link
  for path in "${CLUSTER_HOST_PATHS[@]}"; do
    if ! grep -qxF "$path" "$CLUSTER_RUN/paths-before"; then
      rm -rf "$path"
      continue
    fi
    case $path in
      /var/log/containers)
        for link in /var/log/containers/*.log; do
          [[ -L $link && $(readlink "$link") == "$CLUSTER_RUN/"* ]] && rm -f "$link"
        done
        ;;
      /var/lib/cni) rm -f /var/lib/cni/results/stack-* ;;
    esac
  done
}

# The processes of every container the node ran (by the kubelet's cgroups, cgroupfs driver) and
# the containerd shims serving this node's containerd.
cluster_kill_containers() {
  local procs
  procs=$(cat /sys/fs/cgroup/pids/kubepods/cgroup.procs /sys/fs/cgroup/pids/kubepods/*/cgroup.procs \
    /sys/fs/cgroup/pids/kubepods/*/*/cgroup.procs /sys/fs/cgroup/pids/kubepods/*/*/*/cgroup.procs 2>/dev/null | sort -u) || true
  [[ -z $procs ]] || kill -KILL $procs 2>/dev/null || true
  pkill -KILL -f -- "containerd-shim-runc-v2 .*-address $CLUSTER_CONTAINERD_SOCK" 2>/dev/null || true
}

# The kubelet's cgroup tree (cgroupfs driver: kubepods under every v1 hierarchy), deepest first.
cluster_remove_pod_cgroups() {
  local dir
  for dir in /sys/fs/cgroup/*/kubepods; do
    [[ -d $dir ]] || continue
    find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

# cluster_start_kubelet: the node's kubelet, on the configuration `up` wrote (also how the
# fault kubelet-restart brings it back).
cluster_start_kubelet() {
  local run=$CLUSTER_RUN
  cluster_start cluster-kubelet "$KUBE_HOME/bin/kubelet" --config "$run/kubelet/config.yaml" \
    --kubeconfig "$run/kubelet.kubeconfig" --root-dir "$run/kubelet" --cert-dir "$run/kubelet/pki" \
    --hostname-override "$CLUSTER_NODE_NAME" --node-ip "$CLUSTER_NODE_IP"
}

# cluster_running: exit status 0 when the node is up and its API answers.
cluster_running() {
  process_alive cluster-apiserver && process_alive cluster-kubelet && cluster_apiserver_ready
}

# cluster_endpoints: where the cluster answers, for `stack status`.
cluster_endpoints() {
  echo "$(cluster_endpoint) (node $CLUSTER_NODE_NAME in netns $CLUSTER_NETNS, kubeconfig $CLUSTER_KUBECONFIG)"
}

# The namespace deploy/k8s puts the demo in.
CLUSTER_DEMO_NAMESPACE=segment-autoscaler-demo
# The local volume bound to the demo's claim flink-data (deploy/local/k8s/one-node.yaml).
CLUSTER_FLINK_DATA_VOLUME=segment-autoscaler-demo-flink-data

# cluster_deploy_demo [--without-generator] [COMPONENT...]: deploy/local/k8s (deploy/k8s with
# the images built here) on the cluster, with the kustomize COMPONENTs (paths from the
# repository root, e.g. deploy/k8s/prewarmed) and, with --without-generator, the data generator
# at zero replicas (so that only the caller changes the stream's segments); with
# deploy/k8s/secured, the Secrets it asks for first (security_cluster_secrets). A namespace left by
# an earlier run is deleted first, and Flink's local volume (the claim flink-data) made anew,
# empty. Returns once every Deployment has its pods Ready and the Flink JobManager is Ready (at
# most 600 s), printing "ready after N s" (counted from the apply).
# The one way the demo and the tests deploy the stack (`deploy/local/stack demo-deploy`).
cluster_deploy_demo() {
  local without_generator=0 components=() ns=$CLUSTER_DEMO_NAMESPACE c
  while (($#)); do
    case $1 in
      --without-generator) without_generator=1 ;;
      *) components+=("$1") ;;
    esac
    shift
  done
  cluster_running || die "the cluster is not running: deploy/local/stack up cluster"
  if cluster_kubectl --request-timeout=30s get namespace "$ns" >/dev/null 2>&1; then
    log "deleting the namespace $ns left by an earlier run"
    cluster_kubectl --request-timeout=30s delete namespace "$ns" --wait=true --timeout=180s >/dev/null || die "namespace $ns not deleted in 180 s"
  fi
  # Flink's checkpoints and HA metadata (the claim flink-data): a local volume on the node, empty
  # at each deploy (an earlier run's HA data would bring its job back).
  cluster_kubectl --request-timeout=30s delete persistentvolume "$CLUSTER_FLINK_DATA_VOLUME" --ignore-not-found --wait=true --timeout=60s >/dev/null ||
    die "the volume $CLUSTER_FLINK_DATA_VOLUME left by an earlier run was not deleted"
  rm -rf "$CLUSTER_RUN/flink-data" && mkdir -p "$CLUSTER_RUN/flink-data"
  # The component secured/ asks for Secrets: made from the stack's CA and accounts.
  for c in "${components[@]}"; do
    [[ $c != deploy/k8s/secured ]] || security_cluster_secrets "$ns"
  done
  # kustomize takes only relative paths to other directories.
  local overlay="$STACK_RUN/demo-overlay"
  mkdir -p "$overlay"
  {
    echo "apiVersion: kustomize.config.k8s.io/v1beta1"
    echo "kind: Kustomization"
    echo "resources: [$(realpath --relative-to="$overlay" "$STACK_REPO/deploy/local/k8s"), flink-data.yaml]"
    if ((${#components[@]})); then
      echo "components:"
      for c in "${components[@]}"; do echo "  - $(realpath --relative-to="$overlay" "$STACK_REPO/$c")"; done
    fi
    if ((without_generator)); then echo "replicas: [{name: data-generator, count: 0}]"; fi
  } >"$overlay/kustomization.yaml"
  cat >"$overlay/flink-data.yaml" <<YAML
apiVersion: v1
kind: PersistentVolume
metadata:
  name: $CLUSTER_FLINK_DATA_VOLUME
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteMany]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  claimRef: {namespace: $ns, name: flink-data}
  local: {path: $CLUSTER_RUN/flink-data}
  nodeAffinity:
    required:
      nodeSelectorTerms:
        - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [$CLUSTER_NODE_NAME]}]
YAML
  # The SegmentScaler CRD first, as users apply it: the demo's SegmentScaler needs it served.
  {
    cluster_kubectl --request-timeout=30s apply --server-side -f "$STACK_REPO/deploy/helm/segment-autoscaler/crds" &&
      cluster_kubectl --request-timeout=30s wait --for=condition=Established --timeout=60s crd/segmentscalers.segment-autoscaler.io
  } >"$overlay/crds.txt" 2>&1 || die "the SegmentScaler CRD was not established: $(cat "$overlay/crds.txt")"
  cluster_kubectl --request-timeout=30s apply -k "$overlay" >"$overlay/apply.txt" 2>&1 || die "kubectl apply -k failed: $(cat "$overlay/apply.txt")"
  local applied deadline deployment
  applied=$(date +%s)
  deadline=$((applied + 600))
  for deployment in $(cluster_kubectl --request-timeout=30s -n "$ns" get deployments -o name); do
    cluster_kubectl --request-timeout=30s -n "$ns" rollout status "$deployment" --timeout="$((deadline - $(date +%s)))s" >/dev/null ||
      { cluster_kubectl --request-timeout=30s -n "$ns" get pods >&2; die "$deployment not Ready in time"; }
  done
  until cluster_kubectl --request-timeout=30s -n "$ns" wait --for=condition=Ready pod -l component=jobmanager --timeout=10s >/dev/null 2>&1; do
    (($(date +%s) < deadline)) || { cluster_kubectl --request-timeout=30s -n "$ns" get pods >&2; die "the Flink JobManager is not Ready in time"; }
  done
  echo "ready after $(($(date +%s) - applied)) s"
}
