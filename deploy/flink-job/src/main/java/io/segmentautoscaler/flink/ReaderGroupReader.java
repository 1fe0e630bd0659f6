package io.segmentautoscaler.flink;

import io.pravega.client.EventStreamClientFactory;
import io.pravega.client.stream.EventRead;
import io.pravega.client.stream.EventStreamReader;
import io.pravega.client.stream.ReaderConfig;
import io.pravega.client.stream.impl.ByteArraySerializer;
import java.io.IOException;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.connector.source.ExternallyInducedSourceReader;
import org.apache.flink.api.connector.source.ReaderOutput;
import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.core.io.InputStatus;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MeterView;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One reader of the group, in one subtask. A thread of its own reads Pravega into a small queue
 * of events and reader-group checkpoint markers; the task emits from the queue and, at a marker,
 * stops and has Flink inject that checkpoint's barrier there (an externally induced checkpoint).
 *
 * <p>The thread must keep reading past a marker: Pravega completes a reader's part of a
 * checkpoint only at its next read, and the enumerator waits for every reader's part before Flink
 * sends the barrier. Events it reads meanwhile wait in the queue, behind the barrier.
 */
final class ReaderGroupReader implements ExternallyInducedSourceReader<byte[], SubtaskSplit> {
    private static final Logger LOG = LoggerFactory.getLogger(ReaderGroupReader.class);
    /** Longest a Pravega read waits for an event, so the thread notices a stop. */
    private static final long READ_TIMEOUT_MS = 200;
    /** Events read ahead of the task at most. */
    private static final int QUEUE_CAPACITY = 1024;

    private final ReaderGroupSource.Settings settings;
    private final SourceReaderContext context;
    private final Counter eventsRead;
    /** Events (byte[]) and checkpoint markers (Long: the Flink checkpoint id), in read order. */
    private final BlockingQueue<Object> fetched = new ArrayBlockingQueue<>(QUEUE_CAPACITY);
    private volatile CompletableFuture<Void> available = new CompletableFuture<>();
    private volatile Throwable fetchFailure;
    private volatile boolean running = true;
    private EventStreamClientFactory clientFactory;
    private Thread fetcher;
    /** This reader's backlog (the standard {@code pendingRecords}); null before its split. */
    private volatile PendingRecords pending;
    private Long checkpointToTrigger;
    /** The checkpoint whose marker was met last and whose barrier is not out yet. */
    private Long pausedFor;
    /** Completed when reading may go on after a marker (or reading failed). */
    private volatile CompletableFuture<Void> resumed = CompletableFuture.completedFuture(null);
    /** The checkpoints Flink has concluded, so their markers are skipped. */
    private final CheckpointMarkers markers = new CheckpointMarkers();

    ReaderGroupReader(ReaderGroupSource.Settings settings, SourceReaderContext context) {
        this.settings = settings;
        this.context = context;
        this.eventsRead = context.metricGroup().counter("eventsRead");
        context.metricGroup().meter("eventsReadPerSecond", new MeterView(eventsRead, 5));
        context.metricGroup().setPendingRecordsGauge(() -> {
            PendingRecords backlog = pending;
            return backlog == null ? null : backlog.value();
        });
    }

    @Override
    public void start() {
        // Reading starts when the enumerator assigns this subtask's split (addSplits).
    }

    @Override
    public InputStatus pollNext(ReaderOutput<byte[]> output) throws IOException {
        if (fetchFailure != null) {
            throw new IOException("reading Pravega failed", fetchFailure);
        }
        if (pausedFor != null) {
            // Flink may poll again before the barrier is out (its trigger is a mail of its own):
            // an event emitted now would be before the barrier but after the reader-group
            // checkpoint's positions, and counted twice after a restore.
            return InputStatus.NOTHING_AVAILABLE;
        }
        Object next = fetched.poll();
        if (next == null) {
            // A new future first, then a second look: an event queued in between completes it.
            CompletableFuture<Void> wait = new CompletableFuture<>();
            available = wait;
            if (!fetched.isEmpty() || fetchFailure != null) {
                wait.complete(null);
            }
            return InputStatus.NOTHING_AVAILABLE;
        }
        if (next instanceof Long) {
            long checkpoint = (Long) next;
            if (!markers.pending(checkpoint)) {
                LOG.info("Subtask {} skips the marker of checkpoint {}: Flink has concluded it",
                        context.getIndexOfSubtask(), checkpoint);
                return InputStatus.MORE_AVAILABLE;
            }
            // NOTHING_AVAILABLE makes Flink ask shouldTriggerCheckpoint() now; this input then
            // emits nothing until the checkpoint has been taken here (snapshotState) or aborted.
            checkpointToTrigger = checkpoint;
            pausedFor = checkpointToTrigger;
            resumed = new CompletableFuture<>();
            return InputStatus.NOTHING_AVAILABLE;
        }
        output.collect((byte[]) next);
        eventsRead.inc();
        return InputStatus.MORE_AVAILABLE;
    }

