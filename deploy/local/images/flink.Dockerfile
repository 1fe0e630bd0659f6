# Flink for the local overlay, standing in for the public flink image (which cannot be pulled
# here): the distribution the local stack runs (from PyPI, see lib/flink.sh) in /opt/flink, run as
# user flink (9999), and an entrypoint taking the same commands as the public image's
# (standalone-job, jobmanager, taskmanager), with the configuration mounted at /opt/flink/conf.
# Context: the Flink home (bin, conf, lib, plugins) and flink-entrypoint.sh, staged by images.sh.
ARG JAVA_IMAGE
FROM ${JAVA_IMAGE}
# The JDK internals Flink needs opened on Java 17 come with the configuration
# (env.java.opts.all), as with the public image.
ENV FLINK_HOME=/opt/flink \
    PATH=/opt/flink/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN groupadd --system --gid 9999 flink \
 && useradd --system --uid 9999 --gid flink --home-dir /opt/flink --no-create-home flink
COPY bin /opt/flink/bin
COPY conf /opt/flink/conf
COPY lib /opt/flink/lib
COPY plugins /opt/flink/plugins
COPY flink-entrypoint.sh /flink-entrypoint.sh
RUN mkdir -p /opt/flink/log /opt/flink/usrlib \
 && chown -R flink:flink /opt/flink/log /opt/flink/usrlib
WORKDIR /opt/flink
USER flink
EXPOSE 6123 8081
ENTRYPOINT ["/flink-entrypoint.sh"]
CMD ["help"]
