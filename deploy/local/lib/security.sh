# shellcheck shell=bash
# Security for the local stack (STACK_SECURITY=on): a CA and certificates made with openssl,
# Pravega's password file, Prometheus' web config, Flink's REST key stores. Generated once into
# the cache (keyed by SECURITY_MATERIAL_VERSION, remade when a certificate nears its end), never
# into the clone.
#
# With security on: Pravega standalone runs with TLS and auth (controller tls://localhost:PORT),
# Prometheus serves HTTPS with basic auth, Flink's REST API HTTPS with client certificates
# (mutual TLS). Certificates name the host `localhost` only (no IP address): the Pravega client
# verifies names, not addresses, and https://127.0.0.1 is then a wrong-host certificate, which
# the tests use.

STACK_SECURITY=${STACK_SECURITY:-off}
[[ $STACK_SECURITY == on || $STACK_SECURITY == off ]] || { echo "STACK_SECURITY must be on or off" >&2; exit 2; }
SECURITY_MATERIAL_VERSION=2
SECURITY_DIR="$STACK_CACHE/security-$SECURITY_MATERIAL_VERSION"
# The host name every certificate names, and what the secured endpoints are addressed by.
SECURITY_HOST=localhost
# The names the demo's Services answer to on the cluster (deploy/k8s with the component
# deploy/k8s/secured, in $CLUSTER_DEMO_NAMESPACE): the certificate `cluster-server` holds each,
# short and qualified.
SECURITY_CLUSTER_NAMES=(pravega pravega-segmentstore flink-jobmanager)
# The scope the restricted Pravega accounts are limited to (the demo's scope).
SECURITY_SCOPE=${SECURITY_SCOPE:-demo}
# Pravega accounts: the stack's own (every permission; the segment store uses it too), the
# autoscaler's (read the scope's metadata only) and the generator's (create and write streams in
# the scope). Every password is random, in $SECURITY_DIR/passwords/ (pravega-USER,
# prometheus-USER, keystore).
SECURITY_PRAVEGA_ADMIN=admin
SECURITY_PRAVEGA_READER=autoscaler
SECURITY_PRAVEGA_WRITER=generator
# Prometheus' basic-auth account.
SECURITY_PROMETHEUS_USER=autoscaler

security_on() { [[ $STACK_SECURITY == on ]]; }

# security_password NAME: a password of the stack (pravega-USER, prometheus-USER, keystore).
security_password() { cat "$SECURITY_DIR/passwords/$1"; }

# security_endpoint PLAIN-SCHEME SECURE-SCHEME PORT: where a component of the stack answers:
# with security on, under the name its certificate holds.
security_endpoint() {
  if security_on; then echo "$2://$SECURITY_HOST:$3"; else echo "$1://$STACK_HOST:$3"; fi
}

# security_curl ARGS...: curl trusting the stack's CA.
security_curl() { curl --cacert "$SECURITY_DIR/ca.pem" "$@"; }

# security_curl_as USER PASSWORD-NAME ARGS...: with security on, security_curl as USER, its
# password (from security_password PASSWORD-NAME) given to curl on a pipe, never on its command
# line; plain curl otherwise.
security_curl_as() {
  local user=$1 name=$2
  shift 2
  if security_on; then
    security_curl -K <(printf 'user = "%s:%s"\n' "$user" "$(security_password "$name")") "$@"
  else
    curl "$@"
  fi
}

# security_ready: the material exists and no certificate ends within a week.
security_ready() {
  local cert
  for cert in ca server client expired wrong-host cluster-server; do
    [[ -f $SECURITY_DIR/$cert.pem ]] || return 1
  done
  for cert in ca server client cluster-server; do
    openssl x509 -checkend 604800 -noout -in "$SECURITY_DIR/$cert.pem" >/dev/null || return 1
  done
  [[ -f $SECURITY_DIR/pravega-accounts && -f $SECURITY_DIR/prometheus-web.yml ]]
}

# security_sign NAME SUBJECT_ALT_NAME EXTENDED_KEY_USAGE: a key and a certificate signed by the
# stack's CA, valid for 825 days.
security_sign() {
  local name=$1 san=$2 usage=$3 dir=$SECURITY_DIR
  openssl req -new -newkey rsa:2048 -nodes -keyout "$dir/$name.key" -subj "/CN=$name" \
    -out "$dir/$name.csr" 2>/dev/null
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 825 -out "$dir/$name.pem" \
    -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=%s\n' "$san" "$usage") 2>/dev/null
  rm -f "$dir/$name.csr"
}

