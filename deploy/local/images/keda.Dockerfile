# KEDA's operator and metrics adapter, as deploy/local/lib/keda.sh builds them from the Go module
# proxy: static binaries, nothing else. The paths are those KEDA's manifests run.
FROM scratch
COPY keda /keda
COPY keda-adapter /keda-adapter
USER 1000:1000
