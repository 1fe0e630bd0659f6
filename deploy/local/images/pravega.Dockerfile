# Pravega standalone for the local overlay, standing in for the public pravega/pravega image
# (which cannot be pulled here): the classpath the local stack runs (Maven Central, see
# lib/pravega.sh) on the Java base, and an entrypoint taking the public image's `standalone`
# command with its settings in JAVA_OPTS.
# Context: lib/ (the jars), classpath.txt (their order), the entrypoint and the default settings
# (pravega-*), staged by images.sh.
ARG JAVA_IMAGE
FROM ${JAVA_IMAGE}
RUN groupadd --system --gid 10000 pravega \
 && useradd --system --uid 10000 --gid pravega --home-dir /opt/pravega --no-create-home pravega
COPY lib /opt/pravega/lib
COPY classpath.txt /opt/pravega/classpath.txt
COPY pravega-entrypoint.sh /pravega-entrypoint.sh
COPY pravega-standalone-config.properties /opt/pravega/config/standalone-config.properties
RUN mkdir -p /opt/pravega/log && chown pravega:pravega /opt/pravega/log
WORKDIR /opt/pravega
USER 10000:10000
EXPOSE 9090 9091 6000
ENTRYPOINT ["/pravega-entrypoint.sh"]
CMD ["standalone"]
