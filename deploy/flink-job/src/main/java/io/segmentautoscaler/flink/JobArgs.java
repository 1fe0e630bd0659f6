package io.segmentautoscaler.flink;

import java.util.HashMap;
import java.util.Map;

/**
 * The jobs' {@code --name value} arguments. Flink's {@code ParameterTool} moved package between
 * 1.20 and 2.0, and the jar must run on both.
 */
final class JobArgs {
    private final Map<String, String> values = new HashMap<>();

    private JobArgs() {}

    static JobArgs parse(String[] args) {
        JobArgs parsed = new JobArgs();
        for (int i = 0; i < args.length; i++) {
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                throw new IllegalArgumentException("expected --name value pairs, got '" + args[i] + "'");
            }
            parsed.values.put(args[i].substring(2), args[++i]);
        }
        return parsed;
    }

    String get(String name, String fallback) {
        return values.getOrDefault(name, fallback);
    }

    String required(String name) {
        String value = values.get(name);
        if (value == null) {
            throw new IllegalArgumentException("--" + name + " is required");
        }
        return value;
    }

    long getLong(String name, long fallback) {
        String value = values.get(name);
        try {
            return value == null ? fallback : Long.parseLong(value);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + ": '" + value + "' is not a whole number");
        }
    }

    int getInt(String name, int fallback) {
        return Math.toIntExact(getLong(name, fallback));
    }
}
