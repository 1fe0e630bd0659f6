package io.segmentautoscaler.flink;

import java.nio.charset.StandardCharsets;

/**
 * What the verifier needs of an event: the data generator starts each one with its routing key
 * and that key's sequence number, {@code "<key> <sequence> "}. Events without them (another
 * writer) have sequence -1.
 */
public final class SequencedEvent {
    /** The routing key: events of one key are read in the order they were written. */
    public String key;
    /** 0, 1, 2, ... per key, in write order; -1 when the event carries none. */
    public long sequence;

    /** For Flink's POJO serializer. */
    public SequencedEvent() {}

    SequencedEvent(String key, long sequence) {
        this.key = key;
        this.sequence = sequence;
    }

    static SequencedEvent parse(byte[] event) {
        int keyEnd = indexOf(event, 0);
        if (keyEnd <= 0) {
            return new SequencedEvent("", -1);
        }
        long sequence = 0;
        int i = keyEnd + 1;
        int digits = 0;
        for (; i < event.length && event[i] != ' '; i++, digits++) {
            int digit = event[i] - '0';
            if (digit < 0 || digit > 9 || digits >= 18) {
                return new SequencedEvent("", -1);
            }
            sequence = sequence * 10 + digit;
        }
        if (digits == 0) {
            return new SequencedEvent("", -1);
        }
        return new SequencedEvent(new String(event, 0, keyEnd, StandardCharsets.US_ASCII), sequence);
    }

    private static int indexOf(byte[] event, int from) {
        for (int i = from; i < event.length; i++) {
            if (event[i] == ' ') {
                return i;
            }
        }
        return -1;
    }
}
