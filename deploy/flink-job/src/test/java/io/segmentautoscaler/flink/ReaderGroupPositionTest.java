package io.segmentautoscaler.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pravega.client.segment.impl.Segment;
import io.pravega.client.stream.Checkpoint;
import io.pravega.client.stream.impl.CheckpointImpl;
import java.lang.reflect.Constructor;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ReaderGroupPositionTest {
    /** A completed reader-group checkpoint as Pravega builds it (its constructor is not public). */
    private static Checkpoint completed(String name, Map<Segment, Long> positions) throws Exception {
        Constructor<CheckpointImpl> constructor = CheckpointImpl.class.getDeclaredConstructor(String.class, Map.class);
        constructor.setAccessible(true);
        return constructor.newInstance(name, positions);
    }

    @Test
    void aCheckpointWithoutAnySegmentPositionIsRefused() throws Exception {
        // Every reader passed it between a merge's predecessors and its successor.
        Checkpoint empty = completed("flink-59", Map.of());
        IllegalArgumentException refused = assertThrows(IllegalArgumentException.class, () -> ReaderGroupPosition.at(empty));
        assertTrue(refused.getMessage().contains("flink-59"), refused.getMessage());
    }

    @Test
    void aCheckpointWithPositionsSurvivesItsSerializer() throws Exception {
        Segment segment = new Segment("demo", "load", 15L);
        ReaderGroupPosition position = ReaderGroupPosition.at(completed("flink-60", Map.of(segment, 1_867_536L)));
        ReaderGroupPosition.Serializer serializer = new ReaderGroupPosition.Serializer();
        ReaderGroupPosition restored = serializer.deserialize(serializer.getVersion(), serializer.serialize(position));
        assertEquals("flink-60", restored.checkpoint().getName());
        assertEquals(position.checkpoint().asImpl().getPositions(), restored.checkpoint().asImpl().getPositions());
    }

    @Test
    void noCheckpointYetRestoresToTheHeadOfTheStream() {
        ReaderGroupPosition.Serializer serializer = new ReaderGroupPosition.Serializer();
        assertNull(serializer.deserialize(serializer.getVersion(), serializer.serialize(ReaderGroupPosition.none())).checkpoint());
    }
}
