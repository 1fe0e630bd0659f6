package io.segmentautoscaler.flink;

import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.locks.LockSupport;
import org.apache.flink.api.connector.source.Boundedness;
import org.apache.flink.api.connector.source.ReaderOutput;
import org.apache.flink.api.connector.source.Source;
import org.apache.flink.api.connector.source.SourceReader;
import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.api.connector.source.SplitEnumerator;
import org.apache.flink.api.connector.source.SplitEnumeratorContext;
import org.apache.flink.core.io.InputStatus;
import org.apache.flink.core.io.SimpleVersionedSerializer;

/**
 * The smoke job's source: every subtask counts up at a steady pace, forever, whatever the
 * parallelism. (Flink's number-sequence source is bounded and split once: after a rescale to
 * more subtasks than splits the extra subtasks finish, and a job with finished tasks no longer
 * follows its TaskManagers down.)
 */
final class PacedCounterSource implements Source<Long, SubtaskSplit, Integer> {
    private static final long serialVersionUID = 1L;

    private final long pauseNanos;

    PacedCounterSource(long recordsPerSecond) {
        this.pauseNanos = 1_000_000_000L / Math.max(1, recordsPerSecond);
    }

    @Override
    public Boundedness getBoundedness() {
        return Boundedness.CONTINUOUS_UNBOUNDED;
    }

    @Override
    public SourceReader<Long, SubtaskSplit> createReader(SourceReaderContext context) {
        return new Reader(pauseNanos);
    }

    @Override
    public SplitEnumerator<SubtaskSplit, Integer> createEnumerator(SplitEnumeratorContext<SubtaskSplit> context) {
        return new OneSplitPerSubtask(context);
    }

    @Override
    public SplitEnumerator<SubtaskSplit, Integer> restoreEnumerator(SplitEnumeratorContext<SubtaskSplit> context, Integer state) {
        return new OneSplitPerSubtask(context);
    }

    @Override
    public SimpleVersionedSerializer<SubtaskSplit> getSplitSerializer() {
        return new SubtaskSplit.Serializer();
    }

    @Override
    public SimpleVersionedSerializer<Integer> getEnumeratorCheckpointSerializer() {
        return new NoState();
    }

    /** Gives each subtask its split when it registers; keeps nothing. */
    private static final class OneSplitPerSubtask implements SplitEnumerator<SubtaskSplit, Integer> {
        private final SplitEnumeratorContext<SubtaskSplit> context;

        OneSplitPerSubtask(SplitEnumeratorContext<SubtaskSplit> context) {
            this.context = context;
        }

        @Override
        public void start() {}

        @Override
        public void handleSplitRequest(int subtask, String requesterHostname) {}

        @Override
        public void addSplitsBack(List<SubtaskSplit> splits, int subtask) {}

        @Override
        public void addReader(int subtask) {
            context.assignSplit(SubtaskSplit.of(subtask), subtask);
        }

        @Override
        public Integer snapshotState(long checkpointId) {
            return 0;
        }

        @Override
        public void close() {}
    }

    /** Counts up once it has its split, pausing between records. */
    private static final class Reader implements SourceReader<Long, SubtaskSplit> {
        private final long pauseNanos;
        private final CompletableFuture<Void> assigned = new CompletableFuture<>();
        private long next;

        Reader(long pauseNanos) {
            this.pauseNanos = pauseNanos;
        }

        @Override
        public void start() {}

        @Override
        public InputStatus pollNext(ReaderOutput<Long> output) {
            if (!assigned.isDone()) {
                return InputStatus.NOTHING_AVAILABLE;
            }
            output.collect(next++);
            LockSupport.parkNanos(pauseNanos);
            return InputStatus.MORE_AVAILABLE;
        }

        @Override
        public List<SubtaskSplit> snapshotState(long checkpointId) {
            return Collections.emptyList();
        }

        @Override
        public CompletableFuture<Void> isAvailable() {
            return assigned;
        }

        @Override
        public void addSplits(List<SubtaskSplit> splits) {
            assigned.complete(null);
        }

        @Override
        public void notifyNoMoreSplits() {}

        @Override
        public void close() {}
    }

    /** The enumerator keeps nothing. */
    private static final class NoState implements SimpleVersionedSerializer<Integer> {
        @Override
        public int getVersion() {
            return 1;
        }

        @Override
        public byte[] serialize(Integer state) {
            return new byte[0];
        }

        @Override
        public Integer deserialize(int version, byte[] serialized) {
            return 0;
        }
    }
}
