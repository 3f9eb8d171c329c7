"""The OpenAI workloads of `python -m bench peers` (`--only C1,E1`): izzati beside LitServe 0.2.19's OpenAI specs,
each serving the same generator and embedding function (bench/targets/chat_model.py).

- C1 streamed chat, `POST /v1/chat/completions` with `stream: true`: time to first token with one
  stream at a time (median; and what it adds to the generator's own), and tokens/s with STREAMS
  streams at once (every piece the clients received, over the wall time).
- E1 embeddings, `POST /v1/embeddings` with one text, batched by each tool (up to 8, 5 ms): req/s
  under wrk, like the other workloads.

Every target is checked first (C1: 128 pieces `tok ` then `[DONE]`; E1: the vector computed here).
The targets take turns (A B A B ...) for --runs timed runs; figures are medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench import latency
from bench.peers import report
from bench.peers.targets import BATCH, WAIT_MS, idle_cpu
from bench.peers.tools import venv_python
from bench.runner import Body, Row, Server, base_env, free_port, load_test, log, tree_cpu_seconds, tree_kib
from bench.targets import chat_model

__all__ = ["OPENAI_WORKLOADS", "STREAMS", "run_chat", "run_embeddings", "run_group"]

OPENAI_WORKLOADS = {
    "C1": "streamed chat: time to first token, tokens/s (POST /v1/chat/completions)",
    "E1": "embeddings, one text a request, batched (POST /v1/embeddings)",
}
TOOLS = ("izzati", "litserve")
STREAMS = 16
_PIECE = b'"content":"' + chat_model.TOKEN.encode()
_TEXT = "the quick brown fox jumps over the lazy dog"


def _server(tool: str, workload: str, processes: int) -> Server:
    port = free_port()
    env = base_env()
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.update(BENCH_BATCH=str(BATCH), BENCH_WAIT_MS=str(WAIT_MS))
    common = ["--port", str(port), "--workload", workload, "--processes", str(processes)]
    if tool == "izzati":
        argv = [sys.executable, "-m", "bench.targets.peer_chat_izzati", *common]
    else:
        batching = ["--batch", str(BATCH), "--wait-ms", str(WAIT_MS)]
        argv = [str(venv_python("litserve")), "-m", "bench.targets.peer_chat_litserve", *common, *batching]
    return Server(tool, argv, port, env, pin=False)


def _body(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True}


async def _one_stream(client: httpx.AsyncClient, port: int) -> tuple[float, int]:
    """One streamed answer: seconds to its first piece, and its pieces."""
    started = time.perf_counter()
    first = 0.0
    received = bytearray()
    async with client.stream("POST", f"http://127.0.0.1:{port}/v1/chat/completions", json=_body("bench-lm")) as reply:
        if reply.status_code != 200:
            raise RuntimeError(f"status {reply.status_code}")
        async for chunk in reply.aiter_raw():
            received += chunk
            if not first and _PIECE in received:
                first = time.perf_counter() - started
    if not received.rstrip().endswith(b"data: [DONE]"):
        raise RuntimeError(f"the stream did not end with [DONE]: {bytes(received[-80:])!r}")
    return first, received.count(_PIECE)


async def _streams(port: int, concurrency: int, seconds: float) -> dict[str, Any]:
    """`concurrency` clients streaming answers one after another for `seconds`."""
    firsts: list[float] = []
    pieces = 0
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal pieces, errors
        while time.perf_counter() < deadline:
            try:
                first, count = await _one_stream(client, port)
            except (httpx.HTTPError, RuntimeError):
                errors += 1
                continue
            firsts.append(first)
            pieces += count

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {
        "ttft_ms": latency.of_values(firsts, 50) * 1000,
        "ttft_p99_ms": latency.of_values(firsts, 99) * 1000,
        "tokens_s": pieces / wall,
        "answers": len(firsts),
        "errors": errors,
    }


def _check_chat(port: int) -> str:
    try:
        _, count = asyncio.run(_one_stream(httpx.AsyncClient(timeout=30), port))
    except (httpx.HTTPError, RuntimeError) as exc:
        return str(exc)
    return "" if count == chat_model.TOKENS else f"{count} pieces, not {chat_model.TOKENS}"


def _measure(server: Server, concurrency: int, seconds: float) -> dict[str, Any]:
    cpu0, t0 = tree_cpu_seconds(server.pid), time.perf_counter()
    found = asyncio.run(_streams(server.port, concurrency, seconds))
    found["server_cpu"] = (tree_cpu_seconds(server.pid) - cpu0) / (time.perf_counter() - t0)
    return found


def _wait(server: Server, check: Any, timeout: float = 180.0) -> str:
    server.wait_ready(timeout)
    deadline = time.monotonic() + timeout
    problem = "no answer"
    while time.monotonic() < deadline:
        try:
            problem = check(server.port)
        except OSError as exc:
            problem = str(exc)
        if not problem:
            return ""
        time.sleep(0.5)
    return problem


def run_chat(processes: int, opts: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """C1: every target's time to first token (one stream) and tokens/s (STREAMS streams)."""
    servers = [_server(tool, "C1", processes) for tool in TOOLS if tool in opts.targets]
    own = chat_model.own_first_token_ms()
    rows: dict[str, dict[str, Any]] = {}
    try:
        for server in servers:
            server.start(tmp)
        live = []
        for server in servers:
            problem = _wait(server, _check_chat)
            if problem:
                log(f"  {server.label}: check FAILED: {problem}")
                rows[server.label] = {"label": server.label, "note": f"check failed: {problem}"}
            else:
                live.append(server)
        idle = idle_cpu(live, 0.5 if opts.quick else 2.0)
        for server in live:
            _measure(server, STREAMS, opts.warmup)
        samples: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {s.label: [] for s in live}
        for i in range(opts.runs):
            for server in live:
                single = _measure(server, 1, opts.duration)
                many = _measure(server, STREAMS, opts.duration)
                samples[server.label].append((single, many))
                log(
                    f"  run {i + 1}/{opts.runs} {server.label}: first token {single['ttft_ms']:.2f} ms,"
                    f" {many['tokens_s']:,.0f} tokens/s"
                )
        for server in live:
            med = statistics.median
            runs = samples[server.label]
            rows[server.label] = {
                "label": server.label,
                "ttft_ms": med(s["ttft_ms"] for s, _ in runs),
                "over_own_ms": med(s["ttft_ms"] for s, _ in runs) - own,
                "ttft_loaded_ms": med(m["ttft_ms"] for _, m in runs),
                "tokens_s": med(m["tokens_s"] for _, m in runs),
                "server_cpu": med(m["server_cpu"] for _, m in runs),
                "rss_mib": tree_kib(server.pid, "VmHWM") / 1024,
                "errors": sum(s["errors"] + m["errors"] for s, m in runs),
                "runs": [round(m["tokens_s"]) for _, m in runs],
                "idle_cpu": idle.get(server.label, 0.0),
                "note": "",
            }
    finally:
        for server in servers:
            server.stop()
    return {"own_first_token_ms": own, "rows": [rows[s.label] for s in servers if s.label in rows]}


