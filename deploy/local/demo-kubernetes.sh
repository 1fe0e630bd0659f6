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
# chaos_loop: until $out/chaos.stop exists, one fault every MIN-MAX seconds (seeded), every kind
# in turn in an order reshuffled each round, each appended to faults.tsv; with --duration, none
# in the last MAX seconds, so the last fault's cost is seen; with --rounds, none after that many
# rounds. It stops only between faults, so a freeze it began is always undone.
chaos_loop() {
  local kinds order=() keyed i=0 gap kind at detail pick min=${fault_every%-*} max=${fault_every#*-}
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
    [[ -n $duration ]] && (($(date +%s) > start_time + duration - max)) && return
    kind=${order[i % ${#order[@]}]}
    at=$(date +%s.%N)
    pick=$RANDOM # drawn here, not in the subshell below (see above)
    detail=$(STACK_FAULT_PICK=$pick "$stack" fault "$kind" 2>&1) || detail="FAILED: $detail"
    printf '%s\t%s\t%s\n' "$at" "$kind" "${detail//$'\n'/ }" >>"$out/faults.tsv"
    log "fault $((i + 1)): $kind: $detail"
    i=$((i + 1))
  done
}
chaos_start() {
  rm -f "$out/faults.tsv" "$out/timeline.jsonl" "$out/chaos.stop"
  : >"$out/faults.tsv"
  "$bin/chaos-timeline" --controller "tcp://$(k get service pravega -o jsonpath='{.spec.clusterIP}'):9090" \
    --stream demo/load --flink "http://$(k get service flink-jobmanager -o jsonpath='{.spec.clusterIP}'):8081" \
    --kubeconfig "$CLUSTER_KUBECONFIG" --namespace "$namespace" --out "$out/timeline.jsonl" 2>"$out/chaos-timeline.log" &
  timeline_pid=$!
  chaos_loop &
  chaos_pid=$!
  log "chaos: seed $seed, a fault every $fault_every s (${faults:-every kind}${rounds:+, $rounds round(s)}); faults.tsv and timeline.jsonl in $out"
}
# chaos_stop: ends the loop between two faults, then the timeline; keeps the Events and the
# binding's bounds for the report.
chaos_stop() {
  touch "$out/chaos.stop"
  wait "$chaos_pid" 2>/dev/null || true
  kill -TERM "$timeline_pid" 2>/dev/null || true
  wait "$timeline_pid" 2>/dev/null || true
  k get events -o json >"$out/events.json" 2>/dev/null || true
  local spec min max stabilization
  spec=$(k get segmentscaler busy-reader -o jsonpath='{.spec.minReplicas} {.spec.maxReplicas} {.spec.scaleDownStabilization}' 2>/dev/null) || spec=""
  read -r min max stabilization <<<"$spec"
  chaos_report=(--faults "$out/faults.tsv" --timeline "$out/timeline.jsonl" --scale-events "$out/events.json"
    ${min:+--min-replicas "$min"} ${max:+--max-replicas "$max"} ${stabilization:+--stabilization "$stabilization"})
  log "chaos: $(wc -l <"$out/faults.tsv") faults injected"
}

started_cluster=0 start_time="" finished=0
finish() {
  local status=$?
  ((finished)) && return
  finished=1
  trap - INT TERM EXIT
  log "stopping"
  [[ -z $chaos_pid ]] || chaos_stop
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
    log "writing the report to $out (from Prometheus in the cluster, $prometheus; once the job has verified every event written, at most 2 minutes)"
    "$bin/demo-report" --prometheus "http://$prometheus:9090" --from "$start_time" --to now \
      --stream demo/load --dashboards "$repo/dashboards" --platform kubernetes --out "$out" --catch-up 120s \
      ${written:+--events-written "$written"} "${chaos_report[@]}" \
      >"$out/summary.line" 2>"$out/report.log" ||
      { log "report failed:"; cat "$out/report.log" >&2; status=1; }
    events_counted || status=1
  fi
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
log "applying deploy/local/k8s (deploy/k8s with local images; $alignment alignment${components:+; ${components[*]}}) and waiting until every pod is Ready (at most 600 s)"
"$stack" demo-deploy "${components[@]}" >"$out/apply.txt" || exit 1
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
