# shellcheck shell=bash
# Flink in reactive mode: a JobManager in standalone application mode running one streaming job,
# and TaskManagers (one slot each) started and stopped one by one, so job parallelism equals the
# number of TaskManagers. Binaries from PyPI: apache-flink-libraries (jars) + apache-flink
# (bin scripts, conf), unpacked into one FLINK_HOME.
#
# FLINK_VERSION: 2.3.0 (the newest line the registries serve, the default) or a 1.20.x (the 1.x
# LTS); the job jar is built for the same version.
# FLINK_SCHEDULER: reactive (the default) or adaptive: the adaptive scheduler without reactive
# mode, whose job runs at the parallelism set through the REST API's resource requirements (the
# autoscaler's prewarmed mode), starting at 1.

FLINK_VERSION=${FLINK_VERSION:-2.3.0}
# The other supported line: deploy/local/test runs the Flink-facing tests on it too.
FLINK_LTS_VERSION=${FLINK_LTS_VERSION:-1.20.5}
FLINK_HOME_CACHE="$STACK_CACHE/flink-$FLINK_VERSION"
FLINK_REST_PORT=${FLINK_REST_PORT:-$((8081 + STACK_PORT_OFFSET))}
FLINK_RPC_PORT=${FLINK_RPC_PORT:-$((16123 + STACK_PORT_OFFSET))}
FLINK_METRICS_PORT_FIRST=${FLINK_METRICS_PORT_FIRST:-$((9250 + STACK_PORT_OFFSET))}
FLINK_METRICS_PORT_LAST=${FLINK_METRICS_PORT_LAST:-$((9269 + STACK_PORT_OFFSET))}
FLINK_TASKMANAGERS=${FLINK_TASKMANAGERS:-1}
FLINK_SCHEDULER=${FLINK_SCHEDULER:-reactive}
FLINK_MAX_TASKMANAGERS=${FLINK_MAX_TASKMANAGERS:-16}
# The job the JobManager runs: a jar (built from deploy/flink-job for FLINK_VERSION unless given)
# and its class.
FLINK_JOB_BUILD_DIR="$STACK_REPO/deploy/flink-job/target/flink-$FLINK_VERSION"
FLINK_JOB_JAR=${FLINK_JOB_JAR:-$FLINK_JOB_BUILD_DIR/segment-autoscaler-flink-job.jar}
FLINK_JOB_CLASS=${FLINK_JOB_CLASS:-io.segmentautoscaler.flink.SmokeJob}
FLINK_JOB_ARGS=${FLINK_JOB_ARGS:-}

FLINK_RUN="$STACK_RUN/flink"

flink_installed() { [[ -f $FLINK_HOME_CACHE/lib/flink-dist-$FLINK_VERSION.jar && -x $FLINK_HOME_CACHE/bin/taskmanager.sh ]]; }

