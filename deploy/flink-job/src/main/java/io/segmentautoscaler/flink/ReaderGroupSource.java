package io.segmentautoscaler.flink;

import io.pravega.client.ClientConfig;
import io.pravega.client.stream.ReaderGroupConfig;
import io.pravega.client.stream.Stream;
import io.pravega.shared.security.auth.DefaultCredentials;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.apache.flink.api.connector.source.Boundedness;
import org.apache.flink.api.connector.source.Source;
import org.apache.flink.api.connector.source.SourceReader;
import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.api.connector.source.SplitEnumerator;
import org.apache.flink.api.connector.source.SplitEnumeratorContext;
import org.apache.flink.core.io.SimpleVersionedSerializer;

/**
 * Reads a Pravega stream through one reader group, one reader per subtask (FLIP-27). A reader
 * gets segments only while there are at least as many segments as readers, so readers beyond the
 * segment count sit idle, as with the Pravega Flink connector.
 *
 * <p><b>Delivery.</b> Reader positions are tied to Flink checkpoints the way the Pravega
 * connector ties them: when Flink checkpoints, the enumerator starts a reader-group checkpoint;
 * each reader meets it as a marker in its own stream of events and injects the Flink barrier
 * exactly there (an externally induced checkpoint); the enumerator stores the reader-group
 * checkpoint (every segment's position at those barriers) as its state. Every start (a restart
 * after a failure, and every rescale, which restarts the job) resets the reader group to the
 * stored checkpoint, or to the head of the stream when no checkpoint completed yet. So the
 * operators' state after a restore reflects exactly the events before the positions the readers
 * continue from: no event is skipped, and none is counted twice in Flink state (exactly-once
 * for state). Events reach downstream operators again only if they were processed after the last
 * completed checkpoint (at-least-once for outputs that are not transactional, bounded by the
 * checkpoint interval).
 */
final class ReaderGroupSource implements Source<byte[], SubtaskSplit, ReaderGroupPosition> {
    private static final long serialVersionUID = 1L;

    private final Settings settings;

    ReaderGroupSource(Settings settings) {
        this.settings = settings;
    }

    @Override
    public Boundedness getBoundedness() {
        return Boundedness.CONTINUOUS_UNBOUNDED;
    }

    @Override
    public SourceReader<byte[], SubtaskSplit> createReader(SourceReaderContext context) {
        return new ReaderGroupReader(settings, context);
    }

    @Override
    public SplitEnumerator<SubtaskSplit, ReaderGroupPosition> createEnumerator(SplitEnumeratorContext<SubtaskSplit> context) {
        return new ReaderGroupEnumerator(settings, context, ReaderGroupPosition.none());
    }

    @Override
    public SplitEnumerator<SubtaskSplit, ReaderGroupPosition> restoreEnumerator(
            SplitEnumeratorContext<SubtaskSplit> context, ReaderGroupPosition checkpoint) {
        return new ReaderGroupEnumerator(settings, context, checkpoint);
    }

    @Override
    public SimpleVersionedSerializer<SubtaskSplit> getSplitSerializer() {
        return new SubtaskSplit.Serializer();
    }

    @Override
    public SimpleVersionedSerializer<ReaderGroupPosition> getEnumeratorCheckpointSerializer() {
        return new ReaderGroupPosition.Serializer();
    }

    /**
     * Where to read, how long a reader-group checkpoint may take, and how to reach a secured
     * Pravega: the CA to trust for a {@code tls://} controller (host names verified) and a
     * basic-auth account whose password is read from a file where the client is made (a
     * mounted Secret on every pod), so it never travels in the job graph.
     */
    static final class Settings implements Serializable {
        private static final long serialVersionUID = 2L;

        final String controller;
        final String scope;
        final String stream;
        final String readerGroup;
        final Duration checkpointTimeout;
        final String tlsCaFile;
        final String username;
        final String passwordFile;

        Settings(String controller, String scope, String stream, String readerGroup, Duration checkpointTimeout,
                String tlsCaFile, String username, String passwordFile) {
            if (controller.startsWith("tls://") != (tlsCaFile != null)) {
                throw new IllegalArgumentException("--tls-ca-file goes with a tls:// --controller, and only with one");
            }
            if ((username == null) != (passwordFile == null)) {
                throw new IllegalArgumentException("--username and --password-file go together");
            }
            this.controller = controller;
            this.scope = scope;
            this.stream = stream;
            this.readerGroup = readerGroup;
            this.checkpointTimeout = checkpointTimeout;
            this.tlsCaFile = tlsCaFile;
            this.username = username;
            this.passwordFile = passwordFile;
        }

        ClientConfig clientConfig() {
            ClientConfig.ClientConfigBuilder builder = ClientConfig.builder().controllerURI(URI.create(controller));
            if (tlsCaFile != null) {
                builder.trustStore(tlsCaFile).validateHostName(true);
            }
            if (username != null) {
                builder.credentials(new DefaultCredentials(readPassword(), username));
            }
            return builder.build();
        }

        private String readPassword() {
            try {
                return Files.readString(Path.of(passwordFile), StandardCharsets.UTF_8).trim();
            } catch (IOException e) {
                throw new UncheckedIOException("--password-file " + passwordFile, e);
            }
        }

        /** The group's configuration: the whole stream, checkpoints only when Flink asks. */
        ReaderGroupConfig.ReaderGroupConfigBuilder groupConfig() {
            return ReaderGroupConfig.builder().stream(Stream.of(scope, stream)).disableAutomaticCheckpoints();
        }
    }
}
