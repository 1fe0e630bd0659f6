# shellcheck shell=bash
# kube-apiserver + etcd, built from the Go module proxy, with RBAC enforced.
#
# k8s.io/kubernetes replaces its staging modules with local paths, so `go install` refuses it.
# A small wrapper module requires it and pins every staging module to the matching v0.X.Y;
# etcd is built from the same module graph (the version Kubernetes itself requires).

KUBE_VERSION=${KUBE_VERSION:-v1.35.4}            # k8s-openapi feature v1_35
KUBE_HOME="$STACK_CACHE/kubernetes-$KUBE_VERSION"
KUBE_APISERVER_PORT=${KUBE_APISERVER_PORT:-$((16443 + STACK_PORT_OFFSET))}
ETCD_CLIENT_PORT=${ETCD_CLIENT_PORT:-$((12379 + STACK_PORT_OFFSET))}
ETCD_PEER_PORT=${ETCD_PEER_PORT:-$((12380 + STACK_PORT_OFFSET))}
# The restricted identity's scope: one namespace, one TaskManager Deployment (and StatefulSet).
KUBE_DEMO_NAMESPACE=${KUBE_DEMO_NAMESPACE:-flink}
# The names deploy/k8s/rbac grants (its Role names them): fixed.
KUBE_DEMO_TARGET=flink-taskmanager
KUBE_AUTOSCALER_SA=segment-autoscaler

kubernetes_installed() {
  [[ -x $KUBE_HOME/bin/kube-apiserver && -x $KUBE_HOME/bin/etcd && -x $KUBE_HOME/bin/kubectl ]] &&
    helm_installed
}

kubernetes_install() {
  kubernetes_installed && return 0
  helm_install
  [[ -x $KUBE_HOME/bin/kube-apiserver && -x $KUBE_HOME/bin/etcd && -x $KUBE_HOME/bin/kubectl ]] && return 0
  command -v go >/dev/null || die "go is required to build kube-apiserver"
  command -v openssl >/dev/null || die "openssl is required to make the stack's certificates"
  local minor=${KUBE_VERSION#v1.}
  local staging_version="v0.$minor"
  local src="$KUBE_HOME/src"
  rm -rf "$src" && mkdir -p "$src/etcd" "$KUBE_HOME/bin"
  log "kubernetes: building kube-apiserver, kubectl and etcd $KUBE_VERSION from the Go module proxy (about 5 min cold on 2 cores)"

  # The staging modules are the `=> ./staging/src/...` replaces of Kubernetes' own go.mod.
  local gomod
  gomod=$(cd "$src" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" |
    sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [[ -f $gomod ]] || die "could not download k8s.io/kubernetes@$KUBE_VERSION"
  {
    echo "module segment-autoscaler.local/kube-build"
    echo
    echo "go 1.25.0"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/' "$gomod" | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
  } >"$src/go.mod"

  # etcd's main package lives in the etcd root module; its server module exports etcdmain.Main.
  cat >"$src/etcd/main.go" <<'GO'
// Command etcd runs the etcd server from the version Kubernetes requires.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  # Keeps the Kubernetes commands in the module graph for `go mod tidy`.
  cat >"$src/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  (
    cd "$src" &&
      run_logged kube-mod-tidy go mod tidy &&
      run_logged kube-build-apiserver go build -trimpath -o "$KUBE_HOME/bin/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver &&
      run_logged kube-build-kubectl go build -trimpath -o "$KUBE_HOME/bin/kubectl" k8s.io/kubernetes/cmd/kubectl &&
      run_logged kube-build-etcd go build -trimpath -o "$KUBE_HOME/bin/etcd" ./etcd
  ) || die "kubernetes build failed"
  log "kubernetes: installed in $KUBE_HOME/bin"
}

KUBE_RUN="$STACK_RUN/kubernetes"
KUBECONFIG_ADMIN="$KUBE_RUN/admin.kubeconfig"
KUBECONFIG_AUTOSCALER="$KUBE_RUN/autoscaler.kubeconfig"

kubernetes_endpoint() { echo "https://$STACK_HOST:$KUBE_APISERVER_PORT"; }

# kubernetes_make_ca NAME CN: a self-signed CA, NAME.key and NAME.crt, in the PKI folder.
kubernetes_make_ca() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout "$1.key" -out "$1.crt" -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}

