# The Flink busy-reader job on the official Flink 1.16.3 image (Java 11), in usrlib/ for
# application mode. Build from the repository root:
#   docker build -f deploy/docker/flink-job.Dockerfile -t segment-autoscaler-flink-job:0.1.0 .
# MAVEN_IMAGE and FLINK_IMAGE name the bases; the local stack builds this file with buildah on
# bases made from Debian packages and the Flink distribution it runs (deploy/local/images).
ARG MAVEN_IMAGE=maven:3.9-eclipse-temurin-11
ARG FLINK_IMAGE=flink:1.16.3-java11
FROM ${MAVEN_IMAGE} AS build
WORKDIR /src
COPY deploy/flink-job/pom.xml .
RUN mvn -B -q dependency:go-offline
COPY deploy/flink-job/src ./src
RUN mvn -B -q package -DskipTests

# The image carries the Prometheus reporter under plugins/ already.
FROM ${FLINK_IMAGE}
COPY --from=build /src/target/segment-autoscaler-flink-job.jar /opt/flink/usrlib/
USER flink
