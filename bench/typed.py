"""What typing costs, and what the encoder gains: W1 (a tiny form answered as JSON) on izzati with
a typed callback (`name: str, n: int`, validated by the signature's model) against the classic
`(text, data)` callback, and the classic callback with orjson (today) against json.dumps (izzati
2.0's encoder), all interleaved in one invocation.

Goals (issue 21): typed >= 0.9x untyped; untyped with the new encoder >= 1.0x the old one.

    python -m bench typed [--runs 5] [--duration 5] [--connections 32] [--no-pin]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from bench.runner import W1_EXPECT, check_json, free_port, load_test, log, make_bodies, server_for, with_servers

TYPED_EXPECT = {"name": "alice", "n": 1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench typed", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per target, median reported (default 5)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per timed run (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per target (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin server/wrk to CPUs 0/1")
    opts = parser.parse_args(argv)
    opts.pin = opts.pin and (os.cpu_count() or 1) >= 2
    log(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="izzati-bench-typed-") as tmp:
        form = make_bodies(Path(tmp))["form"]
        untyped = server_for("izzati", "echo", free_port(), opts.pin, label="untyped")
        typed = server_for("izzati", "typed", free_port(), opts.pin, label="typed")
        old = server_for("izzati", "echo", free_port(), opts.pin, label="untyped json.dumps", stdlib_json=True)
        servers = [untyped, typed, old]

        def check(port: int) -> str:
            return check_json(port, form, TYPED_EXPECT if port == typed.port else W1_EXPECT)

        rows = with_servers(
            servers, Path(tmp), lambda: load_test(servers, form, check, opts, opts.connections, opts.pin)
        )
    log(f"load average after: {os.getloadavg()}")
    by = {row.label: row for row in rows}
    for row in rows:
        print(
            f"{row.label:<20} {row.rps:>10,.0f} req/s  p50 {row.p50_ms:.2f} ms  p99 {row.p99_ms:.2f} ms  "
            f"server CPU {row.server_cpu:.0%}  runs {row.runs} {row.note}"
        )
    base = by["untyped"].rps
    typed_ratio = by["typed"].rps / base if base else 0.0
    encoder_ratio = base / by["untyped json.dumps"].rps if by["untyped json.dumps"].rps else 0.0
    print(f"W1 typed / untyped: {typed_ratio:.3f}x (goal >= 0.9x) -- {'met' if typed_ratio >= 0.9 else 'NOT met'}")
    print(
        f"W1 untyped, orjson / json.dumps: {encoder_ratio:.3f}x (goal >= 1.0x) -- "
        f"{'met' if encoder_ratio >= 1.0 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
