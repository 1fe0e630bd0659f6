package io.segmentautoscaler.flink;

import io.pravega.client.admin.ReaderGroupManager;
import io.pravega.client.stream.ReaderGroup;
import io.pravega.client.stream.ReaderSegmentDistribution;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One reader's backlog, as Flink's standard source metric {@code pendingRecords} (FLIP-33):
 * the events in the segments it holds that it has not read yet.
 *
 * <p>Pravega counts a reader group's backlog in bytes ({@code unreadBytes}: from the readers'
 * positions last recorded in the group's state, the latest reader-group checkpoint's, to the
 * tail of each segment), not per reader and not in events. So a reader estimates its part: the
 * group's unread bytes times its share of the group's segments, divided by the mean size of the
 * events it has read. It is refreshed in the background (every {@link #REFRESH_SECONDS} s: the
 * gauge itself must not make a network call) and is unknown (the gauge gives null, which Flink
 * leaves out of its metrics) until a first estimate exists.
 */
final class PendingRecords implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(PendingRecords.class);
    /** How often the estimate is refreshed. */
    static final long REFRESH_SECONDS = 2;

    private final ReaderGroupSource.Settings settings;
    private final String readerId;
    private final ScheduledExecutorService refresher;
    private ReaderGroupManager manager;
    private ReaderGroup group;
    private volatile long bytesRead;
    private volatile long eventsRead;
    private volatile Long estimate;

    PendingRecords(ReaderGroupSource.Settings settings, String readerId) {
        this.settings = settings;
        this.readerId = readerId;
        this.refresher = Executors.newSingleThreadScheduledExecutor(runnable -> {
            Thread thread = new Thread(runnable, "pending-records-" + readerId);
            thread.setDaemon(true);
            return thread;
        });
        refresher.scheduleWithFixedDelay(this::refresh, REFRESH_SECONDS, REFRESH_SECONDS, TimeUnit.SECONDS);
    }

    /** Counts one event read (the reading thread only). */
    void read(int bytes) {
        bytesRead += bytes;
        eventsRead++;
    }

    /** The latest estimate; null while unknown. */
    Long value() {
        return estimate;
    }

    private void refresh() {
        try {
            if (group == null) {
                manager = ReaderGroupManager.withScope(settings.scope, settings.clientConfig());
                group = manager.getReaderGroup(settings.readerGroup);
            }
            long unreadBytes = group.getMetrics().unreadBytes();
            ReaderSegmentDistribution distribution = group.getReaderSegmentDistribution();
            estimate = estimate(unreadBytes, distribution.getReaderSegmentDistribution(),
                    distribution.getUnassignedSegments(), readerId, bytesRead, eventsRead);
        } catch (RuntimeException e) {
            // Unknown rather than stale: Flink then reports no value.
            estimate = null;
            LOG.debug("Reader {}: the backlog could not be estimated", readerId, e);
        }
    }

    /**
     * The events {@code readerId} has not read: its share of the group's segments times the
     * group's unread bytes, over its mean event size; null when the size is not known yet (no
     * event read) while it holds segments.
     */
    static Long estimate(long unreadBytes, Map<String, Integer> segmentsByReader, int unassigned,
            String readerId, long bytesRead, long eventsRead) {
        int mine = segmentsByReader.getOrDefault(readerId, 0);
        if (mine == 0 || unreadBytes <= 0) {
            return 0L;
        }
        if (eventsRead == 0 || bytesRead == 0) {
            return null;
        }
        long segments = unassigned + segmentsByReader.values().stream().mapToLong(Integer::longValue).sum();
        double meanEventBytes = (double) bytesRead / eventsRead;
        return Math.round(unreadBytes * ((double) mine / segments) / meanEventBytes);
    }

    @Override
    public void close() {
        refresher.shutdownNow();
        if (group != null) {
            group.close();
        }
        if (manager != null) {
            manager.close();
        }
    }
}