flink_install() {
  flink_install_job
  flink_installed && return 0
  command -v pip >/dev/null || command -v pip3 >/dev/null || die "pip is required to fetch Flink from PyPI"
  local pip dl
  pip=$(command -v pip || command -v pip3)
  dl="$STACK_CACHE/downloads/flink-$FLINK_VERSION"
  mkdir -p "$dl"
  log "flink: fetching apache-flink-libraries and apache-flink $FLINK_VERSION from PyPI (about 250 MB)"
  # Only unpacked, never installed: the wheel for any Python version carries the same scripts.
  run_logged flink-download-libraries "$pip" download --no-deps --no-binary :all: -d "$dl" "apache-flink-libraries==$FLINK_VERSION" ||
    die "could not download apache-flink-libraries==$FLINK_VERSION"
  run_logged flink-download-scripts "$pip" download --no-deps --only-binary :all: --python-version 3.9 \
    --platform manylinux1_x86_64 -d "$dl" "apache-flink==$FLINK_VERSION" ||
    die "could not download apache-flink==$FLINK_VERSION"
  local tmp="$FLINK_HOME_CACHE.tmp"
  rm -rf "$tmp" && mkdir -p "$tmp/unpack"
  # The sdist's name is apache-flink-libraries up to 1.20, apache_flink_libraries from 2.x on.
  local sdist
  sdist=$(find "$dl" -maxdepth 1 -name "apache[-_]flink[-_]libraries-$FLINK_VERSION.tar.gz" -print -quit)
  [[ -n $sdist ]] || die "flink: the apache-flink-libraries $FLINK_VERSION archive is not in $dl"
  tar -xzf "$sdist" -C "$tmp/unpack"
  unzip -q -o "$dl"/apache_flink-"$FLINK_VERSION"-*.whl 'pyflink/bin/*' 'pyflink/conf/*' -d "$tmp/unpack"
  local deps
  deps=$(find "$tmp/unpack" -mindepth 2 -maxdepth 2 -type d -name deps -print -quit)
  mv "$deps/lib" "$deps/opt" "$deps/plugins" "$tmp/"
  mv "$tmp/unpack/pyflink/bin" "$tmp/unpack/pyflink/conf" "$tmp/"
  mv "$deps/bin/bash-java-utils.jar" "$tmp/bin/"
  chmod +x "$tmp"/bin/*.sh
  rm -rf "$tmp/unpack" "$FLINK_HOME_CACHE" && mv "$tmp" "$FLINK_HOME_CACHE"
  flink_installed || die "flink unpacked into $FLINK_HOME_CACHE but flink-dist or the scripts are missing"
  log "flink: installed in $FLINK_HOME_CACHE"
}

# The project's own job jar, built with Maven (its dependencies are cached in ~/.m2).
flink_install_job() {
  [[ $FLINK_JOB_JAR != "$FLINK_JOB_BUILD_DIR/"* ]] && return 0
  if [[ -f $FLINK_JOB_JAR ]] &&
    [[ -z $(find "$STACK_REPO/deploy/flink-job/src" "$STACK_REPO/deploy/flink-job/pom.xml" -newer "$FLINK_JOB_JAR" -print -quit) ]]; then
    return 0
  fi
  log "flink: building the job jar (deploy/flink-job) for Flink $FLINK_VERSION"
  # `package` runs the job's unit tests first: no jar from code that fails them.
  run_logged flink-job-build mvn -B -q -f "$STACK_REPO/deploy/flink-job/pom.xml" package "-Dflink.version=$FLINK_VERSION" ||
    die "could not build deploy/flink-job"
}

# With security on, the REST API is HTTPS under the name its certificate holds.
flink_endpoint() { security_endpoint http https "$FLINK_REST_PORT"; }

# flink_curl ARGS...: curl for the REST API (the CA and the client certificate when security is
# on: the REST API then asks every client for one).
flink_curl() {
  if security_on; then
    security_curl --cert "$SECURITY_DIR/client.pem" --key "$SECURITY_DIR/client.key" "$@"
  else
    curl "$@"
  fi
}

# flink_security_config: REST over HTTPS with mutual TLS (STACK_SECURITY=on), from the stack's
# PKCS12 stores: the server's key and certificate, the CA as trust store for client certificates.
flink_security_config() {
  security_on || return 0
  local pass
  pass=$(security_password keystore)
  cat <<YAML
security.ssl.rest.enabled: true
security.ssl.rest.authentication-enabled: true
security.ssl.rest.keystore: $SECURITY_DIR/server.p12
security.ssl.rest.keystore-password: $pass
security.ssl.rest.key-password: $pass
security.ssl.rest.truststore: $SECURITY_DIR/truststore.p12
security.ssl.rest.truststore-password: $pass
YAML
}

# A FLINK_HOME per run: the cached binaries linked in, our own conf/, usrlib/ and log/.
# Real directories of file links, because Flink's scripts `find` jars below lib/.
flink_write_home() {
  local home="$FLINK_RUN/home"
  mkdir -p "$home/conf" "$home/usrlib" "$home/log"
  local d
  for d in bin lib opt plugins; do cp -rs "$FLINK_HOME_CACHE/$d" "$home/$d"; done
  cp "$FLINK_HOME_CACHE"/conf/log4j-console.properties "$home/conf/"
  cp "$FLINK_JOB_JAR" "$home/usrlib/"
  flink_write_config >"$home/conf/config.yaml"
}

# flink_rescale_timers: the adaptive scheduler's settings that decide how soon a TaskManager
# added or removed changes the job's parallelism (see README, "Flink settings"): the lines
# deploy/k8s/flink.yaml sets, for either Flink line (each reads its own names).
flink_rescale_timers() {
  echo "# From deploy/k8s/flink.yaml (the timers users run with)."
  sed -n 's/^ *\(jobmanager\.adaptive-scheduler\.[a-z.-]*: .*\)$/\1/p' "$STACK_REPO/deploy/k8s/flink.yaml"
}

# flink_scheduler: the scheduler settings of FLINK_SCHEDULER.
flink_scheduler() {
  case $FLINK_SCHEDULER in
    reactive) echo "scheduler-mode: reactive" ;;
    # The job's parallelism is its resource requirements' upper bound, 1 until set.
    adaptive) printf '%s\n' "jobmanager.scheduler: adaptive" "parallelism.default: 1" ;;
  esac
}

# flink_write_config: the config.yaml of the local cluster (flat keys, read by 1.20 and 2.x).
flink_write_config() {
  local java_opts
  # Java 17 needs JDK internals opened for Flink: the list this version ships in its config.
  java_opts=$(sed -n 's/^ *all: \(--add-.*\)$/\1/p' "$FLINK_HOME_CACHE/conf/config.yaml" | head -1)
  [[ -n $java_opts ]] || die "flink: no env.java.opts.all in $FLINK_HOME_CACHE/conf/config.yaml"
  cat <<YAML
# Generated by deploy/local/stack; edit deploy/local/lib/flink.sh instead.
jobmanager.rpc.address: $STACK_HOST
jobmanager.rpc.port: $FLINK_RPC_PORT
jobmanager.bind-host: $STACK_HOST
taskmanager.host: $STACK_HOST
taskmanager.bind-host: $STACK_HOST
rest.address: $STACK_HOST
rest.bind-address: $STACK_HOST
rest.port: $FLINK_REST_PORT
blob.server.port: 0
taskmanager.rpc.port: 0
taskmanager.data.port: 0

$(flink_scheduler)
taskmanager.numberOfTaskSlots: 1
$(flink_rescale_timers)
# A TaskManager that dies hard is noticed after 10 s instead of 50 s.
heartbeat.interval: 2000
heartbeat.timeout: 10000
# The REST API answers the job's state and parallelism from a copy refreshed this often
# (default 3 s): what the autoscaler verifies, a second late at most instead of three.
web.refresh-interval: 1000
restart-strategy.type: fixed-delay
restart-strategy.fixed-delay.attempts: 2147483647
restart-strategy.fixed-delay.delay: 1s

# Every rescale restarts the job from the latest checkpoint. The directory under its 2.x name
# and its 1.x one.
execution.checkpointing.interval: 5s
execution.checkpointing.dir: file://$FLINK_RUN/checkpoints
state.checkpoints.dir: file://$FLINK_RUN/checkpoints

# Small processes: this machine has 2 cores and runs everything else too.
jobmanager.memory.process.size: 768m
taskmanager.memory.process.size: 896m
taskmanager.memory.managed.size: 32m
taskmanager.memory.network.min: 32m
taskmanager.memory.network.max: 32m

env.java.opts.all: "$java_opts"

metrics.reporter.prom.factory.class: org.apache.flink.metrics.prometheus.PrometheusReporterFactory
metrics.reporter.prom.port: "$FLINK_METRICS_PORT_FIRST-$FLINK_METRICS_PORT_LAST"
$(flink_security_config)
YAML
}

# Prefix for running a Flink script with the per-run FLINK_HOME (config.sh would otherwise
# resolve bin/ through its symlink back to the cache).
FLINK_ENV=(env _FLINK_HOME_DETERMINED=1 "FLINK_HOME=$FLINK_RUN/home" "FLINK_CONF_DIR=$FLINK_RUN/home/conf" "FLINK_LOG_DIR=$FLINK_RUN/home/log")

flink_job_running() {
  flink_curl -fsS "$(flink_endpoint)/jobs/overview" | grep -q '"state":"RUNNING"'
}

flink_up() {
  [[ $FLINK_SCHEDULER == reactive || $FLINK_SCHEDULER == adaptive ]] ||
    die "flink: FLINK_SCHEDULER must be reactive or adaptive, not '$FLINK_SCHEDULER'"
  flink_installed || die "flink is not installed: run '$0 install flink'"
  [[ -f $FLINK_JOB_JAR ]] || die "flink: job jar $FLINK_JOB_JAR is missing: run '$0 install flink'"
  if process_alive flink-jobmanager; then log "flink: already running"; return 0; fi
  ensure_ports_free flink "$FLINK_REST_PORT" "$FLINK_RPC_PORT"
  ! security_on || security_install
  rm -rf "$FLINK_RUN" && mkdir -p "$FLINK_RUN"
  flink_write_home
  log "flink: starting the JobManager ($(flink_endpoint), $FLINK_SCHEDULER scheduler, job $FLINK_JOB_CLASS) and $FLINK_TASKMANAGERS TaskManager(s)"
  # shellcheck disable=SC2086 # job arguments are split on purpose
  start_process flink-jobmanager "$FLINK_RUN/jobmanager.log" \
    "${FLINK_ENV[@]}" "$FLINK_RUN/home/bin/standalone-job.sh" start-foreground --job-classname "$FLINK_JOB_CLASS" $FLINK_JOB_ARGS
  wait_for 120 flink-jobmanager flink_curl -fsS "$(flink_endpoint)/overview" || fail_with_log flink-jobmanager "$FLINK_RUN/jobmanager.log"
  flink_scale_taskmanagers "$FLINK_TASKMANAGERS"
  wait_for 120 flink-jobmanager flink_job_running || fail_with_log "flink job" "$FLINK_RUN/jobmanager.log"
}

# Ids of the running TaskManagers, one per line, in start order.
flink_taskmanager_ids() {
  local f
  for f in "$STACK_RUN"/pids/flink-taskmanager-*.pid; do
    [[ -f $f ]] || continue
    f=${f##*/flink-taskmanager-}
    process_alive "flink-taskmanager-${f%.pid}" && echo "${f%.pid}"
  done | sort -n
}

