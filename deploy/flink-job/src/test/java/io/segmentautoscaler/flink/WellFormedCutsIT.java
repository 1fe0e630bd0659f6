package io.segmentautoscaler.flink;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pravega.client.ClientConfig;
import io.pravega.client.admin.StreamInfo;
import io.pravega.client.admin.StreamManager;
import io.pravega.client.segment.impl.Segment;
import io.pravega.client.stream.Stream;
import io.pravega.client.stream.StreamCut;
import io.pravega.client.stream.impl.StreamCutImpl;
import java.net.URI;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Against a real Pravega controller, on a stream that was split once (one segment, then two):
 * data-generator/tests/busy_reader_cuts.rs creates it and runs this with the system properties
 * {@code pravega.controller}, {@code pravega.scope} and {@code pravega.stream}.
 */
@EnabledIfSystemProperty(named = "pravega.controller", matches = ".+")
class WellFormedCutsIT {
    private final ClientConfig client = ClientConfig.builder()
            .controllerURI(URI.create(System.getProperty("pravega.controller"))).build();
    private final Stream stream = Stream.of(System.getProperty("pravega.scope"), System.getProperty("pravega.stream"));

    private StreamInfo info() throws Exception {
        try (StreamManager streams = StreamManager.create(client)) {
            return streams.fetchStreamInfo(stream.getScope(), stream.getStreamName()).get();
        }
    }

    @Test
    void theControllerJudgesEachCut() throws Exception {
        StreamInfo info = info();
        Map<Segment, Long> head = info.getHeadStreamCut().asImpl().getPositions();
        Map<Segment, Long> tail = info.getTailStreamCut().asImpl().getPositions();
        assertTrue(head.size() == 1 && tail.size() == 2, "a stream split once: head " + head + ", tail " + tail);
        List<Segment> halves = List.copyOf(tail.keySet());
        try (WellFormedCuts cuts = new WellFormedCuts(client, Duration.ofSeconds(30))) {
            assertDoesNotThrow(() -> cuts.require(stream, info.getHeadStreamCut()), "the head");
            assertDoesNotThrow(() -> cuts.require(stream, info.getTailStreamCut()), "the tail");
            // Half of the key space: what a reset to a merge's incomplete checkpoint looks like.
            StreamCut half = new StreamCutImpl(stream, Map.of(halves.get(0), 0L));
            assertThrows(WellFormedCuts.NotWellFormed.class, () -> cuts.require(stream, half), "half of the keys");
            // A segment beside its own successor: some keys twice.
            Map<Segment, Long> twice = new HashMap<>(head);
            twice.put(halves.get(1), 0L);
            StreamCut overlapping = new StreamCutImpl(stream, twice);
            assertThrows(WellFormedCuts.NotWellFormed.class, () -> cuts.require(stream, overlapping), "keys twice");
            assertThrows(WellFormedCuts.NotWellFormed.class, () -> cuts.require(stream, null), "no cut");
        }
    }
}
