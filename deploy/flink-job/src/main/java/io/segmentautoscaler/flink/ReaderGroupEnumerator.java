package io.segmentautoscaler.flink;

import io.pravega.client.ClientConfig;
import io.pravega.client.admin.ReaderGroupManager;
import io.pravega.client.stream.Checkpoint;
import io.pravega.client.stream.ConfigMismatchException;
import io.pravega.client.stream.ReaderGroup;
import io.pravega.client.stream.Stream;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import javax.net.ssl.SSLException;
import org.apache.flink.api.connector.source.SplitEnumerator;
import org.apache.flink.api.connector.source.SplitEnumeratorContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs on the JobManager: puts the reader group where the job's state is, gives each subtask
 * its reader, and takes a reader-group checkpoint with every Flink checkpoint.
 */
final class ReaderGroupEnumerator implements SplitEnumerator<SubtaskSplit, ReaderGroupPosition> {
    private static final Logger LOG = LoggerFactory.getLogger(ReaderGroupEnumerator.class);
    /** Reader-group checkpoints are named after the Flink checkpoint they belong to. */
    static final String CHECKPOINT_PREFIX = "flink-";

    private final ReaderGroupSource.Settings settings;
    private final SplitEnumeratorContext<SubtaskSplit> context;
    private final ReaderGroupPosition restored;
    private ReaderGroupManager manager;
    private ReaderGroup group;
    private WellFormedCuts cuts;
    private ScheduledExecutorService executor;

    ReaderGroupEnumerator(ReaderGroupSource.Settings settings, SplitEnumeratorContext<SubtaskSplit> context, ReaderGroupPosition restored) {
        this.settings = settings;
        this.context = context;
        this.restored = restored;
    }

    @Override
    public void start() {
        // One client configuration for both connections (it reads the password file).
        ClientConfig clientConfig = settings.clientConfig();
        manager = ReaderGroupManager.withScope(settings.scope, clientConfig);
        try {
            manager.createReaderGroup(settings.readerGroup, settings.groupConfig().build());
        } catch (ConfigMismatchException e) {
            // It exists, reset to an earlier checkpoint (the reset below replaces that anyway).
        }
        group = manager.getReaderGroup(settings.readerGroup);
        // A reset also drops the readers of the previous attempt (a TaskManager killed hard
        // never took its reader offline), so their segments are free for the new readers.
        Checkpoint checkpoint = restored.checkpoint();
        if (checkpoint == null) {
            group.resetReaderGroup(settings.groupConfig().build());
            LOG.info("Reader group {} starts at the head of {}/{}", settings.readerGroup, settings.scope, settings.stream);
        } else {
            group.resetReaderGroup(settings.groupConfig().startFromCheckpoint(checkpoint).build());
            LOG.info("Reader group {} restarts from its checkpoint {}", settings.readerGroup, checkpoint.getName());
        }
        try {
            cuts = new WellFormedCuts(clientConfig, settings.checkpointTimeout);
        } catch (SSLException e) {
            throw new UncheckedIOException("TLS to the controller " + settings.controller, e);
        }
        executor = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread thread = new Thread(r, "reader-group-checkpoints");
            thread.setDaemon(true);
            return thread;
        });
    }

    @Override
    public void addReader(int subtask) {
        // The reader's id follows from its subtask, so a restarted subtask gets the same one.
        context.assignSplit(SubtaskSplit.of(subtask), subtask);
    }

    @Override
    public void handleSplitRequest(int subtask, String requesterHostname) {
        // Readers never ask: each gets its one split when it registers.
    }

    @Override
    public void addSplitsBack(List<SubtaskSplit> splits, int subtask) {
        // Given again when the subtask's reader registers again (addReader).
    }

    /**
     * Waits until every online reader has passed the reader-group checkpoint (each then holds its
     * input until Flink's barrier is injected), so the positions returned are where the barriers
     * are. Failing here declines the Flink checkpoint.
     */
    @Override
    public ReaderGroupPosition snapshotState(long checkpointId) throws Exception {
        String name = CHECKPOINT_PREFIX + checkpointId;
        // Every subtask must meet the marker, or its barrier never comes and the checkpoint (and
        // with aligned barriers, the data behind it) waits: a reader that joins after the
        // reader-group checkpoint began is not asked to take part. So no checkpoint until all
        // of them read (Flink does not count a checkpoint that fails here against the job).
        Set<String> online = group.getOnlineReaders();
        for (int subtask = 0; subtask < context.currentParallelism(); subtask++) {
            String reader = SubtaskSplit.of(subtask).id();
            if (!online.contains(reader)) {
                throw new Exception("checkpoint " + checkpointId + " declined: reader " + reader
                        + " is not reading yet (online: " + online + ")");
            }
        }
        Checkpoint checkpoint;
        try {
            checkpoint = group.initiateCheckpoint(name, executor)
                    .get(settings.checkpointTimeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException | ExecutionException e) {
            // An unfinished reader-group checkpoint would count against Pravega's limit of
            // outstanding ones and block the next.
            group.cancelOutstandingCheckpoints();
            throw new Exception("reader-group checkpoint " + name + " did not complete within " + settings.checkpointTimeout, e);
        }
        // Declined, the last restorable checkpoint stays the one a restart goes back to.
        ReaderGroupPosition position;
        try {
            position = ReaderGroupPosition.at(checkpoint);
        } catch (IllegalArgumentException e) {
            throw new Exception("checkpoint " + checkpointId + " declined: " + e.getMessage(), e);
        }
        // Pravega also completes a checkpoint whose positions miss part of the stream: when a
        // reader finished a merge's predecessor and released it while the successor still waited
        // for the other predecessor, neither that predecessor nor the successor is in them, and
        // a reader group reset to them reads nothing again (docs/peers.md: the paced job's run).
        Stream stream = Stream.of(settings.scope, settings.stream);
        try {
            cuts.require(stream, checkpoint.asImpl().getPositions().get(stream));
        } catch (WellFormedCuts.NotWellFormed e) {
            throw new Exception("checkpoint " + checkpointId + " declined: reader-group checkpoint " + checkpoint.getName()
                    + " is not a well-formed stream cut: " + e.getMessage(), e);
        }
        return position;
    }

    @Override
    public void close() {
        if (executor != null) {
            executor.shutdownNow();
        }
        if (group != null) {
            group.close();
        }
        if (cuts != null) {
            cuts.close();
        }
        if (manager != null) {
            manager.close();
        }
    }
}
