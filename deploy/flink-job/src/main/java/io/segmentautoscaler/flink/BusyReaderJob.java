package io.segmentautoscaler.flink;

import java.time.Duration;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;

/**
 * The demo's Flink job: reads a Pravega stream with one reader per subtask (so useful
 * parallelism is the stream's segment count), burns a configurable amount of CPU and waits a
 * configurable time per event, and
 * verifies the data generator's per-key sequence numbers (gaps and duplicates, in Flink state).
 * Its source reports Flink's standard {@code pendingRecords} (see {@link PendingRecords}), so
 * the backlog is seen as with Flink's own connectors.
 *
 * <p>Arguments: {@code --controller tcp://127.0.0.1:9090 --scope demo --stream load
 * [--reader-group busy-reader] [--burn-iterations 200] [--wait-micros 0]
 * [--checkpoint-interval-ms 5000]
 * [--checkpoint-timeout-ms 60000] [--reader-checkpoint-timeout-ms 30000] [--max-parallelism 128]
 * [--tls-ca-file ca.pem (with a tls:// controller)] [--username U --password-file FILE]}.
 */
public final class BusyReaderJob {
    private BusyReaderJob() {}

    public static void main(String[] args) throws Exception {
        JobArgs params = JobArgs.parse(args);
        ReaderGroupSource.Settings settings = new ReaderGroupSource.Settings(
                params.get("controller", "tcp://127.0.0.1:9090"),
                params.required("scope"),
                params.required("stream"),
                params.get("reader-group", "busy-reader"),
                Duration.ofMillis(params.getLong("reader-checkpoint-timeout-ms", 30_000L)),
                params.get("tls-ca-file", null),
                params.get("username", null),
                params.get("password-file", null));
        int burnIterations = params.getInt("burn-iterations", 200);
        long waitMicros = params.getLong("wait-micros", 0L);

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        // Every rescale restarts the job from the latest checkpoint, reader positions included.
        env.enableCheckpointing(params.getLong("checkpoint-interval-ms", 5_000L));
        // A checkpoint stuck behind a reader that died ends (and the job restarts from the last
        // one) after this long, not after Flink's default 10 minutes.
        env.getCheckpointConfig().setCheckpointTimeout(params.getLong("checkpoint-timeout-ms", 60_000L));
        env.setMaxParallelism(params.getInt("max-parallelism", 128));

        env.fromSource(new ReaderGroupSource(settings), WatermarkStrategy.noWatermarks(), "pravega-reader",
                        PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO)
                .map(new BurnCpu(burnIterations, waitMicros))
                .name("burn-cpu")
                .map(SequencedEvent::parse)
                .name("parse-sequence")
                .keyBy(event -> event.key, Types.STRING)
                .process(new VerifySequence())
                .returns(Types.LONG)
                .name("verify-sequence")
                .sinkTo(new DiscardingSink<>())
                .name("discard");
        env.execute("busy-reader " + settings.scope + "/" + settings.stream);
    }
}
