package io.segmentautoscaler.flink;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class CheckpointMarkersTest {
    @Test
    void everyMarkerIsPendingBeforeFlinkConcludesAnything() {
        CheckpointMarkers markers = new CheckpointMarkers();
        assertTrue(markers.pending(1));
        assertTrue(markers.pending(Long.MAX_VALUE));
    }

    @Test
    void aMarkerMetAfterItsCheckpointWasAbortedIsSkipped() {
        // The reader-group checkpoint timed out: Flink aborted 12 while its marker still waited
        // in the subtask's queue behind events.
        CheckpointMarkers markers = new CheckpointMarkers();
        markers.concluded(12);
        assertFalse(markers.pending(12));
        assertTrue(markers.pending(13));
    }

    @Test
    void aConclusionCoversEveryEarlierCheckpoint() {
        // Checkpoints conclude one at a time, in order: 11 is over once 14 is.
        CheckpointMarkers markers = new CheckpointMarkers();
        markers.concluded(14);
        assertFalse(markers.pending(11));
        assertTrue(markers.pending(15));
    }

    @Test
    void aLateNotificationOfAnOlderCheckpointDoesNotReopenNewerOnes() {
        CheckpointMarkers markers = new CheckpointMarkers();
        markers.concluded(20);
        markers.concluded(18);
        assertFalse(markers.pending(19));
        assertFalse(markers.pending(20));
        assertTrue(markers.pending(21));
    }
}