    @Override
    public Optional<Long> shouldTriggerCheckpoint() {
        Optional<Long> id = Optional.ofNullable(checkpointToTrigger);
        checkpointToTrigger = null;
        return id;
    }

    @Override
    public List<SubtaskSplit> snapshotState(long checkpointId) {
        // The barrier goes out with this snapshot: reading may go on.
        resumeAfter(checkpointId);
        // Positions are in the reader-group checkpoint the enumerator keeps.
        return Collections.emptyList();
    }

    @Override
    public void notifyCheckpointComplete(long checkpointId) {
        markers.concluded(checkpointId);
    }

    @Override
    public void notifyCheckpointAborted(long checkpointId) {
        markers.concluded(checkpointId);
        resumeAfter(checkpointId);
    }

    private void resumeAfter(long checkpointId) {
        if (pausedFor != null && checkpointId >= pausedFor) {
            pausedFor = null;
            resumed.complete(null);
        }
    }

    @Override
    public CompletableFuture<Void> isAvailable() {
        return pausedFor != null ? resumed : available;
    }

    @Override
    public void addSplits(List<SubtaskSplit> splits) {
        for (SubtaskSplit split : splits) {
            if (fetcher != null) {
                LOG.warn("Subtask {} already reads; ignoring {}", context.getIndexOfSubtask(), split);
                continue;
            }
            clientFactory = EventStreamClientFactory.withScope(settings.scope, settings.clientConfig());
            EventStreamReader<byte[]> reader = clientFactory.createReader(
                    split.id(), settings.readerGroup, new ByteArraySerializer(), ReaderConfig.builder().build());
            LOG.info("Reader {} of subtask {} reads {}/{} in reader group {}", split.id(),
                    context.getIndexOfSubtask(), settings.scope, settings.stream, settings.readerGroup);
            pending = new PendingRecords(settings, split.id());
            fetcher = new Thread(() -> fetch(reader), "pravega-reader-" + split.id());
            fetcher.setDaemon(true);
            fetcher.start();
        }
    }

    private void fetch(EventStreamReader<byte[]> reader) {
        try (reader) {
            while (running) {
                EventRead<byte[]> read = reader.readNextEvent(READ_TIMEOUT_MS);
                Object item = read.isCheckpoint() ? flinkCheckpointId(read.getCheckpointName()) : read.getEvent();
                if (item instanceof byte[]) {
                    pending.read(((byte[]) item).length);
                }
                if (item != null && !enqueue(item)) {
                    return;
                }
            }
        } catch (Throwable t) {
            if (running) {
                fetchFailure = t;
                available.complete(null);
                resumed.complete(null);
            }
        }
        // Closing the reader (try-with-resources) takes it offline, so its segments go to the
        // remaining readers.
    }

    /** Waits for room in the queue; false when the reader is being closed. */
    private boolean enqueue(Object item) throws InterruptedException {
        while (running) {
            if (fetched.offer(item, READ_TIMEOUT_MS, TimeUnit.MILLISECONDS)) {
                available.complete(null);
                return true;
            }
        }
        return false;
    }

    private static Long flinkCheckpointId(String name) {
        if (name == null || !name.startsWith(ReaderGroupEnumerator.CHECKPOINT_PREFIX)) {
            return null;
        }
        try {
            return Long.parseLong(name.substring(ReaderGroupEnumerator.CHECKPOINT_PREFIX.length()));
        } catch (NumberFormatException e) {
            return null;
        }
    }

    @Override
    public void notifyNoMoreSplits() {}

    @Override
    public void close() throws Exception {
        running = false;
        if (fetcher != null) {
            fetcher.join(10_000);
        }
        if (clientFactory != null) {
            clientFactory.close();
        }
        if (pending != null) {
            pending.close();
        }
    }
}
