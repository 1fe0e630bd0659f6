package io.segmentautoscaler.flink;

import java.util.Arrays;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Checks every key's sequence numbers in keyed state: the next one expected, and the ranges
 * skipped so far (usually none). A number above the next is a gap (its skipped numbers are
 * missing); a missing number arriving later fills it (late); any other number below the next is
 * a duplicate.
 *
 * <p>The totals are checkpointed with the job, so after a restart or rescale they continue from
 * the checkpoint the job continues from, and the gauges {@code eventsRead}, {@code gaps} (numbers
 * missing now), {@code duplicates}, {@code late} and {@code unsequenced} summed over subtasks
 * count the whole run.
 */
final class VerifySequence extends KeyedProcessFunction<String, SequencedEvent, Long> implements CheckpointedFunction {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(VerifySequence.class);
    /** Gaps and duplicates logged per subtask at most (each is counted anyway). */
    private static final int LOGGED_ANOMALIES = 20;

    private transient ValueState<Long> nextSequence;
    /** Skipped ranges as [from, to) pairs, in order. */
    private transient ValueState<long[]> missing;
    private transient ListState<long[]> checkpointedTotals;
    private transient Totals totals;
    private transient int anomaliesLogged;

    @Override
    public void open(OpenContext context) {
        nextSequence = getRuntimeContext().getState(new ValueStateDescriptor<>("next-sequence", Long.class));
        missing = getRuntimeContext().getState(new ValueStateDescriptor<>("missing", long[].class));
        MetricGroup metrics = getRuntimeContext().getMetricGroup();
        metrics.gauge("eventsRead", () -> totals.read);
        metrics.gauge("gaps", () -> totals.gaps);
        metrics.gauge("duplicates", () -> totals.duplicates);
        metrics.gauge("late", () -> totals.late);
        metrics.gauge("unsequenced", () -> totals.unsequenced);
    }

    @Override
    public void processElement(SequencedEvent event, Context ctx, Collector<Long> out) throws Exception {
        totals.read++;
        if (event.sequence < 0) {
            totals.unsequenced++;
            return;
        }
        Long stored = nextSequence.value();
        long next = stored == null ? 0 : stored;
        if (event.sequence >= next) {
            if (event.sequence > next) {
                missing.update(append(missing.value(), next, event.sequence));
                totals.gaps += event.sequence - next;
                logAnomaly("gap", event, next);
            }
            nextSequence.update(event.sequence + 1);
            return;
        }
        long[] ranges = missing.value();
        long[] filled = remove(ranges, event.sequence);
        if (filled == ranges) {
            totals.duplicates++;
            logAnomaly("duplicate", event, next);
        } else {
            missing.update(filled.length == 0 ? null : filled);
            totals.gaps--;
            totals.late++;
        }
    }

    private void logAnomaly(String what, SequencedEvent event, long next) {
        if (++anomaliesLogged <= LOGGED_ANOMALIES) {
            LOG.warn("{}: key {} sequence {}, expected {}", what, event.key, event.sequence, next);
        }
    }

    static long[] append(long[] ranges, long from, long to) {
        long[] base = ranges == null ? new long[0] : ranges;
        long[] grown = Arrays.copyOf(base, base.length + 2);
        grown[base.length] = from;
        grown[base.length + 1] = to;
        return grown;
    }

    /** The ranges without {@code sequence}, or the same array when it is in none of them. */
    static long[] remove(long[] ranges, long sequence) {
        if (ranges == null) {
            return null;
        }
        for (int i = 0; i < ranges.length; i += 2) {
            long from = ranges[i];
            long to = ranges[i + 1];
            if (sequence < from || sequence >= to) {
                continue;
            }
            long[] pieces = new long[4];
            int n = 0;
            if (from < sequence) {
                pieces[n++] = from;
                pieces[n++] = sequence;
            }
            if (sequence + 1 < to) {
                pieces[n++] = sequence + 1;
                pieces[n++] = to;
            }
            long[] out = new long[ranges.length - 2 + n];
            System.arraycopy(ranges, 0, out, 0, i);
            System.arraycopy(pieces, 0, out, i, n);
            System.arraycopy(ranges, i + 2, out, i + n, ranges.length - i - 2);
            return out;
        }
        return ranges;
    }

    @Override
    public void snapshotState(FunctionSnapshotContext context) throws Exception {
        checkpointedTotals.update(java.util.List.of(totals.toArray()));
    }

    @Override
    public void initializeState(FunctionInitializationContext context) throws Exception {
        checkpointedTotals = context.getOperatorStateStore().getListState(new ListStateDescriptor<>("totals", long[].class));
        totals = new Totals();
        // After a rescale a subtask may get several subtasks' totals, or none: the sum over
        // subtasks is what is kept.
        for (long[] restored : checkpointedTotals.get()) {
            totals.add(restored);
        }
    }

    /** Counts of this subtask since the job first started. */
    static final class Totals {
        volatile long read;
        volatile long gaps;
        volatile long duplicates;
        volatile long late;
        volatile long unsequenced;

        long[] toArray() {
            return new long[] {read, gaps, duplicates, late, unsequenced};
        }

        void add(long[] other) {
            read += other[0];
            gaps += other[1];
            duplicates += other[2];
            late += other[3];
            unsequenced += other[4];
        }
    }
}
