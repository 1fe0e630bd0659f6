#!/bin/bash
# The commands of the public Flink image this project's manifests use, each in the foreground
# with the log on the console (what `kubectl logs` shows).
set -euo pipefail
command=${1:-help}
case $command in
  standalone-job) shift; exec "$FLINK_HOME/bin/standalone-job.sh" start-foreground "$@" ;;
  jobmanager) shift; exec "$FLINK_HOME/bin/jobmanager.sh" start-foreground "$@" ;;
  taskmanager) shift; exec "$FLINK_HOME/bin/taskmanager.sh" start-foreground "$@" ;;
  help) echo "usage: standalone-job|jobmanager|taskmanager [ARGS...], or any command" ;;
  *) exec "$@" ;;
esac
