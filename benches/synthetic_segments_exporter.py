#!/usr/bin/env python3
"""Serves `pravega_controller_segments_count` for N synthetic streams, for the scale benchmark.

Each stream `bench/s<i>` reports between 1 and 4 segments, changing every 10 seconds (so the
autoscaler has real work: sums move, decisions change). On SIGUSR1 every series vanishes, as
Pravega's gauges do 3 minutes after a stream's last scale. Usage:

    benches/synthetic_segments_exporter.py --streams 1000 --port 19300
"""

import argparse
import http.server
import signal
import time

vanished = False


def exposition(streams: int) -> bytes:
    epoch = int(time.time() // 10)
    lines = [
        "# HELP pravega_controller_segments_count Active segments (synthetic)",
        "# TYPE pravega_controller_segments_count gauge",
    ]
    for i in range(0 if vanished else streams):
        value = 1 + (i + epoch) % 4
        lines.append(f'pravega_controller_segments_count{{scope="bench",stream="s{i}"}} {value}')
    return ("\n".join(lines) + "\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, required=True)
    parser.add_argument("--port", type=int, default=19300)
    args = parser.parse_args()

    def vanish(*_: object) -> None:
        global vanished
        vanished = True

    signal.signal(signal.SIGUSR1, vanish)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path != "/metrics":
                self.send_error(404)
                return
            body = exposition(args.streams)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
