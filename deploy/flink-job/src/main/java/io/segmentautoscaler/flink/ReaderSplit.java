package io.segmentautoscaler.flink;

import java.nio.charset.StandardCharsets;
import org.apache.flink.api.connector.source.SourceSplit;
import org.apache.flink.core.io.SimpleVersionedSerializer;

/**
 * One reader of the Pravega reader group, named after the subtask that runs it. Which segments
 * it reads is Pravega's business (the group balances segments over its readers), so the split
 * carries no position: positions live in the reader group and in its checkpoints.
 */
final class ReaderSplit implements SourceSplit {
    private final String readerId;

    ReaderSplit(String readerId) {
        this.readerId = readerId;
    }

    static ReaderSplit forSubtask(int subtask) {
        return new ReaderSplit("subtask-" + subtask);
    }

    String readerId() {
        return readerId;
    }

    @Override
    public String splitId() {
        return readerId;
    }

    @Override
    public String toString() {
        return readerId;
    }

    /** The reader id as UTF-8. */
    static final class Serializer implements SimpleVersionedSerializer<ReaderSplit> {
        @Override
        public int getVersion() {
            return 1;
        }

        @Override
        public byte[] serialize(ReaderSplit split) {
            return split.readerId.getBytes(StandardCharsets.UTF_8);
        }

        @Override
        public ReaderSplit deserialize(int version, byte[] serialized) {
            return new ReaderSplit(new String(serialized, StandardCharsets.UTF_8));
        }
    }
}
