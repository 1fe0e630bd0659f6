package io.segmentautoscaler.flink;

/**
 * Which reader-group checkpoint markers a subtask still acts on.
 *
 * <p>A marker can leave the subtask's queue after Flink gave its checkpoint up (the reader-group
 * checkpoint timed out in the enumerator, or another task declined): Flink has then forgotten
 * the checkpoint, and a subtask that asked to trigger it would block its input for good, waiting
 * for a trigger that never comes. Checkpoints conclude in order (one at a time), so every marker
 * up to the newest concluded checkpoint is stale.
 */
final class CheckpointMarkers {
    private long lastConcluded = Long.MIN_VALUE;

    /** Flink completed or aborted {@code checkpointId} (notified to this subtask). */
    void concluded(long checkpointId) {
        lastConcluded = Math.max(lastConcluded, checkpointId);
    }

    /** Whether a marker of {@code checkpointId} met now should still trigger its checkpoint. */
    boolean pending(long checkpointId) {
        return checkpointId > lastConcluded;
    }
}
