# The Flink busy-reader job on the official Flink 2.3.0 image (Java 17), in usrlib/ for
# application mode (FLINK_VERSION=1.20.x with a 1.20 FLINK_IMAGE builds it for the 1.x LTS).
# Build from the repository root:
#   docker build -f deploy/docker/flink-job.Dockerfile -t segment-autoscaler-flink-job:TAG .   (TAG: deploy/k8s/kustomization.yaml)
# MAVEN_IMAGE and FLINK_IMAGE name the bases; the local stack builds this file with buildah on
# bases made from Debian packages and the Flink distribution it runs (deploy/local/images).
ARG MAVEN_IMAGE=maven:3.9-eclipse-temurin-17
ARG FLINK_IMAGE=flink:2.3.0-java17
FROM ${MAVEN_IMAGE} AS build
ARG FLINK_VERSION=2.3.0
WORKDIR /src
COPY deploy/flink-job/pom.xml .
RUN mvn -B -q dependency:go-offline -Dflink.version=${FLINK_VERSION}
COPY deploy/flink-job/src ./src
RUN mvn -B -q package -DskipTests -Dflink.version=${FLINK_VERSION} \
 && cp target/flink-${FLINK_VERSION}/segment-autoscaler-flink-job.jar /src/

# The image carries the Prometheus reporter under plugins/ already.
FROM ${FLINK_IMAGE}
COPY --from=build /src/segment-autoscaler-flink-job.jar /opt/flink/usrlib/
USER flink
