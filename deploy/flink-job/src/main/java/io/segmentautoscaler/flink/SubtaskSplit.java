package io.segmentautoscaler.flink;

import java.nio.charset.StandardCharsets;
import org.apache.flink.api.connector.source.SourceSplit;
import org.apache.flink.core.io.SimpleVersionedSerializer;

/**
 * The one split of a subtask, named after it (`subtask-N`): for the busy reader, the id of the
 * subtask's reader in the Pravega reader group (which segments it reads is Pravega's business, so
 * the split carries no position: positions live in the reader group and its checkpoints); for
 * the smoke job, just the subtask's turn to count.
 */
final class SubtaskSplit implements SourceSplit {
    private final String id;

    SubtaskSplit(String id) {
        this.id = id;
    }

    static SubtaskSplit of(int subtask) {
        return new SubtaskSplit("subtask-" + subtask);
    }

    String id() {
        return id;
    }

    @Override
    public String splitId() {
        return id;
    }

    @Override
    public String toString() {
        return id;
    }

    /** The reader id as UTF-8. */
    static final class Serializer implements SimpleVersionedSerializer<SubtaskSplit> {
        @Override
        public int getVersion() {
            return 1;
        }

        @Override
        public byte[] serialize(SubtaskSplit split) {
            return split.id.getBytes(StandardCharsets.UTF_8);
        }

        @Override
        public SubtaskSplit deserialize(int version, byte[] serialized) {
            return new SubtaskSplit(new String(serialized, StandardCharsets.UTF_8));
        }
    }
}
