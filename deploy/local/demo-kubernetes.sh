# shellcheck shell=bash
# `deploy/local/demo --kubernetes`: the demo as users run it, deploy/k8s on the single-node
# cluster of deploy/local/stack (through the overlay deploy/local/k8s). Sourced by
# deploy/local/demo after it parsed the options (duration, out, status_every) and defined repo,
# stack, log, events_counted and the status table (fetch, metric, status_header, status_line).

namespace=segment-autoscaler-demo
# Bounds of the waits, on a slow 2-core machine.

log "installing what is missing and building demo-report"
"$stack" install cluster pravega prometheus flink
cargo build -q -p demo-report
bin="$repo/target/debug"
eval "$("$stack" env)"

k() { "$STACK_KUBECTL" --kubeconfig "$CLUSTER_KUBECONFIG" --request-timeout=30s -n "$namespace" "$@"; }

# The chaos run (--chaos): the fault loop and the timeline, each a background process; what
# demo-report then judges the faults on.
chaos_pid="" timeline_pid="" chaos_report=()
# job_steady: whether the timeline's last STEADY_SAMPLES samples, the newest under 5 s old, all
# saw the job running at parallelism = segments.
STEADY_SAMPLES=5
job_steady() {
  local line n=0 now
  now=$(date +%s)
  while IFS= read -r line; do
    [[ $line =~ \"at\":([0-9]+) ]] && ((now - BASH_REMATCH[1] < 5)) || return 1
    [[ $line =~ \"segments\":([0-9]+) ]] || return 1
    local segments=${BASH_REMATCH[1]}
    [[ $line =~ \"parallelism\":([0-9]+) ]] && ((BASH_REMATCH[1] == segments)) || return 1
    n=$((n + 1))
  done < <(tail -n "$STEADY_SAMPLES" "$out/timeline.jsonl" 2>/dev/null)
  ((n == STEADY_SAMPLES))
}
# chaos_loop: until $out/chaos.stop exists, one fault every MIN-MAX seconds (seeded), every kind
# in turn in an order reshuffled each round, each appended to faults.tsv; with --duration, none
# in the last MAX seconds, so the last fault's cost is seen; with --rounds, none after that many
# rounds. Each fault waits, up to 2 x MAX seconds more, for a steady job (job_steady): one
# injected while the job still reacts to a segment change (its new TaskManager pods can take a
# minute to register on a loaded node) or to the fault before would be charged that reaction
# and cut the one before short; one injected without is marked so in its detail. It stops only
# between faults, so a freeze it began is always undone.
chaos_loop() {
  local kinds order=() keyed i=0 gap waited steady kind at detail pick min=${fault_every%-*} max=${fault_every#*-}
  if [[ -n $faults ]]; then IFS=, read -ra kinds <<<"$faults"; else mapfile -t kinds < <("$stack" fault --list); fi
  RANDOM=$seed
  while [[ -z $rounds ]] || ((i < rounds * ${#kinds[@]})); do
    if ((i % ${#kinds[@]} == 0)); then
      # The keys drawn here: a subshell would draw from a reseeded generator.
      keyed=""
      for kind in "${kinds[@]}"; do keyed+="$RANDOM $kind"$'\n'; done
      mapfile -t order < <(sort -n <<<"${keyed%$'\n'}" | cut -d' ' -f2)
    fi
    gap=$((min + RANDOM % (max - min + 1)))
    while ((gap-- > 0)); do
      [[ -e $out/chaos.stop ]] && return
      sleep 1
    done
    waited=0 steady=""
    until job_steady; do
      [[ -e $out/chaos.stop ]] && return
      if ((waited >= 2 * max)); then
        steady=" (the job was not steady: not at parallelism = segments for ${STEADY_SAMPLES} s within $((2 * max)) s)"
        break
      fi
      sleep 1
      waited=$((waited + 1))
    done
    [[ -n $duration ]] && (($(date +%s) > start_time + duration - max)) && return
    kind=${order[i % ${#order[@]}]}
    at=$(date +%s.%N)
    pick=$RANDOM # drawn here, not in the subshell below (see above)
    detail=$(STACK_FAULT_PICK=$pick "$stack" fault "$kind" 2>&1) || detail="FAILED: $detail"
    detail+=$steady
    printf '%s\t%s\t%s\n' "$at" "$kind" "${detail//$'\n'/ }" >>"$out/faults.tsv"
    log "fault $((i + 1)): $kind: $detail"
    i=$((i + 1))
  done
}
# timeline_start: run-timeline in the background, every second into $out/timeline.jsonl.
timeline_start() {
  rm -f "$out/timeline.jsonl"
  "$bin/run-timeline" --controller "tcp://$(k get service pravega -o jsonpath='{.spec.clusterIP}'):9090" \
    --stream demo/load --flink "http://$(k get service flink-jobmanager -o jsonpath='{.spec.clusterIP}'):8081" \
    --prometheus "http://$(k get service prometheus -o jsonpath='{.spec.clusterIP}'):9090" \
    --kubeconfig "$CLUSTER_KUBECONFIG" --namespace "$namespace" --out "$out/timeline.jsonl" 2>"$out/run-timeline.log" &
  timeline_pid=$!
}
timeline_stop() {
  [[ -n $timeline_pid ]] || return 0
  kill -TERM "$timeline_pid" 2>/dev/null || true
  wait "$timeline_pid" 2>/dev/null || true
  timeline_pid=""
}
chaos_start() {
  rm -f "$out/faults.tsv" "$out/chaos.stop"
  : >"$out/faults.tsv"
  timeline_start
  chaos_loop &
  chaos_pid=$!
  log "chaos: seed $seed, a fault every $fault_every s (${faults:-every kind}${rounds:+, $rounds round(s)}); faults.tsv and timeline.jsonl in $out"
}
# chaos_stop: ends the loop between two faults, then the timeline; keeps the Events and the
# binding's bounds for the report.
chaos_stop() {
  touch "$out/chaos.stop"
  wait "$chaos_pid" 2>/dev/null || true
  timeline_stop
  k get events -o json >"$out/events.json" 2>/dev/null || true
  local spec min max stabilization
  spec=$(k get segmentscaler busy-reader -o jsonpath='{.spec.minReplicas} {.spec.maxReplicas} {.spec.scaleDownStabilization}' 2>/dev/null) || spec=""
  read -r min max stabilization <<<"$spec"
  chaos_report=(--faults "$out/faults.tsv" --timeline "$out/timeline.jsonl" --scale-events "$out/events.json"
    ${min:+--min-replicas "$min"} ${max:+--max-replicas "$max"} ${stabilization:+--stabilization "$stabilization"})
  log "chaos: $(wc -l <"$out/faults.tsv") faults injected"
}

# --peer: who sizes the job (benches/peers). The load starts only once the owner runs.
peer_pid=""
# peer_components: the kustomize components the owner needs (Flink's autoscaler rescales only
# through the adaptive scheduler, without reactive mode: the prewarmed component's JobManager).
peer_components() {
  case $peer in
    segment-autoscaler) [[ $alignment != prewarmed ]] || echo deploy/k8s/prewarmed ;;
    flink-autoscaler-*) echo deploy/k8s/prewarmed ;;
  esac
}
# peer_start: stops the demo's autoscaler unless it is the owner, and starts the owner.
peer_start() {
  [[ $peer == segment-autoscaler ]] && return 0
  k scale deployment segment-autoscaler --replicas=0 >/dev/null
  k wait --for=delete pod -l app.kubernetes.io/name=segment-autoscaler --timeout=120s >/dev/null 2>&1 || true
  case $peer in
    keda-*)
      "$stack" down prometheus-adapter >/dev/null
      "$stack" running keda || "$stack" up keda >"$out/keda-up.txt" 2>&1 || { cat "$out/keda-up.txt" >&2; exit 1; }
      k apply -f "$repo/deploy/local/peers/$peer.yaml" >/dev/null
      log "KEDA: ScaledObject $peer.yaml applied" ;;
    hpa-prometheus-adapter)
      # Started once the load runs: see peer_after_load.
      "$stack" down keda >/dev/null ;;
    flink-autoscaler-*)
      local jar=${flink_autoscaler_jar:-$repo/../shared/peers/flink-autoscaler-standalone-1.15.0.jar} args
      [[ -f $jar ]] || { log "--peer $peer: no jar at $jar (--flink-autoscaler-jar)"; exit 1; }
      # A fixed pool for the peak of the load (deploy/local/k8s: up to 4 segments).
      k scale deployment flink-taskmanager --replicas=4 >/dev/null
      k rollout status deployment flink-taskmanager --timeout=300s >/dev/null
      # One option and its value a line; comments and blank lines skipped.
      local line words
      args=()
      while read -r line; do
        [[ -z $line || $line == \#* ]] && continue
        read -ra words <<<"$line"
        args+=("${words[@]}")
      done <"$repo/deploy/local/peers/$peer.args"
      java -Xmx256m -jar "$jar" --autoscaler.standalone.fetcher.flink-cluster.host "$(k get service flink-jobmanager -o jsonpath='{.spec.clusterIP}')" \
        --autoscaler.standalone.fetcher.flink-cluster.port 8081 "${args[@]}" >"$out/flink-autoscaler.log" 2>&1 &
      peer_pid=$!
      log "Flink's autoscaler ($jar, ${args[*]}) started, pid $peer_pid; 4 TaskManagers" ;;
  esac
}
# peer_after_load: what the owner needs the load for. prometheus-adapter lists the series it
# serves when it starts, then every 10 minutes (its default relist): started before the stream's
# segment gauge exists, it would not know the metric for 10 minutes. So it starts once
# Prometheus has the gauge (the load created the stream), and the HPA with it.
peer_after_load() {
  [[ $peer == hpa-prometheus-adapter ]] || return 0
  local prometheus waited=0
  prometheus=$(k get service prometheus -o jsonpath='{.spec.clusterIP}')
  until curl -fsS --max-time 5 "http://$prometheus:9090/api/v1/series" --data-urlencode 'match[]=pravega_controller_segments_count{scope="demo",stream="load"}' 2>/dev/null | grep -q '"scope"'; do
    ((waited < 180)) || { log "no segment gauge of demo/load in Prometheus after 180 s"; exit 1; }
    sleep 2
    waited=$((waited + 2))
  done
  "$stack" up prometheus-adapter >"$out/prometheus-adapter-up.txt" 2>&1 || { cat "$out/prometheus-adapter-up.txt" >&2; exit 1; }
  k apply -f "$repo/deploy/local/peers/$peer.yaml" >/dev/null
  log "HPA pipeline: prometheus-adapter started ${waited} s after the load (once Prometheus had the gauge), HorizontalPodAutoscaler applied"
}
peer_stop() {
  [[ $peer != hpa-prometheus-adapter ]] || "$stack" down prometheus-adapter >/dev/null 2>&1 || true
  [[ -n $peer_pid ]] || return 0
  kill -TERM "$peer_pid" 2>/dev/null || true
  wait "$peer_pid" 2>/dev/null || true
  peer_pid=""
}

started_cluster=0 start_time="" finished=0
finish() {
  local status=$?
  ((finished)) && return
  finished=1
  trap - INT TERM EXIT
  log "stopping"
  [[ -z $chaos_pid ]] || chaos_stop
  timeline_stop
  if [[ -n $start_time ]]; then
    local prometheus
    prometheus=$(k get service prometheus -o jsonpath='{.spec.clusterIP}' 2>/dev/null || true)
    # The load stops first: the generator flushes, lingers while Prometheus scrapes its final
    # count, and prints its exit summary (the events Pravega acknowledged); the job then gets
    # up to 2 minutes to verify exactly those. The written count is that summary, followed in
    # the pod's log as it stops (Prometheus' figure, with a 15 s settle, if the log has none).
    local generator written="" pods waited=0
    generator=$(k get pods -l app.kubernetes.io/name=data-generator -o name 2>/dev/null | head -1)
    if [[ -n $generator ]]; then
      timeout 120 "$STACK_KUBECTL" --kubeconfig "$CLUSTER_KUBECONFIG" -n "$namespace" logs -f "$generator" \
        >"$out/${generator#pod/}.log" 2>&1 &
      local follow=$!
    fi
    k scale deployment data-generator --replicas=0 >/dev/null 2>&1 || true
    # Until its pod is gone, polled: a failed `get` counts as still there.
    while ((waited < 90)); do
      pods=$(k get pods -l app.kubernetes.io/name=data-generator -o name 2>&1) || pods="unknown: $pods"
      [[ -z $pods ]] && break
      sleep 1
      waited=$((waited + 1))
    done
    if [[ -n $generator ]]; then
      wait "$follow" || true
      # No summary in the log (a generator that could not stop cleanly): Prometheus' figure.
      written=$(grep '^{"average_rate":' "$out/${generator#pod/}.log" | sed -n 's/.*"events":\([0-9]*\).*/\1/p' | tail -1) || written=""
    fi
    log "data generator stopped after ${waited}s${pods:+ (still there: $pods)}; events written: ${written:-not in its log, taken from Prometheus}"
    # The dashboards show the autoscaler's metrics: checked only where it sized the job.
    local dashboards=(--dashboards "$repo/dashboards")
    [[ -z $peer || $peer == segment-autoscaler ]] || dashboards=()
    log "writing the report to $out (from Prometheus in the cluster, $prometheus; once the job has verified every event written, at most 2 minutes)"
    "$bin/demo-report" --prometheus "http://$prometheus:9090" --from "$start_time" --to now \
      --stream demo/load "${dashboards[@]}" --platform kubernetes --out "$out" --catch-up 120s \
      ${written:+--events-written "$written"} "${chaos_report[@]}" \
      >"$out/summary.line" 2>"$out/report.log" ||
      { log "report failed:"; cat "$out/report.log" >&2; status=1; }
    events_counted || status=1
  fi
  peer_stop
  if "$stack" running cluster; then
    k get events --sort-by=.lastTimestamp >"$out/events.txt" 2>&1 || true
    local pod
    for pod in $(k get pods -o name 2>/dev/null); do
      k logs --all-containers "$pod" >"$out/${pod#pod/}.log" 2>&1 || true
    done
    if ((secure)); then
      # No password of the stack in the Events or any pod's log. Pravega standalone prints its
      # configuration, its own account's and its key store's passwords included: a Pravega
      # behaviour, reported, not counted.
      local name found leaked pravega_own own="^(pravega-admin|keystore) in $out/pravega-"
      found=$(for name in "$STACK_SECURITY_DIR"/passwords/*; do
        grep -lF -- "$(cat "$name")" "$out"/*.log "$out/events.txt" 2>/dev/null | sed "s|^|${name##*/} in |" || true
      done)
      leaked=$(grep -Ev "$own" <<<"$found" || true)
      pravega_own=$(grep -E "$own" <<<"$found" | cut -d' ' -f1 | tr '\n' ' ' || true)
      [[ -z $pravega_own ]] || log "Pravega's own log holds the passwords it was given: $pravega_own"
      if [[ -n $leaked ]]; then log "secrets printed: $leaked"; status=1; else log "no password in the Events or the logs of the autoscaler, the generator, Flink and Prometheus"; fi
    fi
    log "deleting namespace $namespace"
    "$STACK_KUBECTL" --kubeconfig "$CLUSTER_KUBECONFIG" delete namespace "$namespace" --wait=true --timeout=180s >/dev/null ||
      { log "namespace $namespace was not deleted in 180 s"; status=1; }
  fi
  ((started_cluster == 0)) || "$stack" down cluster
  log "done; pod logs, events, report.png and summary.json are in $out"
  exit "$status"
}
trap finish EXIT
trap 'exit 130' INT TERM

if ! "$stack" running cluster; then
  "$stack" up cluster
  started_cluster=1
fi
log "building and importing the images"
"$stack" images --load >"$out/images.txt"

# A fresh namespace, so Pravega (in memory), the stream and Prometheus start empty.
components=()
[[ $alignment == prewarmed ]] && components=(deploy/k8s/prewarmed)
((secure == 0)) || components=(deploy/k8s/secured)
deploy_options=()
if [[ -n $peer ]]; then
  mapfile -t components < <(peer_components)
  ((paced == 0)) || components+=(deploy/local/peers/paced-job)
fi
# The load starts once the generator has its arguments (and with --peer, once the owner runs).
[[ -z $peer ]] && ((period_given == 0)) || deploy_options=(--without-generator)
log "applying deploy/local/k8s (deploy/k8s with local images; $alignment alignment${components:+; ${components[*]}}${peer:+; sized by $peer}) and waiting until every pod is Ready (at most 600 s)"
"$stack" demo-deploy "${deploy_options[@]}" "${components[@]}" >"$out/apply.txt" || exit 1
# set_generator_period: --period replaces the one of deploy/local/k8s in the generator's arguments.
set_generator_period() {
  local index
  index=$(k get deployment data-generator -o jsonpath='{range .spec.template.spec.containers[0].args[*]}{@}{"\n"}{end}' |
    grep -n '^--period=' | cut -d: -f1) || { log "no --period in the data generator's arguments"; exit 1; }
  k patch deployment data-generator --type json \
    -p "[{\"op\": \"replace\", \"path\": \"/spec/template/spec/containers/0/args/$((index - 1))\", \"value\": \"--period=$period\"}]" >/dev/null
  log "data generator: a sine of period $period"
}
# start_generator: the load, from a generator deployed at zero replicas.
start_generator() {
  k scale deployment data-generator --replicas=1 >/dev/null
  k rollout status deployment data-generator --timeout=300s >/dev/null
}
if ((period_given)); then
  set_generator_period
  [[ -n $peer ]] || start_generator
fi
if [[ -n $peer ]]; then
  peer_start
  start_generator
  peer_after_load
  timeline_start
  log "load started; sized by $peer"
fi
k get pods -o wide >&2
start_time=$(date +%s)

# Pod and Service addresses are reached from here: the host routes them to the node.
# The metrics URL of the replica that leads (the other one only stands by).
leader_metrics() {
  local ip
  for ip in $(k get pods -l app.kubernetes.io/name=segment-autoscaler -o jsonpath='{.items[*].status.podIP}'); do
    [[ $(metric segment_autoscaler_leader "http://$ip:9464/metrics") == 1 ]] && { echo "http://$ip:9464/metrics"; return; }
  done
  echo "http://0.0.0.0:1/none"
}
generator_ip=$(k get service data-generator -o jsonpath='{.spec.clusterIP}')

((chaos == 0)) || chaos_start
log "running; Ctrl-C stops the demo"
status_header
deadline=$(($(date +%s) + ${duration:-0}))
while [[ -z $duration ]] || (($(date +%s) < deadline)); do
  ready=$(k get deployment flink-taskmanager -o jsonpath='{.status.readyReplicas}' 2>/dev/null) || ready=-
  status_line "http://$generator_ip:9465/metrics" "$(leader_metrics)" "${ready:-0}"
  sleep "$status_every"
done
