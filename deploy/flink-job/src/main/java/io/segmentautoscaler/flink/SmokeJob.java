package io.segmentautoscaler.flink;

import org.apache.flink.api.java.utils.ParameterTool;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.DiscardingSink;
import org.apache.flink.streaming.api.functions.source.RichParallelSourceFunction;

/**
 * A small unbounded streaming job for checking that the local Flink stack runs in reactive mode:
 * every parallel source instance emits a counter at a steady pace, a map touches each record and
 * a sink discards it. Its vertex parallelism follows the number of TaskManagers.
 */
public final class SmokeJob {
    private SmokeJob() {}

    public static void main(String[] args) throws Exception {
        ParameterTool params = ParameterTool.fromArgs(args);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        // Reactive mode restarts the job from the latest checkpoint on every rescale.
        env.enableCheckpointing(params.getLong("checkpoint-interval-ms", 5_000L));
        env.setMaxParallelism(params.getInt("max-parallelism", 128));
        long recordsPerSecond = params.getLong("records-per-second", 100L);

        env.addSource(new PacedCounter(recordsPerSecond))
                .name("counter-source")
                .map(value -> value * 2)
                .name("double")
                .addSink(new DiscardingSink<>())
                .name("discard");
        env.execute("segment-autoscaler-smoke");
    }

    /** Emits an increasing counter, {@code recordsPerSecond} per parallel instance, until cancelled. */
    static final class PacedCounter extends RichParallelSourceFunction<Long> {
        private final long recordsPerSecond;
        private volatile boolean running = true;

        PacedCounter(long recordsPerSecond) {
            this.recordsPerSecond = Math.max(1, recordsPerSecond);
        }

        @Override
        public void run(SourceContext<Long> ctx) throws Exception {
            long pauseNanos = 1_000_000_000L / recordsPerSecond;
            long next = 0;
            while (running) {
                synchronized (ctx.getCheckpointLock()) {
                    ctx.collect(next++);
                }
                java.util.concurrent.locks.LockSupport.parkNanos(pauseNanos);
            }
        }

        @Override
        public void cancel() {
            running = false;
        }
    }
}
