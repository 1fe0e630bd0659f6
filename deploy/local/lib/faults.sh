# shellcheck shell=bash
# Faults injected into the demo on the single-node cluster (`deploy/local/stack fault KIND`), as
# pods and nodes fail where users run it. Each prints one line: what it hit. The chaos run
# (`deploy/local/demo --kubernetes --chaos`) and tests/cluster_chaos.rs inject them one at a time.

# Every kind, in the order `fault --list` prints them.
CLUSTER_FAULTS=(leader-pod taskmanager jobmanager-pod apiserver-freeze kubelet-restart controller-freeze)
# How long the freezes last.
CLUSTER_APISERVER_FREEZE=20
CLUSTER_CONTROLLER_FREEZE=10

fault_kubectl() { cluster_kubectl --request-timeout=30s -n "$CLUSTER_DEMO_NAMESPACE" "$@"; }

# fault_container_id SELECTOR: the pod name and containerd id of the first container of a Running
# pod matched by SELECTOR, picked among them by STACK_FAULT_PICK (a number the chaos run draws from
# its seed, so that a seed repeats its victims) or at random.
fault_container_id() {
  local ids
  mapfile -t ids < <(fault_kubectl get pods -l "$1" --field-selector=status.phase=Running \
    -o jsonpath='{range .items[*]}{.metadata.name} {.status.containerStatuses[0].containerID}{"\n"}{end}' | grep 'containerd://')
  ((${#ids[@]} > 0)) || die "no running pod matches $1"
  local pick=${STACK_FAULT_PICK:-$RANDOM}
  [[ $pick =~ ^[0-9]+$ ]] || die "STACK_FAULT_PICK must be a number, not '$pick'"
  echo "${ids[pick % ${#ids[@]}]}"
}

# cluster_fault KIND: injects one fault of KIND (see CLUSTER_FAULTS); returns once it is injected
# (a freeze once it is over).
cluster_fault() {
  local kind=${1:-} pod id holder pid
  [[ $kind == --list ]] && { printf '%s\n' "${CLUSTER_FAULTS[@]}"; return; }
  # A loaded node's API server can answer readyz 500 for a while (etcd slow): not a reason to
  # skip a fault, a stopped cluster is.
  wait_for 60 cluster-apiserver cluster_running || die "the cluster is not running: deploy/local/stack up cluster"
  case $kind in
    leader-pod)
      # The Lease's holder is "POD-PID"; the pod goes as on a drain (SIGTERM, grace period).
      holder=$(fault_kubectl get lease segment-autoscaler -o jsonpath='{.spec.holderIdentity}') || die "no Lease"
      pod=${holder%-*}
      [[ -n $pod ]] || die "the Lease has no holder"
      fault_kubectl delete pod "$pod" --wait=false >/dev/null || die "deleting the leader's pod $pod failed"
      echo "deleted the leading autoscaler's pod $pod"
      ;;
    taskmanager)
      # SIGKILL to the container's processes, as the OOM killer does: no graceful stop.
      read -r pod id < <(fault_container_id component=taskmanager)
      ctr -a "$CLUSTER_CONTAINERD_SOCK" -n k8s.io tasks kill -a -s SIGKILL "${id#containerd://}" ||
        die "killing the container of $pod failed"
      echo "SIGKILLed the TaskManager container of $pod"
      ;;
    jobmanager-pod)
      pod=$(fault_kubectl get pods -l component=jobmanager --field-selector=status.phase=Running -o name | head -1)
      [[ -n $pod ]] || die "no running JobManager pod"
      fault_kubectl delete "$pod" --wait=false >/dev/null || die "deleting $pod failed"
      echo "deleted the JobManager's ${pod#pod/}"
      ;;
    apiserver-freeze)
      pid=$(recorded_pid cluster-apiserver) || die "kube-apiserver is not running"
      kill -STOP "$pid"
      sleep "$CLUSTER_APISERVER_FREEZE"
      kill -CONT "$pid"
      echo "froze kube-apiserver (SIGSTOP) for ${CLUSTER_APISERVER_FREEZE} s"
      ;;
    kubelet-restart)
      stop_process cluster-kubelet
      cluster_start_kubelet
      wait_for 120 cluster-kubelet cluster_kubectl wait --for=condition=Ready "node/$CLUSTER_NODE_NAME" --timeout 5s ||
        die "the kubelet did not come back Ready"
      echo "restarted the kubelet"
      ;;
    controller-freeze)
      # Pravega standalone runs its controller in one JVM with the segment store and their
      # ZooKeeper: freezing that JVM for 10 s once lost the store's segment container for good
      # ("Wrong host" to every writer until the end), which no outage of a production
      # controller does. What a frozen controller is to its clients (the autoscaler, the
      # generator's scaling, the job's readers) is a port that answers nothing: its gRPC port
      # drops every packet from outside the pod for the freeze.
      read -r pod id < <(fault_container_id app.kubernetes.io/name=pravega)
      pid=$(ctr -a "$CLUSTER_CONTAINERD_SOCK" -n k8s.io tasks ls | awk -v id="${id#containerd://}" '$1 == id { print $2 }')
      [[ $pid =~ ^[0-9]+$ ]] || die "no process for the container of $pod"
      local rule=(INPUT ! -i lo -p tcp --dport 9090 -j DROP)
      nsenter -t "$pid" -n iptables -I "${rule[@]}" || die "blocking the controller's port in $pod failed"
      sleep "$CLUSTER_CONTROLLER_FREEZE"
      nsenter -t "$pid" -n iptables -D "${rule[@]}" || die "unblocking the controller's port in $pod failed"
      echo "froze Pravega's controller in $pod for ${CLUSTER_CONTROLLER_FREEZE} s (its port dropped every packet)"
      ;;
    *) die "unknown fault '$kind' (expected: ${CLUSTER_FAULTS[*]})" ;;
  esac
}
