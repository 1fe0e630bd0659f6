# curl on the Debian base, for tests that call the API server from inside a pod (an ephemeral
# container in the autoscaler's pod, with its ServiceAccount token): the autoscaler's own image
# has no shell and no client.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["curl"]
