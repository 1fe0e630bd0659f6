package io.segmentautoscaler.flink;

import io.pravega.client.ClientConfig;
import io.pravega.client.stream.ReaderGroupConfig;
import io.pravega.client.stream.Stream;
import java.io.Serializable;
import java.net.URI;
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

    /** Where to read and how long a reader-group checkpoint may take. */
    static final class Settings implements Serializable {
        private static final long serialVersionUID = 1L;

        final String controller;
        final String scope;
        final String stream;
        final String readerGroup;
        final Duration checkpointTimeout;

        Settings(String controller, String scope, String stream, String readerGroup, Duration checkpointTimeout) {
            this.controller = controller;
            this.scope = scope;
            this.stream = stream;
            this.readerGroup = readerGroup;
            this.checkpointTimeout = checkpointTimeout;
        }

        ClientConfig clientConfig() {
            return ClientConfig.builder().controllerURI(URI.create(controller)).build();
        }

        /** The group's configuration: the whole stream, checkpoints only when Flink asks. */
        ReaderGroupConfig.ReaderGroupConfigBuilder groupConfig() {
            return ReaderGroupConfig.builder().stream(Stream.of(scope, stream)).disableAutomaticCheckpoints();
        }
    }
}