flink_taskmanager_count() { flink_taskmanager_ids | wc -l; }

# flink_lock_taskmanagers: holds an exclusive lock on the TaskManager records until the script
# exits. Two scalings at once (an autoscaler's command target retried while the last call still
# ran, a test beside it) both took the next free id: the second pid file replaced the first, and
# that TaskManager outlived `down`.
flink_lock_taskmanagers() {
  [[ -z ${FLINK_TASKMANAGERS_LOCK:-} ]] || return 0
  mkdir -p "$STACK_RUN"
  exec {FLINK_TASKMANAGERS_LOCK}>"$STACK_RUN/flink-taskmanagers.lock"
  STACK_LOCK_FDS+=("$FLINK_TASKMANAGERS_LOCK")
  flock -w 60 "$FLINK_TASKMANAGERS_LOCK" || die "taskmanagers: another scaling held the lock for 60 s"
}

# flink_scale_taskmanagers N: starts or stops TaskManagers (newest first) until N run.
flink_scale_taskmanagers() {
  local want=$1 ids count next
  [[ $want =~ ^[0-9]+$ ]] || die "taskmanagers: '$want' is not a whole number"
  ((want <= FLINK_MAX_TASKMANAGERS)) || die "taskmanagers: $want is above FLINK_MAX_TASKMANAGERS ($FLINK_MAX_TASKMANAGERS)"
  flink_lock_taskmanagers
  process_alive flink-jobmanager || die "taskmanagers: the Flink JobManager is not running"
  mapfile -t ids < <(flink_taskmanager_ids)
  count=${#ids[@]}
  next=1
  ((count > 0)) && next=$((ids[count - 1] + 1))
  while ((count < want)); do
    start_process "flink-taskmanager-$next" "$FLINK_RUN/taskmanager-$next.log" \
      "${FLINK_ENV[@]}" "$FLINK_RUN/home/bin/taskmanager.sh" start-foreground
    log "flink: started TaskManager $next"
    next=$((next + 1)) count=$((count + 1))
  done
  while ((count > want)); do
    count=$((count - 1))
    stop_process "flink-taskmanager-${ids[$count]}"
    log "flink: stopped TaskManager ${ids[$count]}"
  done
}

flink_down() {
  local id
  flink_lock_taskmanagers
  for id in $(flink_taskmanager_ids); do stop_process "flink-taskmanager-$id"; done
  rm -f "$STACK_RUN"/pids/flink-taskmanager-*.pid
  stop_process flink-jobmanager
}

# flink_running: exit status 0 when flink is up and answering.
flink_running() {
  process_alive flink-jobmanager && flink_curl -fsS -o /dev/null "$(flink_endpoint)/overview"
}

# flink_endpoints: where flink answers, for `stack status`.
flink_endpoints() {
  echo "$(flink_endpoint) ($(flink_taskmanager_count) TaskManager(s))"
}
