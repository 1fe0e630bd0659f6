# The Java runtime base of the local Flink and Pravega images: Debian's OpenJDK 17 runtime
# (bookworm has no 11) on the Debian base.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/*
