package io.segmentautoscaler.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.Map;
import org.junit.jupiter.api.Test;

class PendingRecordsTest {
    @Test
    void aReaderOwnsItsShareOfTheGroupsUnreadBytesInEvents() {
        // 3 of the group's 4 segments, 40 000 unread bytes, events of 100 bytes: 300 events.
        Map<String, Integer> segments = Map.of("r1", 3, "r2", 1);
        assertEquals(300L, PendingRecords.estimate(40_000, segments, 0, "r1", 1_000, 10));
        assertEquals(100L, PendingRecords.estimate(40_000, segments, 0, "r2", 500, 5));
    }

    @Test
    void unassignedSegmentsAreNobodysBacklog() {
        // 1 of 2 segments held: half of the unread bytes.
        assertEquals(200L, PendingRecords.estimate(40_000, Map.of("r1", 1), 1, "r1", 100, 1));
    }

    @Test
    void aReaderWithoutSegmentsOrBacklogHasNone() {
        assertEquals(0L, PendingRecords.estimate(40_000, Map.of("r2", 2), 0, "r1", 0, 0));
        assertEquals(0L, PendingRecords.estimate(0, Map.of("r1", 2), 0, "r1", 0, 0));
    }

    @Test
    void unknownBeforeTheFirstEventGivesTheSize() {
        assertNull(PendingRecords.estimate(40_000, Map.of("r1", 2), 0, "r1", 0, 0));
    }
}
