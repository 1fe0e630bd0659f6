# shellcheck shell=bash
# Pravega standalone (embedded ZooKeeper, one controller, one segment store, in-memory storage),
# from Maven Central, its classpath resolved by Maven into the cache.

PRAVEGA_VERSION=${PRAVEGA_VERSION:-0.13.0}
PRAVEGA_HOME="$STACK_CACHE/pravega-$PRAVEGA_VERSION"
PRAVEGA_CONTROLLER_PORT=${PRAVEGA_CONTROLLER_PORT:-$((9090 + STACK_PORT_OFFSET))}
PRAVEGA_CONTROLLER_REST_PORT=${PRAVEGA_CONTROLLER_REST_PORT:-$((9091 + STACK_PORT_OFFSET))}
PRAVEGA_SEGMENTSTORE_PORT=${PRAVEGA_SEGMENTSTORE_PORT:-$((6000 + STACK_PORT_OFFSET))}
PRAVEGA_ZK_PORT=${PRAVEGA_ZK_PORT:-$((4000 + STACK_PORT_OFFSET))}
PRAVEGA_SEGMENTSTORE_REST_PORT=${PRAVEGA_SEGMENTSTORE_REST_PORT:-$((6061 + STACK_PORT_OFFSET))}
# Standalone keeps every event in memory (in-memory log and storage): the heap must hold all
# that is written while it runs. 768 MiB ran out under the write benchmark.
PRAVEGA_HEAP=${PRAVEGA_HEAP:-2g}
# Pravega is built with Gradle, whose conflict resolution takes the highest requested version;
# Maven takes the nearest, which picks e.g. protobuf-java 2.5.0 (via Hadoop) and breaks the
# controller. These are the highest versions the 0.13.0 dependency tree asks for wherever Maven
# would choose a lower one (from `mvn dependency:tree -Dverbose`).
PRAVEGA_DEPENDENCY_PINS="
com.fasterxml.jackson.core:jackson-annotations:2.12.7
com.fasterxml.jackson.module:jackson-module-jaxb-annotations:2.12.7
com.fasterxml.woodstox:woodstox-core:6.2.4
com.google.apis:google-api-services-storage:v1-rev20220608-1.32.1
com.google.cloud:google-cloud-storage:2.8.1
com.google.errorprone:error_prone_annotations:2.10.0
com.google.guava:guava:31.1-jre
com.google.protobuf:protobuf-java:3.21.7
com.sun.jersey:jersey-json:1.19.4
commons-logging:commons-logging:1.2
io.netty:netty-codec-http:4.1.68.Final
net.java.dev.jna:jna:5.2.0
org.apache.commons:commons-lang3:3.12.0
org.checkerframework:checker-qual:3.22.0
org.codehaus.jackson:jackson-core-asl:1.9.13
org.codehaus.jackson:jackson-mapper-asl:1.9.13
org.slf4j:slf4j-api:1.7.36
org.xerial.snappy:snappy-java:1.1.8.2
"

pravega_installed() { [[ -f $PRAVEGA_HOME/classpath.txt ]]; }

pravega_managed_dependencies() {
  local gav g a v
  for gav in $PRAVEGA_DEPENDENCY_PINS; do
    IFS=: read -r g a v <<<"$gav"
    echo "      <dependency><groupId>$g</groupId><artifactId>$a</artifactId><version>$v</version></dependency>"
  done
}

pravega_install() {
  pravega_installed && return 0
  command -v mvn >/dev/null || die "maven (mvn) is required to fetch Pravega"
  command -v java >/dev/null || die "a Java runtime is required for Pravega"
  rm -rf "${PRAVEGA_HOME:?}/lib" && mkdir -p "$PRAVEGA_HOME"
  log "pravega: resolving io.pravega:pravega-standalone:$PRAVEGA_VERSION from Maven Central"
  cat >"$PRAVEGA_HOME/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.segment-autoscaler</groupId>
  <artifactId>pravega-standalone-classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencyManagement>
    <dependencies>
$(pravega_managed_dependencies)
    </dependencies>
  </dependencyManagement>
  <dependencies>
    <dependency>
      <groupId>io.pravega</groupId>
      <artifactId>pravega-standalone</artifactId>
      <version>$PRAVEGA_VERSION</version>
    </dependency>
  </dependencies>
</project>
POM
  run_logged pravega-resolve mvn -B -q -f "$PRAVEGA_HOME/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$PRAVEGA_HOME/lib" -DincludeScope=runtime ||
    die "could not resolve pravega-standalone $PRAVEGA_VERSION"
  # Keep Maven's resolution order: the lib folder holds both Jersey 1.x (from Hadoop, with an old
  # repackaged ASM) and 2.x, and the REST server fails on Java 17 if 1.x is found first.
  run_logged pravega-classpath mvn -B -q -f "$PRAVEGA_HOME/pom.xml" dependency:build-classpath \
    -Dmdep.includeScope=runtime -Dmdep.prefix="$PRAVEGA_HOME/lib" \
    -Dmdep.outputFile="$PRAVEGA_HOME/classpath.txt" || die "could not compute the Pravega classpath"
  log "pravega: installed in $PRAVEGA_HOME ($(find "$PRAVEGA_HOME/lib" -name '*.jar' | wc -l) jars)"
}

PRAVEGA_RUN="$STACK_RUN/pravega"

# With security on, the controller is addressed by the name its certificate holds.
pravega_endpoint() { security_endpoint tcp tls "$PRAVEGA_CONTROLLER_PORT"; }

