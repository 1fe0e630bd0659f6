package io.segmentautoscaler.flink;

import java.util.concurrent.locks.LockSupport;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MeterView;

/**
 * Spends a configurable amount of CPU per event, like the reference demo's reader (which
 * counts the bases of a string many times): {@code iterations} passes of a checksum over the
 * event's bytes, then, if {@code waitMicros} is set, waits that long, as a job calling an external
 * service per event would: one subtask then processes at most 10^6 / waitMicros events per
 * second whatever the machine's cores, so more subtasks (more segments) really read faster.
 * Passes the event on. Exposes its throughput as the metrics {@code eventsProcessed} and
 * {@code eventsProcessedPerSecond}.
 */
final class BurnCpu extends RichMapFunction<byte[], byte[]> {
    private final int iterations;
    private final long waitNanos;
    private transient Counter processed;
    /** Where checksums go, so the JIT cannot drop the work. */
    private transient long sink;

    BurnCpu(int iterations, long waitMicros) {
        this.iterations = Math.max(0, iterations);
        this.waitNanos = Math.max(0, waitMicros) * 1_000L;
    }

    @Override
    public void open(OpenContext context) {
        processed = getRuntimeContext().getMetricGroup().counter("eventsProcessed");
        getRuntimeContext().getMetricGroup().meter("eventsProcessedPerSecond", new MeterView(processed, 5));
        getRuntimeContext().getMetricGroup().gauge("checksum", () -> sink);
    }

    @Override
    public byte[] map(byte[] event) {
        long checksum = 0;
        for (int i = 0; i < iterations; i++) {
            for (byte b : event) {
                checksum = checksum * 31 + b + i;
            }
        }
        sink += checksum;
        if (waitNanos > 0) {
            // parkNanos may return early (spuriously or on interrupt): wait out the rest.
            long until = System.nanoTime() + waitNanos;
            for (long left = waitNanos; left > 0; left = until - System.nanoTime()) {
                LockSupport.parkNanos(left);
                if (Thread.currentThread().isInterrupted()) {
                    break;
                }
            }
        }
        processed.inc();
        return event;
    }
}
