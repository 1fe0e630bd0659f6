package io.segmentautoscaler.flink;

import io.pravega.client.ClientConfig;
import io.pravega.client.EventStreamClientFactory;
import io.pravega.client.admin.ReaderGroupManager;
import io.pravega.client.stream.EventRead;
import io.pravega.client.stream.EventStreamReader;
import io.pravega.client.stream.ReaderConfig;
import io.pravega.client.stream.ReaderGroup;
import io.pravega.client.stream.ReaderGroupConfig;
import io.pravega.client.stream.Stream;
import io.pravega.client.stream.impl.ByteArraySerializer;
import java.net.URI;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MeterView;
import org.apache.flink.streaming.api.functions.source.RichParallelSourceFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads a Pravega stream through one reader group, one reader per subtask: a reader gets
 * segments only while there are at least as many segments as readers, so readers beyond the
 * segment count sit idle, as with the Pravega Flink connector.
 *
 * <p>Reader positions live in the reader group (in Pravega), not in Flink state: after a
 * rescale or restart the readers continue where the group stands (at-least-once), which is
 * what a load demo needs.
 */
final class ReaderGroupSource extends RichParallelSourceFunction<byte[]> {
    private static final Logger LOG = LoggerFactory.getLogger(ReaderGroupSource.class);
    private static final String READER_PREFIX = "subtask-";
    private static final long READ_TIMEOUT_MS = 500;

    private final String controller;
    private final String scope;
    private final String stream;
    private final String readerGroupName;

    private transient ReaderGroupManager readerGroupManager;
    private transient EventStreamClientFactory clientFactory;
    private transient EventStreamReader<byte[]> reader;
    private transient Counter eventsRead;
    private volatile boolean running = true;

    ReaderGroupSource(String controller, String scope, String stream, String readerGroupName) {
        this.controller = controller;
        this.scope = scope;
        this.stream = stream;
        this.readerGroupName = readerGroupName;
    }

    @Override
    public void open(Configuration parameters) {
        int subtask = getRuntimeContext().getIndexOfThisSubtask();
        int parallelism = getRuntimeContext().getNumberOfParallelSubtasks();
        ClientConfig clientConfig = ClientConfig.builder().controllerURI(URI.create(controller)).build();
        readerGroupManager = ReaderGroupManager.withScope(scope, clientConfig);
        readerGroupManager.createReaderGroup(
                readerGroupName,
                ReaderGroupConfig.builder().stream(Stream.of(scope, stream)).disableAutomaticCheckpoints().build());
        ReaderGroup group = readerGroupManager.getReaderGroup(readerGroupName);
        String readerId = READER_PREFIX + subtask;
        // Readers of an earlier attempt that did not close: our own id, and (subtask 0 only)
        // ids beyond the new parallelism, whose segments would otherwise never be reassigned.
        for (String online : group.getOnlineReaders()) {
            boolean stale = online.equals(readerId) || (subtask == 0 && readerIndex(online) >= parallelism);
            if (stale) {
                LOG.info("Marking stale reader {} offline", online);
                group.readerOffline(online, null);
            }
        }
        clientFactory = EventStreamClientFactory.withScope(scope, clientConfig);
        reader = clientFactory.createReader(readerId, readerGroupName, new ByteArraySerializer(), ReaderConfig.builder().build());
        eventsRead = getRuntimeContext().getMetricGroup().counter("eventsRead");
        getRuntimeContext().getMetricGroup().meter("eventsReadPerSecond", new MeterView(eventsRead, 5));
        LOG.info("Reader {} of {} reads {}/{} in reader group {}", readerId, parallelism, scope, stream, readerGroupName);
    }

    private static int readerIndex(String readerId) {
        try {
            return Integer.parseInt(readerId.substring(READER_PREFIX.length()));
        } catch (RuntimeException e) {
            return Integer.MAX_VALUE;
        }
    }

    @Override
    public void run(SourceContext<byte[]> ctx) {
        while (running) {
            EventRead<byte[]> read = reader.readNextEvent(READ_TIMEOUT_MS);
            byte[] event = read.getEvent();
            if (event != null) {
                synchronized (ctx.getCheckpointLock()) {
                    ctx.collect(event);
                }
                eventsRead.inc();
            }
        }
    }

    @Override
    public void cancel() {
        running = false;
    }

    @Override
    public void close() {
        // Closing the reader takes it offline, so its segments go to the remaining readers.
        if (reader != null) {
            reader.close();
        }
        if (clientFactory != null) {
            clientFactory.close();
        }
        if (readerGroupManager != null) {
            readerGroupManager.close();
        }
    }
}
