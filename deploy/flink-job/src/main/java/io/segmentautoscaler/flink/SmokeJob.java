package io.segmentautoscaler.flink;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;

/**
 * A small unbounded streaming job for checking that the local Flink stack runs in reactive mode:
 * every parallel source instance emits numbers at a steady pace, a map touches each record and
 * a sink discards it. Its vertex parallelism follows the number of TaskManagers.
 */
public final class SmokeJob {
    private SmokeJob() {}

    public static void main(String[] args) throws Exception {
        JobArgs params = JobArgs.parse(args);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        // Reactive mode restarts the job from the latest checkpoint on every rescale.
        env.enableCheckpointing(params.getLong("checkpoint-interval-ms", 5_000L));
        env.setMaxParallelism(params.getInt("max-parallelism", 128));
        long recordsPerSecond = params.getLong("records-per-second", 100L);

        env.fromSource(new PacedCounterSource(recordsPerSecond), WatermarkStrategy.noWatermarks(), "counter-source")
                .map(value -> value * 2)
                .returns(Types.LONG)
                .name("double")
                .sinkTo(new DiscardingSink<>())
                .name("discard");
        env.execute("segment-autoscaler-smoke");
    }
}
