"""Profile izzati's server under wrk load with py-spy: flame graph + a text summary.

    python -m bench profile [--workload W1|W2|W4] [--seconds 15] [--async] [--rate 250] [--idle]

Starts the izzati target (the same script and pinning as the suite, `python -m bench`: server on
CPU 0, wrk and py-spy on CPU 1), loads it with wrk for --seconds while `py-spy record` samples the
server (every thread), and writes bench/results/profile-<workload>.svg (flame graph) and .txt (collapsed
stacks). Prints where the samples fall: by thread, by layer (uvicorn, Starlette, izzati parsing,
the callback hop, JSON, ...) and the hottest functions by self and inclusive time.
Needs `pip install py-spy` (and root or ptrace permission).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.runner import LOAD_CPU, RESULTS, Server, free_port, make_bodies, run_wrk, server_for

# layer name -> regex over one frame "function (path:line)"; the first matching layer of the
# innermost-first search names a sample's self time, any match counts for inclusive time
LAYERS = [
    ("json encode", r"json/encoder|json/__init__.py|\bdumps\b"),
    ("starlette Response", r"starlette/responses\.py"),
    ("izzati responses", r"izzati/web/responses\.py"),
    ("izzati multipart", r"izzati/web/multipart\.py"),
    ("izzati parsing (inputs, forms)", r"izzati/web/(inputs|forms)\.py"),
    ("python-multipart", r"python_multipart/"),
    ("tempfile / spooling", r"tempfile\.py"),
    ("izzati files", r"izzati/files\.py"),
    ("izzati endpoint", r"izzati/web/endpoint\.py"),
    ("izzati calling (thread hop)", r"izzati/invoker\.py|izzati/web/threadpool\.py"),
    ("izzati middleware", r"izzati/web/(middleware|app)\.py"),
    ("concurrent.futures thread pool", r"concurrent/futures/"),
    ("threading", r"threading\.py"),
    ("asyncio", r"asyncio/"),
    ("fastapi", r"fastapi/"),
    ("starlette (other)", r"starlette/"),
    ("uvicorn httptools", r"uvicorn/protocols/http/httptools_impl\.py"),
    ("uvicorn h11", r"uvicorn/protocols/http/h11_impl\.py"),
    ("uvicorn logging", r"uvicorn/logging\.py|logging/__init__\.py"),
    ("uvicorn (other)", r"uvicorn/"),
    ("callback", r"^(echo|size|send_file|echo_async|size_async) \(.*izzati_target\.py"),
    ("urllib.parse", r"urllib/parse\.py"),
]


def frame_module(frame: str) -> str:
    match = re.search(r"\(([^:()]+)(?::\d+)?\)$", frame)
    if not match:
        return frame
    path = match.group(1)
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def summarise(raw: Path, top: int = 25) -> str:
    stacks: list[tuple[list[str], int]] = []
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if stack and samples.isdigit():
            stacks.append((stack.split(";"), int(samples)))
    total = sum(c for _, c in stacks) or 1
    lines = [f"{total} samples"]
    threads: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        name = frames[0]
        name = re.sub(r"\s*\(?0x[0-9a-f]+\)?", "", name)
        threads["callback threads" if "izzati-callback" in name or "ThreadPool" in name else name] += count
    lines.append("\nby thread:")
    for name, count in threads.most_common(6):
        lines.append(f"  {count / total:6.1%}  {name}")
    compiled = [(name, re.compile(pattern)) for name, pattern in LAYERS]
    self_layer: collections.Counter[str] = collections.Counter()
    incl_layer: collections.Counter[str] = collections.Counter()
    self_fn: collections.Counter[str] = collections.Counter()
    incl_fn: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        body = frames[1:]
        seen_layers: set[str] = set()
        for frame in body:
            for name, rx in compiled:
                if rx.search(frame):
                    seen_layers.add(name)
                    break
        for name in seen_layers:
            incl_layer[name] += count
        owner = "other (idle / native / stdlib)"
        for frame in reversed(body):
            hit = next((name for name, rx in compiled if rx.search(frame)), None)
            if hit:
                owner = hit
                break
        self_layer[owner] += count
        if body:
            leaf = body[-1]
            self_fn[re.sub(r"\(/.*/", "(", leaf)] += count
        for frame in set(body):
            incl_fn[re.sub(r"\(/.*/", "(", frame)] += count
    lines.append("\nby layer (self = innermost recognised frame; inclusive = anywhere on the stack):")
    lines.append(f"  {'layer':<34}{'self':>8}{'incl':>8}")
    for name, count in self_layer.most_common():
        lines.append(f"  {name:<34}{count / total:8.1%}{incl_layer.get(name, 0) / total:8.1%}")
    lines.append(f"\ntop {top} functions by self time:")
    for name, count in self_fn.most_common(top):
        lines.append(f"  {count / total:6.1%}  {name}")
    lines.append(f"\ntop {top} functions by inclusive time:")
    for name, count in incl_fn.most_common(top):
        lines.append(f"  {count / total:6.1%}  {name}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench profile", description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=["W1", "W2", "W4"], default="W1")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--async", dest="use_async", action="store_true", help="an async def callback")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--idle", action="store_true", help="include idle samples (threads waiting)")
    parser.add_argument("--native", action="store_true", help="py-spy --native (C frames too)")
    opts = parser.parse_args(argv)
    if not shutil.which("py-spy"):
        sys.exit("py-spy is not installed: pip install py-spy")
    RESULTS.mkdir(exist_ok=True)
    tag = opts.workload + ("-async" if opts.use_async else "") + ("-idle" if opts.idle else "")
    with tempfile.TemporaryDirectory(prefix="izzati-profile-") as tmpdir:
        tmp = Path(tmpdir)
        bodies = make_bodies(tmp)
        workload = {"W1": "echo", "W2": "size", "W4": "file"}[opts.workload]
        body = bodies["multipart"] if opts.workload == "W2" else bodies["form"]
        kind = "izzati-async" if opts.use_async else "izzati"
        extra = {"file": bodies["file"]} if workload == "file" else {}
        server: Server = server_for(kind, workload, free_port(), True, **extra)
        server.start(tmp)
        try:
            server.wait_ready()
            run_wrk(server, body, 2, opts.connections, True)  # warm up
            raw = RESULTS / f"profile-{tag}.txt"
            svg = RESULTS / f"profile-{tag}.svg"
            common = ["taskset", "-c", LOAD_CPU, "py-spy", "record", "--pid", str(server.pid), "--threads"]
            common += ["--rate", str(opts.rate), "--duration", str(opts.seconds), "--nonblocking"]
            if opts.idle:
                common.append("--idle")
            if opts.native:
                common.append("--native")
            spy_raw = subprocess.Popen([*common, "--format", "raw", "-o", str(raw)], stderr=subprocess.DEVNULL)
            time.sleep(0.3)
            result = run_wrk(server, body, opts.seconds, opts.connections, True)
            spy_raw.wait(60)
            print(f"{opts.workload} under py-spy: {result.rps:,.0f} req/s, server CPU {result.server_cpu:.0%}")
            summary = summarise(raw)
            print(summary)
            (RESULTS / f"profile-{tag}.summary.txt").write_text(summary + "\n")
            # a second, shorter recording for the flame graph (py-spy cannot render raw stacks later)
            spy_svg = subprocess.Popen(
                [*common, "-o", str(svg)],
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.3)
            run_wrk(server, body, opts.seconds, opts.connections, True)
            spy_svg.wait(60)
            print(f"flame graph: {svg}; collapsed stacks: {raw}")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":  # python -m bench.profile: point to the one way
    sys.exit("run it as: python -m bench profile")