# security_sign_expired: a server certificate for localhost that ended in 2021, signed by the
# CA (openssl ca is the only openssl 3.0 command that takes explicit dates).
security_sign_expired() {
  local dir=$SECURITY_DIR ca="$SECURITY_DIR/expired-ca"
  rm -rf "$ca" && mkdir -p "$ca" && touch "$ca/index.txt" && echo 01 >"$ca/serial"
  cat >"$ca/openssl.cnf" <<CNF
[ca]
default_ca = local
[local]
database = $ca/index.txt
serial = $ca/serial
new_certs_dir = $ca
default_md = sha256
policy = any
copy_extensions = none
[any]
commonName = supplied
[server]
subjectAltName = DNS:$SECURITY_HOST
extendedKeyUsage = serverAuth
CNF
  openssl req -new -newkey rsa:2048 -nodes -keyout "$dir/expired.key" -subj "/CN=expired" \
    -out "$ca/expired.csr" 2>/dev/null
  openssl ca -batch -config "$ca/openssl.cnf" -extensions server -cert "$dir/ca.pem" \
    -keyfile "$dir/ca.key" -startdate 20200101000000Z -enddate 20210101000000Z \
    -notext -in "$ca/expired.csr" -out "$dir/expired.pem" >"$ca/log" 2>&1 || { cat "$ca/log" >&2; return 1; }
  rm -rf "$ca"
}

# security_pravega_accounts: Pravega's password file (user:encrypted password:ACL), the
# passwords encrypted by Pravega's own StrongPasswordProcessor.
security_pravega_accounts() {
  local admin reader writer scope="prn::/scope:$SECURITY_SCOPE"
  admin="$SECURITY_PRAVEGA_ADMIN:$(security_password "pravega-$SECURITY_PRAVEGA_ADMIN"):prn::*,READ_UPDATE"
  # The scope and its streams, read only: getCurrentSegments needs READ on the stream.
  reader="$SECURITY_PRAVEGA_READER:$(security_password "pravega-$SECURITY_PRAVEGA_READER"):$scope,READ;$scope/*,READ"
  # Creating the scope needs READ_UPDATE on the root; the streams and their writers, on the scope.
  writer="$SECURITY_PRAVEGA_WRITER:$(security_password "pravega-$SECURITY_PRAVEGA_WRITER"):prn::/,READ_UPDATE;$scope,READ_UPDATE;$scope/*,READ_UPDATE"
  printf '%s\n' "$admin" "$reader" "$writer" |
    java -cp "$(cat "$PRAVEGA_HOME/classpath.txt")" "$STACK_REPO/deploy/local/lib/PravegaAccounts.java" \
      >"$SECURITY_DIR/pravega-accounts"
}

# security_prometheus_web: Prometheus' --web.config.file (TLS and a bcrypt-hashed password).
security_prometheus_web() {
  local hash
  hash=$(python3 -W ignore -c 'import crypt, sys; print(crypt.crypt(sys.stdin.read(), crypt.mksalt(crypt.METHOD_BLOWFISH)))' \
    <"$SECURITY_DIR/passwords/prometheus-$SECURITY_PROMETHEUS_USER")
  cat >"$SECURITY_DIR/prometheus-web.yml" <<YAML
tls_server_config:
  cert_file: $SECURITY_DIR/server.pem
  key_file: $SECURITY_DIR/server.key
basic_auth_users:
  $SECURITY_PROMETHEUS_USER: '$hash'
YAML
}

# security_keystores: PKCS12 stores for the JVMs (Pravega's controller REST, Flink's REST), all
# with one password: the server's key and certificate, the client's, and the CA as trust store.
security_keystores() {
  local dir=$SECURITY_DIR pass
  pass=$(security_password keystore)
  openssl pkcs12 -export -in "$dir/server.pem" -inkey "$dir/server.key" -name server \
    -passout "pass:$pass" -out "$dir/server.p12"
  openssl pkcs12 -export -in "$dir/cluster-server.pem" -inkey "$dir/cluster-server.key" -name server \
    -passout "pass:$pass" -out "$dir/cluster-server.p12"
  openssl pkcs12 -export -in "$dir/client.pem" -inkey "$dir/client.key" -name client \
    -passout "pass:$pass" -out "$dir/client.p12"
  rm -f "$dir/truststore.p12"
  keytool -importcert -noprompt -alias ca -file "$dir/ca.pem" -keystore "$dir/truststore.p12" \
    -storetype PKCS12 -storepass "$pass" >/dev/null 2>&1
  printf '%s' "$pass" >"$dir/keystore.password"
}

