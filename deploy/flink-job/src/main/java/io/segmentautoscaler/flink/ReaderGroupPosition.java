package io.segmentautoscaler.flink;

import io.pravega.client.stream.Checkpoint;
import java.nio.ByteBuffer;
import org.apache.flink.core.io.SimpleVersionedSerializer;

/**
 * The enumerator's state: the reader-group checkpoint taken with a Flink checkpoint (the
 * position of every segment at the point where each reader injected that checkpoint's
 * barrier), or none before the first one completed.
 */
final class ReaderGroupPosition {
    private final Checkpoint checkpoint;

    private ReaderGroupPosition(Checkpoint checkpoint) {
        this.checkpoint = checkpoint;
    }

    static ReaderGroupPosition none() {
        return new ReaderGroupPosition(null);
    }

    /**
     * The position of a completed reader-group checkpoint.
     *
     * @throws IllegalArgumentException when it holds no segment position at all: Pravega completes
     *     one when every reader passed it while owning no segment (in the middle of a merge, the
     *     successor waiting for its predecessors), and a reader group cannot be reset to it, so a
     *     job restored from it would fail at every restart.
     */
    static ReaderGroupPosition at(Checkpoint checkpoint) {
        if (checkpoint.asImpl().getPositions().isEmpty()) {
            throw new IllegalArgumentException("reader-group checkpoint " + checkpoint.getName()
                    + " holds no segment position (no reader owned a segment when it passed it)");
        }
        return new ReaderGroupPosition(checkpoint);
    }

    /** The checkpoint to restart from, or null to start from the head of the stream. */
    Checkpoint checkpoint() {
        return checkpoint;
    }

    /** Pravega's own serialized checkpoint, empty for none. */
    static final class Serializer implements SimpleVersionedSerializer<ReaderGroupPosition> {
        @Override
        public int getVersion() {
            return 1;
        }

        @Override
        public byte[] serialize(ReaderGroupPosition position) {
            if (position.checkpoint == null) {
                return new byte[0];
            }
            ByteBuffer bytes = position.checkpoint.toBytes();
            byte[] out = new byte[bytes.remaining()];
            bytes.get(out);
            return out;
        }

        @Override
        public ReaderGroupPosition deserialize(int version, byte[] serialized) {
            if (serialized.length == 0) {
                return none();
            }
            return new ReaderGroupPosition(Checkpoint.fromBytes(ByteBuffer.wrap(serialized)));
        }
    }
}
