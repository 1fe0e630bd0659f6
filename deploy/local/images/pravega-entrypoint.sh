#!/bin/bash
# `standalone`: ZooKeeper, a controller and a segment store in one JVM, in-memory storage,
# configured by the -D properties in JAVA_OPTS (as the public image reads them).
set -euo pipefail
case ${1:-standalone} in
  standalone)
    # shellcheck disable=SC2086 # JAVA_OPTS holds several options
    exec java ${JAVA_OPTS:-} -Dlog.dir=/opt/pravega/log -cp "$(cat /opt/pravega/classpath.txt)" io.pravega.local.LocalPravegaEmulator ;;
  *) exec "$@" ;;
esac