def _check_embeddings(port: int) -> str:
    expected = chat_model.embed(chat_model.weights(), [_TEXT])[0]
    try:
        reply = httpx.post(f"http://127.0.0.1:{port}/v1/embeddings", json=_embed_body(), timeout=30)
    except httpx.HTTPError as exc:
        return str(exc)
    if reply.status_code != 200:
        return f"status {reply.status_code}: {reply.text[:200]}"
    got = reply.json()["data"][0]["embedding"]
    worst = max(abs(a - b) for a, b in zip(got, expected, strict=True))
    return "" if worst < 1e-5 else f"the vector is off by {worst}"


def _embed_body() -> dict[str, Any]:
    return {"model": "bench-embed", "input": _TEXT, "encoding_format": "float"}


def run_embeddings(processes: int, opts: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """E1: every target's req/s under wrk, batched by each tool."""
    servers = [_server(tool, "E1", processes) for tool in TOOLS if tool in opts.targets]
    for server in servers:
        server.label += " batched"
    body = Body(tmp / "e1.body", "application/json", json.dumps(_embed_body()).encode())
    body.path.write_bytes(body.data)
    try:
        for server in servers:
            server.start(tmp)
        failed = {s.label: p for s in servers if (p := _wait(s, _check_embeddings))}
        live = [s for s in servers if s.label not in failed]
        idle = idle_cpu(live, 0.5 if opts.quick else 2.0)
        timed = load_test(live, body, _check_embeddings, opts, opts.connections, False, path="/v1/embeddings")
    finally:
        for server in servers:
            server.stop()
    found = {r.label: r for r in timed}
    rows = [found.get(s.label) or Row(s.label, note=f"check failed: {failed[s.label]}") for s in servers]
    return {"rows": [r.__dict__ for r in rows], "idle_cpu": idle}


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_group(
    key: str, processes: int, opts: argparse.Namespace, tmp: Path, say: Callable[[str], None]
) -> dict[str, Any]:
    """Run C1 or E1 at one process count and print its tables; the group's figures."""
    before = _load()
    log(f"{key} x{processes}: {', '.join(t for t in TOOLS if t in opts.targets)} (load {before})")
    found = run_chat(processes, opts, tmp) if key == "C1" else run_embeddings(processes, opts, tmp)
    group = {"workload": key, "processes": processes, "load_before": before, "load_after": _load(), **found}
    say(f"\n### {key} x{processes} server process{'es' if processes > 1 else ''}: {OPENAI_WORKLOADS[key]}\n")
    say(f"load average before {group['load_before']}, after {group['load_after']}\n")
    if key == "C1":
        _chat_table(say, group)
    else:
        report.rows_table(say, group["rows"], group["idle_cpu"])
        say("")
        group["ratios"] = report.ratio_table(say, group["rows"])
    return group


def _chat_table(say: Callable[[str], None], group: dict[str, Any]) -> None:
    say(
        f"the generator's own first token: {group['own_first_token_ms']:.2f} ms ({chat_model.PREFILL_S * 1000:g} ms"
        f" prefill), then {chat_model.TOKENS} pieces with no work between them\n"
    )
    say(
        f"| target | first token ms (1 stream) | over the generator's own ms | first token ms ({STREAMS} streams) |"
        f" tokens/s ({STREAMS} streams) | server CPU (cores) | idle CPU | peak RSS MiB | runs (tokens/s) | note |"
    )
    say("|---|---|---|---|---|---|---|---|---|---|")
    for r in group["rows"]:
        if "tokens_s" not in r:
            say(f"| {r['label']} | – | – | – | – | – | – | – | – | {r['note']} |")
            continue
        say(
            f"| {r['label']} | {r['ttft_ms']:.2f} | {r['over_own_ms']:.2f} | {r['ttft_loaded_ms']:.2f} |"
            f" {r['tokens_s']:,.0f} | {r['server_cpu']:.2f} | {r['idle_cpu']:.2f} | {r['rss_mib']:.0f} |"
            f" {', '.join(f'{x:,}' for x in r['runs'])} | {r['errors']} errors |"
        )
    rows = {r["label"]: r for r in group["rows"] if "tokens_s" in r}
    if "izzati" in rows and "litserve" in rows and rows["litserve"]["tokens_s"]:
        ratio = rows["izzati"]["tokens_s"] / rows["litserve"]["tokens_s"]
        over = rows["izzati"]["over_own_ms"], rows["litserve"]["over_own_ms"]
        group["ratios"] = {"izzati / litserve tokens/s": ratio}
        say(
            f"\nizzati / litserve tokens/s = {ratio:.2f}x (goal >= 2x: {'PASS' if ratio >= 2 else 'FAIL'}); first token"
            f" over the generator's own: izzati {over[0]:.2f} ms, litserve {over[1]:.2f} ms"
        )
