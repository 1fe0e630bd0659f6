package io.segmentautoscaler.flink;

import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.auth.MoreCallCredentials;
import io.grpc.netty.shaded.io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.pravega.client.ClientConfig;
import io.pravega.client.control.impl.PravegaCredentialsWrapper;
import io.pravega.client.segment.impl.Segment;
import io.pravega.client.stream.Stream;
import io.pravega.client.stream.StreamCut;
import io.pravega.controller.stream.api.grpc.v1.Controller;
import io.pravega.controller.stream.api.grpc.v1.ControllerServiceGrpc;
import java.io.File;
import java.net.URI;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLException;

/**
 * Whether a stream cut is well formed (each key of the stream in exactly one of its segments),
 * as the Pravega controller judges it (its {@code isStreamCutValid} call, which compares the
 * segments' key ranges; the client's own API has no such call, and listing segments from a cut
 * accepts one that covers half of the keys).
 *
 * <p>A reader group reset to positions that are not a well-formed cut can wait forever: a
 * successor segment missing from them waits for a predecessor they do not hold either.
 */
final class WellFormedCuts implements AutoCloseable {
    private final ManagedChannel channel;
    private final ControllerServiceGrpc.ControllerServiceBlockingStub controller;
    private final Duration timeout;

    /**
     * A connection to the controller of {@code config}: plain for {@code tcp://}, TLS trusting
     * its trust store (and checking the host name, as the job's client does) for {@code tls://},
     * with its credentials when it has some.
     */
    WellFormedCuts(ClientConfig config, Duration timeout) throws SSLException {
        URI uri = config.getControllerURI();
        NettyChannelBuilder builder = NettyChannelBuilder.forAddress(uri.getHost(), uri.getPort());
        if ("tls".equals(uri.getScheme())) {
            var ssl = GrpcSslContexts.forClient();
            if (config.getTrustStore() != null) {
                ssl.trustManager(new File(config.getTrustStore()));
            }
            builder.sslContext(ssl.build());
        } else {
            builder.usePlaintext();
        }
        this.channel = builder.build();
        ControllerServiceGrpc.ControllerServiceBlockingStub stub = ControllerServiceGrpc.newBlockingStub(channel);
        if (config.getCredentials() != null) {
            stub = stub.withCallCredentials(MoreCallCredentials.from(new PravegaCredentialsWrapper(config.getCredentials())));
        }
        this.controller = stub;
        this.timeout = timeout;
    }

    /**
     * Returns when the controller finds {@code cut} of {@code stream} well formed within the
     * timeout.
     *
     * @throws NotWellFormed when it does not, fails or does not answer in time (the caller
     *     cannot tell a bad cut from an unreachable controller, and treats both the same)
     */
    void require(Stream stream, StreamCut cut) throws NotWellFormed {
        if (cut == null) {
            throw new NotWellFormed("no position of " + stream.getScopedName(), null);
        }
        Controller.StreamCut.Builder request = Controller.StreamCut.newBuilder()
                .setStreamInfo(Controller.StreamInfo.newBuilder().setScope(stream.getScope()).setStream(stream.getStreamName()));
        for (Map.Entry<Segment, Long> position : cut.asImpl().getPositions().entrySet()) {
            request.putCut(position.getKey().getSegmentId(), position.getValue());
        }
        boolean wellFormed;
        try {
            wellFormed = controller.withDeadlineAfter(timeout.toMillis(), TimeUnit.MILLISECONDS)
                    .isStreamCutValid(request.build()).getResponse();
        } catch (StatusRuntimeException e) {
            throw new NotWellFormed("the controller did not judge " + cut + ": " + e.getStatus(), e);
        }
        if (!wellFormed) {
            throw new NotWellFormed("the controller finds keys missing from " + cut + " or in two of its segments", null);
        }
    }

    @Override
    public void close() {
        channel.shutdownNow();
    }

    /** A cut that is not shown to be well formed. */
    static final class NotWellFormed extends Exception {
        private static final long serialVersionUID = 1L;

        NotWellFormed(String message, Throwable cause) {
            super(message, cause);
        }
    }
}
