# prometheus-adapter, as deploy/local/lib/hpa.sh builds it from the Go module proxy: a static
# binary, nothing else.
FROM scratch
COPY adapter /adapter
USER 65532:65532
ENTRYPOINT ["/adapter"]
