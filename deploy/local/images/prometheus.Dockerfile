# Prometheus for the local overlay, standing in for the public prom/prometheus image (which
# cannot be pulled here): the Debian package the local stack runs (see lib/prometheus.sh) on the
# Debian base, with the public image's entrypoint path, user and data directory.
# Context: root/ (the unpacked package), staged by images.sh.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
COPY root/usr/bin/prometheus root/usr/bin/promtool /bin/
# The web console Debian builds apart from the binary.
COPY root/usr/share/prometheus /usr/share/prometheus
RUN mkdir -p /prometheus /etc/prometheus && chown 65534:65534 /prometheus
USER 65534:65534
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