security_install() {
  security_ready && return 0
  command -v openssl >/dev/null || die "openssl is required to make the stack's certificates"
  command -v keytool >/dev/null || die "keytool (a JDK) is required to make the stack's key stores"
  pravega_installed || pravega_install
  log "security: making a CA, certificates, key stores and accounts in $SECURITY_DIR"
  rm -rf "$SECURITY_DIR" && mkdir -p "$SECURITY_DIR/passwords" && chmod 700 "$SECURITY_DIR"
  local name
  for name in "pravega-$SECURITY_PRAVEGA_ADMIN" "pravega-$SECURITY_PRAVEGA_READER" \
    "pravega-$SECURITY_PRAVEGA_WRITER" "prometheus-$SECURITY_PROMETHEUS_USER" keystore; do
    openssl rand -hex 16 | tr -d '\n' >"$SECURITY_DIR/passwords/$name"
  done
  local ca
  for ca in ca other-ca; do
    openssl req -x509 -new -newkey rsa:2048 -nodes -days 1825 -subj "/CN=segment-autoscaler local $ca" \
      -keyout "$SECURITY_DIR/$ca.key" -out "$SECURITY_DIR/$ca.pem" 2>/dev/null
  done
  # Pravega's embedded ZooKeeper presents the server certificate as a client too.
  security_sign server "DNS:$SECURITY_HOST" serverAuth,clientAuth
  security_sign client "DNS:client" clientAuth
  # On the cluster: every Service's names, and localhost for Pravega's embedded ZooKeeper.
  local san="DNS:localhost" host
  for host in "${SECURITY_CLUSTER_NAMES[@]}"; do
    san+=",DNS:$host,DNS:$host.$CLUSTER_DEMO_NAMESPACE.svc,DNS:$host.$CLUSTER_DEMO_NAMESPACE.svc.cluster.local"
  done
  security_sign cluster-server "$san" serverAuth,clientAuth
  security_sign wrong-host "DNS:elsewhere.invalid" serverAuth
  security_sign_expired
  security_keystores
  security_pravega_accounts
  security_prometheus_web
  security_ready || die "security: the material in $SECURITY_DIR is incomplete"
}

# security_cluster_secrets NAMESPACE: the Secrets deploy/k8s/secured asks for, made from the
# stack's material (created or updated; the namespace is created if missing). Pravega's
# certificate there is `cluster-server` (it names the demo's Services).
security_cluster_secrets() {
  local ns=$1 dir=$SECURITY_DIR out
  security_install
  security_secret() {
    local name=$1
    shift
    cluster_kubectl --request-timeout=30s -n "$ns" create secret generic "$name" "$@" \
      --dry-run=client -o yaml | cluster_kubectl --request-timeout=30s apply -f - >/dev/null
  }
  cluster_kubectl --request-timeout=30s create namespace "$ns" --dry-run=client -o yaml |
    cluster_kubectl --request-timeout=30s apply -f - >/dev/null
  out=$({
    security_secret pravega-ca --from-file=ca.crt="$dir/ca.pem" &&
      security_secret pravega-tls --from-file=tls.crt="$dir/cluster-server.pem" --from-file=tls.key="$dir/cluster-server.key" \
        --from-file=keystore.p12="$dir/cluster-server.p12" --from-file=keystore-password="$dir/keystore.password" \
        --from-file=truststore.p12="$dir/truststore.p12" &&
      security_secret pravega-auth --from-file=accounts="$dir/pravega-accounts" \
        --from-file=admin-password="$dir/passwords/pravega-$SECURITY_PRAVEGA_ADMIN" &&
      security_secret segment-autoscaler-pravega --from-file=password="$dir/passwords/pravega-$SECURITY_PRAVEGA_READER" &&
      security_secret data-generator-pravega --from-file=password="$dir/passwords/pravega-$SECURITY_PRAVEGA_WRITER" &&
      security_secret flink-job-pravega --from-file=password="$dir/passwords/pravega-$SECURITY_PRAVEGA_WRITER" &&
      security_secret prometheus-pravega --from-file=password="$dir/passwords/pravega-$SECURITY_PRAVEGA_ADMIN" &&
      security_secret flink-rest-tls --from-file=keystore.p12="$dir/cluster-server.p12" \
        --from-file=truststore.p12="$dir/truststore.p12" --from-file=password="$dir/keystore.password" &&
      security_secret segment-autoscaler-flink-client --from-file=ca.crt="$dir/ca.pem" \
        --from-file=tls.crt="$dir/client.pem" --from-file=tls.key="$dir/client.key"
  } 2>&1) || die "security: making the demo's Secrets in $ns failed: $out"
}
