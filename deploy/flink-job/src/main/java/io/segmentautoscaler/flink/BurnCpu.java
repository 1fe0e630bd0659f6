package io.segmentautoscaler.flink;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MeterView;

/**
 * Spends a configurable amount of CPU per event, like the reference demo's reader (which
 * counts the bases of a string many times): {@code iterations} passes of a checksum over the
 * event's bytes, then passes the event on. Exposes its throughput as the metrics
 * {@code eventsProcessed} and {@code eventsProcessedPerSecond}.
 */
final class BurnCpu extends RichMapFunction<byte[], byte[]> {
    private final int iterations;
    private transient Counter processed;
    /** Where checksums go, so the JIT cannot drop the work. */
    private transient long sink;

    BurnCpu(int iterations) {
        this.iterations = Math.max(0, iterations);
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
        processed.inc();
        return event;
    }
}
