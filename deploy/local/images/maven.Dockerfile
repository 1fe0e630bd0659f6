# The Maven build base (stands in for the public maven image): Debian's Maven and JDK 17,
# trusting the certificate authorities the machine adds so Maven reaches Maven Central.
# Context: ca-certificates/, staged by images.sh.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
COPY ca-certificates /usr/local/share/ca-certificates
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && update-ca-certificates \
 && apt-get install -y --no-install-recommends openjdk-17-jdk-headless maven \
 && update-ca-certificates --fresh \
 && rm -rf /var/lib/apt/lists/*