# kubernetes_sign_certificate NAME SUBJECT USAGE SANS [CA]: NAME.key and NAME.crt signed by CA
# (default: the stack CA, ca), run in the PKI folder. USAGE is serverAuth or clientAuth; SANS may
# be empty.
kubernetes_sign_certificate() {
  local name=$1 subject=$2 usage=$3 sans=$4 ca=${5:-ca}
  openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subject" &&
    {
      printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=$usage"
      [[ -z $sans ]] || echo "subjectAltName=$sans"
    } >"$name.ext" &&
    openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial -days 3650 \
      -extfile "$name.ext" -out "$name.crt"
}

# The stack's PKI: a CA, a serving certificate with the SANs rustls checks (127.0.0.1 and
# localhost), the ServiceAccount token signing key pair, and the client certificate the
# aggregation layer presents to extension API servers (prometheus-adapter in `hpa`), under its
# own CA as Kubernetes advises (a requestheader CA lets its certificates assert any user).
kubernetes_make_pki() {
  local pki="$KUBE_RUN/pki"
  mkdir -p "$pki"
  (
    cd "$pki" &&
      kubernetes_make_ca ca segment-autoscaler-stack-ca &&
      kubernetes_sign_certificate apiserver "/CN=kube-apiserver" serverAuth \
        "IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc" &&
      openssl genrsa -out sa.key 2048 &&
      openssl rsa -in sa.key -pubout -out sa.pub &&
      kubernetes_make_ca front-proxy-ca segment-autoscaler-front-proxy-ca &&
      kubernetes_sign_certificate front-proxy-client "/CN=front-proxy-client" clientAuth "" front-proxy-ca
  ) >"$KUBE_RUN/pki.log" 2>&1 || fail_with_log "kubernetes pki" "$KUBE_RUN/pki.log"
}

# write_token_kubeconfig FILE SERVER CA_FILE USER TOKEN [NAMESPACE]: a kubeconfig acting as USER
# with a bearer token (the stack's API server and the single-node cluster both use these).
write_token_kubeconfig() {
  local file=$1 server=$2 ca=$3 user=$4 token=$5 namespace=${6:-}
  cat >"$file" <<KC
apiVersion: v1
kind: Config
clusters:
- name: stack
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 "$ca")
users:
- name: $user
  user:
    token: $token
contexts:
- name: $user@stack
  context: {cluster: stack, user: $user${namespace:+, namespace: $namespace}}
current-context: $user@stack
KC
  chmod 600 "$file"
}

# kubernetes_write_kubeconfig FILE USER TOKEN: for the stack's API server, in the demo namespace.
kubernetes_write_kubeconfig() {
  write_token_kubeconfig "$1" "$(kubernetes_endpoint)" "$KUBE_RUN/pki/ca.crt" "$2" "$3" "$KUBE_DEMO_NAMESPACE"
}

# apiserver_ready URL CA_FILE TOKEN: the API server at URL answers /readyz with ok.
apiserver_ready() {
  curl -fsS --max-time 5 --cacert "$2" -H "Authorization: Bearer $3" "$1/readyz" | grep -qx ok
}

kubernetes_apiserver_ready() {
  apiserver_ready "$(kubernetes_endpoint)" "$KUBE_RUN/pki/ca.crt" "$(cat "$KUBE_RUN/admin.token")"
}

