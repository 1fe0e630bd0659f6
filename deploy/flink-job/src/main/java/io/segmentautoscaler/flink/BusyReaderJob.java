package io.segmentautoscaler.flink;

import org.apache.flink.api.java.utils.ParameterTool;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.DiscardingSink;

/**
 * The demo's Flink job: reads a Pravega stream with one reader per subtask (so useful
 * parallelism is the stream's segment count) and burns a configurable amount of CPU per event.
 *
 * <p>Arguments: {@code --controller tcp://127.0.0.1:9090 --scope demo --stream load
 * [--reader-group busy-reader] [--burn-iterations 200] [--checkpoint-interval-ms 5000]
 * [--max-parallelism 128]}.
 */
public final class BusyReaderJob {
    private BusyReaderJob() {}

    public static void main(String[] args) throws Exception {
        ParameterTool params = ParameterTool.fromArgs(args);
        String controller = params.get("controller", "tcp://127.0.0.1:9090");
        String scope = params.getRequired("scope");
        String stream = params.getRequired("stream");
        String readerGroup = params.get("reader-group", "busy-reader");
        int burnIterations = params.getInt("burn-iterations", 200);

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        // Reactive mode restarts the job from the latest checkpoint on every rescale.
        env.enableCheckpointing(params.getLong("checkpoint-interval-ms", 5_000L));
        env.setMaxParallelism(params.getInt("max-parallelism", 128));

        env.addSource(new ReaderGroupSource(controller, scope, stream, readerGroup))
                .name("pravega-reader")
                .map(new BurnCpu(burnIterations))
                .name("burn-cpu")
                .addSink(new DiscardingSink<>())
                .name("discard");
        env.execute("busy-reader " + scope + "/" + stream);
    }
}
