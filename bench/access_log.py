"""What the access log costs: W1 (a tiny form echoed as JSON) with the log on and off, for izzati
(its default line, `method=... request_id=...`) and for FastAPI (uvicorn's own access log), side
by side and interleaved in one invocation. The goal (issue 22): izzati with its log on >= 0.9x off.

    python -m bench accesslog [--runs 5] [--duration 5] [--connections 32] [--no-pin]

Each server writes its log to a file in the run's temporary folder (as a service's log goes to a
file or a pipe), the same for both tools.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from bench.runner import W1_EXPECT, check_json, free_port, load_test, log, make_bodies, server_for, with_servers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench accesslog", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per target, median reported (default 5)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per timed run (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per target (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin server/wrk to CPUs 0/1")
    opts = parser.parse_args(argv)
    opts.pin = opts.pin and (os.cpu_count() or 1) >= 2
    log(f"load average before: {os.getloadavg()}")
    servers = []
    for kind in ("izzati", "fastapi"):
        for on in (True, False):
            server = server_for(kind, "echo", free_port(), opts.pin, label=f"{kind} log {'on' if on else 'off'}")
            if on:
                server.argv.append("--access-log")
            servers.append(server)
    with tempfile.TemporaryDirectory(prefix="izzati-bench-accesslog-") as tmp:
        form = make_bodies(Path(tmp))["form"]
        rows = with_servers(
            servers,
            Path(tmp),
            lambda: load_test(
                servers, form, lambda port: check_json(port, form, W1_EXPECT), opts, opts.connections, opts.pin
            ),
        )
        # the proof that the log was on: the lines each server wrote
        logged = {s.label: s.log_path.read_bytes().count(b"\n") if s.log_path else 0 for s in servers}
    log(f"load average after: {os.getloadavg()}")
    by = {row.label: row for row in rows}
    for row in rows:
        print(
            f"{row.label:<16} {row.rps:>10,.0f} req/s  p50 {row.p50_ms:.2f} ms  p99 {row.p99_ms:.2f} ms  "
            f"CPU {row.cpu_us:.0f} us/req  log lines {logged[row.label]:,}  runs {row.runs} {row.note}"
        )
    for kind in ("izzati", "fastapi"):
        on, off = by[f"{kind} log on"], by[f"{kind} log off"]
        ratio = on.rps / off.rps if off.rps else 0.0
        goal = " (goal >= 0.90x: " + ("met)" if ratio >= 0.9 else "NOT met)") if kind == "izzati" else ""
        print(f"{kind}: log on / off = {ratio:.3f}x req/s, CPU per request +{on.cpu_us - off.cpu_us:.0f} us{goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
