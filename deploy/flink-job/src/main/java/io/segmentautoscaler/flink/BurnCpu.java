package io.segmentautoscaler.flink;

import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MeterView;

/**
 * Spends a configurable amount of CPU per event, like the reference demo's reader (which
 * counts the bases of a string many times): {@code iterations} passes of a checksum over the
 * event's bytes. Exposes its throughput as the metrics {@code eventsProcessed} and
 * {@code eventsProcessedPerSecond}.
 */
final class BurnCpu extends RichMapFunction<byte[], Long> {
    private final int iterations;
    private transient Counter processed;

    BurnCpu(int iterations) {
        this.iterations = Math.max(0, iterations);
    }

    @Override
    public void open(Configuration parameters) {
        processed = getRuntimeContext().getMetricGroup().counter("eventsProcessed");
        getRuntimeContext().getMetricGroup().meter("eventsProcessedPerSecond", new MeterView(processed, 5));
    }

    @Override
    public Long map(byte[] event) {
        long checksum = 0;
        for (int i = 0; i < iterations; i++) {
            for (byte b : event) {
                checksum = checksum * 31 + b + i;
            }
        }
        processed.inc();
        return checksum;
    }
}