kubectl_admin() { "$KUBE_HOME/bin/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

kubernetes_up() {
  kubernetes_installed || die "kubernetes is not installed: run '$0 install kubernetes'"
  if process_alive kube-apiserver; then log "kubernetes: already running"; return 0; fi
  ensure_ports_free kubernetes "$KUBE_APISERVER_PORT" "$ETCD_CLIENT_PORT" "$ETCD_PEER_PORT"
  rm -rf "$KUBE_RUN" && mkdir -p "$KUBE_RUN"
  kubernetes_make_pki
  head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$KUBE_RUN/admin.token"
  echo "$(cat "$KUBE_RUN/admin.token"),stack-admin,stack-admin,system:masters" >"$KUBE_RUN/tokens.csv"
  kubernetes_write_kubeconfig "$KUBECONFIG_ADMIN" stack-admin "$(cat "$KUBE_RUN/admin.token")"

  log "kubernetes: starting etcd and kube-apiserver $KUBE_VERSION ($(kubernetes_endpoint))"
  start_process etcd "$KUBE_RUN/etcd.log" "$KUBE_HOME/bin/etcd" \
    --name stack --data-dir "$KUBE_RUN/etcd-data" --unsafe-no-fsync \
    --listen-client-urls "http://$STACK_HOST:$ETCD_CLIENT_PORT" --advertise-client-urls "http://$STACK_HOST:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://$STACK_HOST:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://$STACK_HOST:$ETCD_PEER_PORT" \
    --initial-cluster "stack=http://$STACK_HOST:$ETCD_PEER_PORT" --log-level warn
  wait_for 60 etcd curl -fsS "http://$STACK_HOST:$ETCD_CLIENT_PORT/health" || fail_with_log etcd "$KUBE_RUN/etcd.log"

  local pki="$KUBE_RUN/pki"
  start_process kube-apiserver "$KUBE_RUN/kube-apiserver.log" "$KUBE_HOME/bin/kube-apiserver" \
    --etcd-servers "http://$STACK_HOST:$ETCD_CLIENT_PORT" \
    --bind-address "$STACK_HOST" --advertise-address "$STACK_HOST" --secure-port "$KUBE_APISERVER_PORT" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" --client-ca-file "$pki/ca.crt" \
    --cert-dir "$KUBE_RUN/cert-dir" \
    --authorization-mode RBAC --anonymous-auth=false --token-auth-file "$KUBE_RUN/tokens.csv" \
    --service-account-issuer "$(kubernetes_endpoint)" \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 --allow-privileged=true \
    --disable-admission-plugins ServiceAccount --profiling=false \
    --requestheader-client-ca-file "$pki/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$pki/front-proxy-client.crt" --proxy-client-key-file "$pki/front-proxy-client.key"
  wait_for 120 kube-apiserver kubernetes_apiserver_ready || fail_with_log kube-apiserver "$KUBE_RUN/kube-apiserver.log"

  kubernetes_bootstrap_autoscaler_identity || fail_with_log "kubernetes bootstrap" "$KUBE_RUN/bootstrap.log"
}

# kubernetes_autoscaler_rbac NAMESPACE: the autoscaler's ServiceAccount, Roles and RoleBindings as
# deploy/k8s/rbac holds them (the chart with the demo's values), but in NAMESPACE.
kubernetes_autoscaler_rbac() {
  "$HELM_BIN" template segment-autoscaler "$STACK_REPO/deploy/helm/segment-autoscaler" \
    --namespace "$1" -f "$STACK_REPO/deploy/k8s/autoscaler-values.yaml" \
    --set "segmentScalers.namespaces={$1}" \
    --show-only templates/serviceaccount.yaml --show-only templates/rbac.yaml
}

# The autoscaler's identity: the ServiceAccount, Roles and RoleBindings of deploy/k8s/rbac (what
# users deploy), in the stack's namespace, and a TokenRequest token for it; and the SegmentScaler
# CRD. The tests also scale a StatefulSet and a FlinkDeployment of the same name: a second Role,
# for the tests only, allows those.
kubernetes_bootstrap_autoscaler_identity() {
  local ns=$KUBE_DEMO_NAMESPACE sa=$KUBE_AUTOSCALER_SA target=$KUBE_DEMO_TARGET
  {
    kubectl_admin apply -f - <<YAML &&
apiVersion: v1
kind: Namespace
metadata: {name: $ns}
YAML
      kubectl_admin apply --server-side -f "$STACK_REPO/deploy/helm/segment-autoscaler/crds" &&
      kubernetes_autoscaler_rbac "$ns" | kubectl_admin apply -f - &&
      kubectl_admin apply -f - <<YAML &&
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: $sa-test-targets, namespace: $ns}
rules:
- apiGroups: [apps]
  resources: [statefulsets/scale]
  resourceNames: [$target]
  verbs: [get, patch, update]
- apiGroups: [flink.apache.org]
  resources: [flinkdeployments/scale]
  resourceNames: [$target]
  verbs: [get, patch, update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: $sa-test-targets, namespace: $ns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: $sa-test-targets}
subjects:
- {kind: ServiceAccount, name: $sa, namespace: $ns}
YAML
      kubectl_admin -n "$ns" create token "$sa" --duration 24h >"$KUBE_RUN/autoscaler.token"
  } >"$KUBE_RUN/bootstrap.log" 2>&1 || return 1
  kubernetes_write_kubeconfig "$KUBECONFIG_AUTOSCALER" "$sa" "$(cat "$KUBE_RUN/autoscaler.token")"
}

kubernetes_down() {
  stop_process kube-apiserver
  stop_process etcd
}

# kubernetes_running: exit status 0 when kubernetes is up and answering.
kubernetes_running() {
  process_alive kube-apiserver && kubernetes_apiserver_ready
}

# kubernetes_endpoints: where kubernetes answers, for `stack status`.
kubernetes_endpoints() {
  echo "$(kubernetes_endpoint) (etcd http://$STACK_HOST:$ETCD_CLIENT_PORT)"
}