pravega_rest_endpoint() { security_endpoint http https "$PRAVEGA_CONTROLLER_REST_PORT"; }

# pravega_rest_curl ARGS...: curl for the controller's REST API (the CA and the stack's own
# account when security is on).
pravega_rest_curl() { security_curl_as "$SECURITY_PRAVEGA_ADMIN" "pravega-$SECURITY_PRAVEGA_ADMIN" "$@"; }

pravega_ready() {
  port_open "$PRAVEGA_CONTROLLER_PORT" &&
    pravega_rest_curl -fsS -o /dev/null "$(pravega_rest_endpoint)/v1/scopes" &&
    grep -q 'Pravega Sandbox is running locally now' "$PRAVEGA_RUN/pravega.log"
}

# pravega_security_config: standalone's TLS and auth settings (STACK_SECURITY=on): the
# segment store and controller serve TLS with the stack's certificate, and every client
# authenticates against the password file (the stack's own account for the internal calls).
pravega_security_config() {
  security_on || return 0
  cat <<PROPS
singlenode.security.tls.enable=true
singlenode.security.tls.protocolVersion=TLSv1.2,TLSv1.3
singlenode.security.tls.privateKey.location=$SECURITY_DIR/server.key
singlenode.security.tls.certificate.location=$SECURITY_DIR/server.pem
singlenode.security.tls.keyStore.location=$SECURITY_DIR/server.p12
singlenode.security.tls.keyStore.pwd.location=$SECURITY_DIR/keystore.password
singlenode.security.tls.trustStore.location=$SECURITY_DIR/truststore.p12
singlenode.security.auth.enable=true
singlenode.security.auth.credentials.username=$SECURITY_PRAVEGA_ADMIN
singlenode.security.auth.credentials.pwd=$(security_password "pravega-$SECURITY_PRAVEGA_ADMIN")
singlenode.security.auth.pwdAuthHandler.accountsDb.location=$SECURITY_DIR/pravega-accounts
PROPS
}

pravega_up() {
  pravega_installed || die "pravega is not installed: run '$0 install pravega'"
  ! security_on || security_install
  if process_alive pravega; then log "pravega: already running"; return 0; fi
  ensure_ports_free pravega "$PRAVEGA_CONTROLLER_PORT" "$PRAVEGA_CONTROLLER_REST_PORT" "$PRAVEGA_SEGMENTSTORE_PORT" "$PRAVEGA_ZK_PORT" "$PRAVEGA_SEGMENTSTORE_REST_PORT"
  rm -rf "$PRAVEGA_RUN" && mkdir -p "$PRAVEGA_RUN"
  cat >"$PRAVEGA_RUN/standalone-config.properties" <<PROPS
singlenode.zk.port=$PRAVEGA_ZK_PORT
singlenode.segmentStore.port=$PRAVEGA_SEGMENTSTORE_PORT
singlenode.controller.rpc.port=$PRAVEGA_CONTROLLER_PORT
singlenode.controller.rest.port=$PRAVEGA_CONTROLLER_REST_PORT
singlenode.admin.gateway.enable=false
singlenode.metrics.enable=true
singlenode.metrics.prometheus.enable=true
singlenode.metrics.reporting.interval=1
$(pravega_security_config)
PROPS
  # The JVM properties reach the segment store's config (and the shared metrics registry):
  #  - auto-scaling timers shortened from 600 s so natural splits show within a demo.
  # The metrics cache keeps Pravega's default eviction (3 min), as users run it: the segment
  # gauge of a stream that has not scaled for 3 minutes disappears (see README, Prometheus source).
  # With TLS on, clients verify the segment store's name: it must publish the name its
  # certificate holds, not the address it listens on (0.0.0.0).
  local published=()
  if security_on; then published=("-Dpravegaservice.service.published.host.nameOrIp=$SECURITY_HOST"); fi
  log "pravega: starting standalone $PRAVEGA_VERSION (controller $(pravega_endpoint))"
  start_process pravega "$PRAVEGA_RUN/pravega.log" \
    java "-Xmx$PRAVEGA_HEAP" -XX:+UseSerialGC -XX:MaxDirectMemorySize=512m "${published[@]}" \
    -Dsinglenode.configurationFile="$PRAVEGA_RUN/standalone-config.properties" \
    -Dmetrics.statistics.enable=true -Dmetrics.prometheus.enable=true \
    -Dpravegaservice.rest.listener.port="$PRAVEGA_SEGMENTSTORE_REST_PORT" -Dpravegaservice.rest.listener.host="$STACK_HOST" \
    -DautoScale.cooldown.time.seconds=30 -DautoScale.mute.time.seconds=30 \
    -DautoScale.cache.expiry.seconds=120 -DautoScale.cache.cleanUp.interval.seconds=30 \
    -Dlog.dir="$PRAVEGA_RUN" \
    -cp "$(cat "$PRAVEGA_HOME/classpath.txt")" io.pravega.local.LocalPravegaEmulator
  wait_for 180 pravega pravega_ready || fail_with_log pravega "$PRAVEGA_RUN/pravega.log"
}

pravega_down() { stop_process pravega; }

# pravega_running: exit status 0 when pravega is up and answering.
pravega_running() {
  process_alive pravega && pravega_ready
}

# pravega_endpoints: where pravega answers, for `stack status`.
pravega_endpoints() {
  echo "controller $(pravega_endpoint), rest $(pravega_rest_endpoint)"
}
