"""The benchmark suite: izzati vs the original izzati 1.2.3 (Flask) vs hand-written FastAPI.

    python -m bench [--quick] [--only W1,W2,W3,W4,W5,cold,multicore,routes] [--duration S] [--runs N] [--no-pin]

Every target is its own server process on a free 127.0.0.1 port; load comes from `wrk` (one
thread, Lua scripts in bench/lua/) in another process. Each target's response is checked
(status, exact Content-Type, body / sha256) before it is timed. Figures are medians of --runs
runs after a warm-up, the runs of the targets of one workload interleaved so that drift hits all
alike. Results are printed and saved to bench/results/ (JSON and markdown). See docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.runner import (
    BASE,
    BENCH,
    JSON_TYPE,
    LIKE_FOR_LIKE,
    LOAD_CPU,
    REPO,
    RESULTS,
    SERVER_CPU,
    W1_EXPECT,
    W2_FILE_BYTES,
    Body,
    MiB,
    Row,
    Server,
    base_env,
    check_file,
    check_json,
    ensure_original,
    free_port,
    load_test,
    log,
    machine,
    make_bodies,
    server_for,
    tree_kib,
    versions,
    with_servers,
)

# ---------------------------------------------------------------------------------------------
# workloads


class Suite:
    def __init__(self, opts: argparse.Namespace, tmp: Path) -> None:
        self.opts = opts
        self.tmp = tmp
        self.pin = opts.pin
        self.bodies = make_bodies(tmp)
        self.has_original = ensure_original()
        self.results: dict[str, Any] = {}
        self.out: list[str] = []
        self.base: Path | None = None
        if opts.against:
            self.base = tmp / "against"
            log(f"a worktree of {opts.against} in {self.base}, run as {BASE!r} beside the working tree")
            subprocess.run(
                ["git", "worktree", "add", "--detach", "-q", str(self.base), opts.against], cwd=REPO, check=True
            )

    def close(self) -> None:
        """Remove the worktree of `--against`."""
        if self.base is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(self.base)], cwd=REPO, check=False)

    def say(self, text: str = "") -> None:
        print(text, flush=True)
        self.out.append(text)

    def kinds(self, with_async: bool = False, with_base: bool = False, with_lean: bool = False) -> list[str]:
        kinds = ["izzati"] + ([BASE] if with_base and self.base is not None else [])
        kinds += ["izzati-async"] if with_async else []
        if self.has_original:
            kinds.append("original")
        return kinds + ["fastapi"] + (["fastapi-lean"] if with_lean else [])

    def table(self, title: str, rows: list[Row], mb: bool = False) -> None:
        self.say(f"\n### {title}\n")
        head = "| target | req/s | p50 ms | p99 ms |" + (" MiB/s |" if mb else "")
        head += " peak RSS MiB | server CPU | CPU µs/req | wrk CPU | runs (req/s) | note |"
        self.say(head)
        self.say("|" + "---|" * (head.count("|") - 1))
        for r in rows:
            line = f"| {r.label} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} |"
            line += f" {r.mb_s:,.0f} |" if mb else ""
            line += f" {r.rss_mib:.0f} | {r.server_cpu:.0%} | {r.cpu_us:.0f} | {r.wrk_cpu:.0%} | {r.runs} | {r.note} |"
            self.say(line)

    def ratios(self, key: str, rows: list[Row]) -> dict[str, float]:
        by = {r.label: r.rps for r in rows}
        found: dict[str, float] = {}
        if by.get("izzati"):
            for other in (BASE, "original", "fastapi", "fastapi-lean"):
                if by.get(other):
                    found[f"izzati/{other}"] = by["izzati"] / by[other]
        self.say("ratios (req/s): " + ", ".join(f"{k} = {v:.2f}x" for k, v in found.items()))
        self.results[key]["ratios"] = found
        cpu = {r.label: r.cpu_us for r in rows}
        others = [o for o in (BASE, "original", "fastapi", "fastapi-lean") if cpu.get(o) and cpu.get("izzati")]
        per_request = {f"{o}/izzati": cpu[o] / cpu["izzati"] for o in others}
        if per_request:
            shown = ", ".join(f"{k} = {v:.2f}x" for k, v in per_request.items())
            self.say(f"server CPU per request (other / izzati): {shown}")
        self.results[key]["cpu_ratios"] = per_request
        return found

    def http_workload(self, key: str, title: str, workload: str, body: Body, check: Callable[[int], str]) -> None:
        log(f"{key}: {title}")
        extra: dict[str, Any] = {"file": self.bodies["file"]} if workload == "file" else {}
        extra["tree"] = self.base
        kinds = self.kinds(with_async=workload != "file", with_base=True, with_lean=workload != "file")
        servers = [server_for(k, workload, free_port(), self.pin, **extra) for k in kinds]
        connections = self.opts.file_connections if workload == "file" else self.opts.connections
        rows = with_servers(
            servers, self.tmp, lambda: load_test(servers, body, check, self.opts, connections, self.pin)
        )
        self.results[key] = {"title": title, "connections": connections, "rows": [r.__dict__ for r in rows]}
        self.table(f"{key}: {title} (wrk -t1 -c{connections} -d{self.opts.duration}s)", rows, mb=workload == "file")
        self.ratios(key, rows)

    def w1(self) -> None:
        form = self.bodies["form"]
        self.http_workload(
            "W1",
            "urlencoded name=alice&n=1, callback echoes text -> JSON",
            "echo",
            form,
            lambda port: check_json(port, form, W1_EXPECT),
        )

    def w2(self) -> None:
        mp = self.bodies["multipart"]
        self.http_workload(
            "W2",
            "multipart, one 100 KiB file, callback reads it (1 MiB chunks), returns its size",
            "size",
            mp,
            lambda port: check_json(port, mp, {"size": W2_FILE_BYTES}),
        )

    def w4(self) -> None:
        form, digest = self.bodies["form"], self.bodies["file_sha256"]
        self.http_workload(
            "W4",
            "callback returns a 10 MiB file (file_return / FileResponse / send_file)",
            "file",
            form,
            lambda port: check_file(port, form, digest),
        )

    def w3(self) -> None:
        size = self.opts.upload_mib * MiB
        log(f"W3: one {self.opts.upload_mib} MiB upload")
        kinds = self.kinds()
        rows = []
        for kind in kinds:
            timeout = 60.0 if kind == "original" else 300.0
            extra = {"max_body_bytes": 2**31} if kind == "izzati" else {}
            server = server_for(kind, "size", free_port(), self.pin, **extra)

            def upload(server: Server = server, timeout: float = timeout) -> dict[str, Any]:
                time.sleep(0.3)  # let the just-started server settle
                rss_before = tree_kib(server.pid, "VmRSS")
                argv = [sys.executable, str(BENCH / "upload_client.py"), str(server.port), str(size), str(timeout)]
                if self.pin:
                    argv = ["taskset", "-c", LOAD_CPU, *argv]
                try:
                    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 5)
                except subprocess.TimeoutExpired:
                    return {"label": server.label, "note": f"skipped: did not finish within {timeout:.0f} s"}
                if done.returncode != 0:
                    return {"label": server.label, "note": f"client failed: {done.stderr.strip()[-300:]}"}
                result = json.loads(done.stdout)
                hwm = tree_kib(server.pid, "VmHWM")
                note = ""
                if result["status"] != 200 or result["content_type"] != JSON_TYPE:
                    note = f"status {result['status']} {result['content_type']!r}: {result['body'][:120]}"
                elif json.loads(result["body"]) != {"size": size}:
                    note = f"wrong body {result['body'][:120]}"
                return {
                    "label": server.label,
                    "seconds": result["seconds"],
                    "mib_s": size / MiB / result["seconds"],
                    "rss_before_mib": rss_before / 1024,
                    "peak_mib": hwm / 1024,
                    "growth_mib": (hwm - rss_before) / 1024,
                    "note": note,
                }

            rows.append(with_servers([server], self.tmp, upload))
            log(f"  {kind}: {rows[-1]}")
        self.results["W3"] = {"title": f"one {self.opts.upload_mib} MiB multipart upload", "rows": rows}
        self.say(f"\n### W3: one {self.opts.upload_mib} MiB multipart upload (streamed by bench/upload_client.py)\n")
        self.say("| target | wall s | MiB/s | RSS before MiB | peak RSS MiB | growth MiB | note |")
        self.say("|---|---|---|---|---|---|---|")
        for r in rows:
            if "seconds" in r:
                self.say(
                    f"| {r['label']} | {r['seconds']:.2f} | {r['mib_s']:,.0f} | {r['rss_before_mib']:.0f} |"
                    f" {r['peak_mib']:.0f} | {r['growth_mib']:.1f} | {r['note']} |"
                )
            else:
                self.say(f"| {r['label']} | – | – | – | – | – | {r['note']} |")

    def w5(self) -> None:
        n, runs = (2000, 1) if self.opts.quick else (20000, 3)
        log(f"W5: python -m bench queues -n {n} --runs {runs}")
        argv = [sys.executable, "-m", "bench", "queues", "-n", str(n), "--runs", str(runs)]
        done = subprocess.run(argv, cwd=REPO, env=base_env(), capture_output=True, text=True, timeout=600)
        self.say("\n### W5: queue put -> get across two processes (bench/queue_throughput.py)\n")
        if done.returncode != 0:
            self.say(f"queue_throughput.py failed ({done.returncode}): {done.stderr[-800:]}")
            self.results["W5"] = {"error": done.stderr[-800:]}
            return
        self.say("```\n" + done.stdout.rstrip() + "\n```")
        ratios = {}
        for name, pattern in (("memory", r"memory:// / .*= ([0-9.]+)"), ("redis", r"redis:// +/ .*= ([0-9.]+)")):
            match = re.search(pattern, done.stdout)
            if match:
                ratios[name] = float(match.group(1))
        self.results["W5"] = {"output": done.stdout, "ratios": ratios}

    def cold(self) -> None:
        tries = 2 if self.opts.quick else 5
        log(f"cold start: python -m app to the first /health 200, {tries} times")
        times = []
        for _ in range(tries):
            port = free_port()
            env = base_env()
            env.update({"IZZATI_PORT": str(port), "IZZATI_HOST": "127.0.0.1"})
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-m", "app"],
                cwd=REPO,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            seconds = None
            try:
                while time.perf_counter() - t0 < 30 and proc.poll() is None:
                    try:
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                        conn.request("GET", "/health")
                        if conn.getresponse().status == 200:
                            seconds = time.perf_counter() - t0
                            break
                    except OSError:
                        time.sleep(0.005)
                    finally:
                        conn.close()
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
            if seconds is not None:
                times.append(seconds)
        cold = statistics.median(times) if times else None

        def wall(code: str) -> float:
            samples = []
            for _ in range(tries + 2):
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-c", code], cwd=REPO, env=base_env(), check=True)
                samples.append(time.perf_counter() - t0)
            return statistics.median(samples)

        bare = wall("pass")
        import_s = wall("import izzati") - bare
        web_s = wall("from izzati import Backend, file_return") - bare
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "from izzati import Backend, file_return"],
            cwd=REPO,
            env=base_env(),
            capture_output=True,
            text=True,
        )
        entries = []
        for line in done.stderr.splitlines():
            match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
            if match:
                entries.append((int(match.group(2)), len(match.group(3)) // 2, match.group(4)))
        top = sorted((e for e in entries if e[1] == 0 and e[2] not in ("site", "encodings")), reverse=True)[:8]
        total_us = sum(us for us, depth, name in entries if depth == 0 and name not in ("site", "encodings"))
        self.results["cold"] = {
            "app_to_health_s": cold,
            "samples": times,
            "import_izzati_s": import_s,
            "import_backend_s": web_s,
            "importtime_top": top,
        }
        self.say("\n### Cold start\n")
        shown = ", ".join(f"{t:.2f}" for t in times)
        self.say(f"- `python -m app` to first `/health` 200: median {cold or 0:.2f} s ({shown})")
        self.say(f"- `python -c 'import izzati'` minus `python -c pass`: {import_s * 1000:.0f} ms (names load lazily)")
        self.say(f"- `python -c 'from izzati import Backend, file_return'` minus `pass`: {web_s * 1000:.0f} ms")
        self.say(f"- `-X importtime` of that import: {total_us / 1000:.0f} ms in all; heaviest top-level imports:")
        for us, _, name in top:
            self.say(f"  - {name}: {us / 1000:.0f} ms")

    def multicore(self) -> None:
        log("multi-core: W1 against izzati run(workers=1) vs run(workers=2), nothing pinned")
        form = self.bodies["form"]
        servers = [
            server_for("izzati", "echo", free_port(), False, workers=1, label="izzati workers=1"),
            server_for("izzati", "echo", free_port(), False, workers=2, label="izzati workers=2"),
        ]
        # with --against: the same at workers=2 as of that revision, and both with a new connection
        # for every request (clients without keep-alive): how the processes share the accepting
        kinds = ["izzati"] + ([BASE] if self.base is not None else [])
        for kind in kinds[1:]:
            label = f"{kind} workers=2"
            servers.append(server_for(kind, "echo", free_port(), False, workers=2, label=label, tree=self.base))
        for kind in kinds:
            label = f"{kind} workers=2, Connection: close"
            server = server_for(kind, "echo", free_port(), False, workers=2, label=label, tree=self.base)
            server.close = True
            servers.append(server)
        rows = with_servers(
            servers,
            self.tmp,
            lambda: load_test(
                servers, form, lambda p: check_json(p, form, W1_EXPECT), self.opts, self.opts.connections, False
            ),
        )
        ratio = rows[1].rps / rows[0].rps if rows[0].rps else 0.0
        self.results["multicore"] = {"rows": [r.__dict__ for r in rows], "ratio": ratio}
        self.table(f"Multi-core: W1, wrk -t1 -c{self.opts.connections}, unpinned", rows)
        self.say(f"ratio workers=2 / workers=1 = {ratio:.2f}x")
        found = {row.label: row for row in rows}
        for suffix in ("", ", Connection: close"):
            mine, base = found.get(f"izzati workers=2{suffix}"), found.get(f"{BASE} workers=2{suffix}")
            if mine is not None and base is not None and base.rps:
                self.say(f"workers=2{suffix}: izzati / {BASE} = {mine.rps / base.rps:.2f}x")

    def routes(self) -> None:
        log("routes: W1 on / of a one-route service vs a two-route service (issue 19)")
        form = self.bodies["form"]
        servers = [
            server_for("izzati", "echo", free_port(), self.pin, routes=1, label="izzati 1 route"),
            server_for("izzati", "echo", free_port(), self.pin, routes=2, label="izzati 2 routes"),
        ]
        rows = with_servers(
            servers,
            self.tmp,
            lambda: load_test(
                servers, form, lambda p: check_json(p, form, W1_EXPECT), self.opts, self.opts.connections, self.pin
            ),
        )
        ratio = rows[1].rps / rows[0].rps if rows[0].rps else 0.0
        self.results["routes"] = {"rows": [r.__dict__ for r in rows], "ratio": ratio}
        self.table(f"Routes: W1 on /, wrk -t1 -c{self.opts.connections}", rows)
        self.say(f"ratio two routes / one route = {ratio:.2f}x")

    def verdicts(self) -> None:
        r = self.results
        checks: list[tuple[str, float | None, str, float]] = []

        def ratio(key: str, name: str) -> float | None:
            value = r.get(key, {}).get("ratios", {}).get(name)
            return float(value) if value is not None else None

        for key in ("W1", "W2"):
            checks.append((f"{key} izzati / original", ratio(key, "izzati/original"), ">=", 5.0))
            checks.append((f"{key} izzati / FastAPI", ratio(key, "izzati/fastapi"), ">=", 1.3))
        checks.append(("W2 izzati / lean FastAPI (issue 22)", ratio("W2", "izzati/fastapi-lean"), ">=", 2.0))
        w3: dict[str, Any] = next((x for x in r.get("W3", {}).get("rows", []) if x.get("label") == "izzati"), {})
        checks.append(("W3 izzati memory growth MiB", w3.get("growth_mib"), "<=", 64.0))
        checks.append(("W3 izzati upload MiB/s", w3.get("mib_s"), ">=", 200.0))
        checks.append(("W4 izzati / FastAPI", ratio("W4", "izzati/fastapi"), ">=", 2.0))
        checks.append(("W4 izzati / original", ratio("W4", "izzati/original"), ">=", 1.5))
        w5 = r.get("W5", {}).get("ratios", {})
        checks.append(("W5 redis:// / raw redis-py", w5.get("redis"), ">=", 0.5))
        checks.append(("W5 memory:// / raw mp.Queue", w5.get("memory"), ">=", 0.5))
        checks.append(("multi-core workers=2 / workers=1", r.get("multicore", {}).get("ratio"), ">=", 1.6))
        checks.append(("cold start s", r.get("cold", {}).get("app_to_health_s"), "<=", 1.5))
        checks.append(("W1 two routes / one route", r.get("routes", {}).get("ratio"), ">=", 0.95))
        self.say("\n### Targets (issue 5)\n")
        self.say("| target | measured | goal | verdict |")
        self.say("|---|---|---|---|")
        verdicts = []
        for name, value, op, goal in checks:
            if value is None:
                verdict = "not run"
                shown = "–"
            else:
                ok = value >= goal if op == ">=" else value <= goal
                verdict = "PASS" if ok else "FAIL"
                shown = f"{value:.2f}"
            verdicts.append({"target": name, "value": value, "op": op, "goal": goal, "verdict": verdict})
            self.say(f"| {name} | {shown} | {op} {goal:g} | {verdict} |")
        r["verdicts"] = verdicts


ALL = ["W1", "W2", "W3", "W4", "W5", "cold", "multicore", "routes"]


def parse(argv: list[str] | None = None, epilog: str | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.splitlines()[0],
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 s runs, 1 run, 64 MiB upload")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--duration", type=int, help="seconds per timed wrk run (default 5, quick 1)")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up per target (default 2, quick 1)")
    parser.add_argument("--runs", type=int, help="timed runs per target, median reported (default 3, quick 1)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections for W1/W2 (default 32)")
    parser.add_argument("--file-connections", type=int, default=8, help="wrk connections for W4 (default 8)")
    parser.add_argument("--upload-mib", type=int, help="W3 upload size in MiB (default 1024, quick 64)")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin server/wrk to CPUs 0/1")
    parser.add_argument(
        "--against",
        metavar="REV",
        help=f"also run izzati as of git revision REV (a temporary worktree) in W1, W2 and W4, as {BASE!r}: "
        "the before/after check of a change, in one invocation",
    )
    opts = parser.parse_args(argv)
    opts.duration = opts.duration or (1 if opts.quick else 5)
    opts.warmup = opts.warmup or (1 if opts.quick else 2)
    opts.runs = opts.runs or (1 if opts.quick else 3)
    opts.upload_mib = opts.upload_mib or (64 if opts.quick else 1024)
    opts.only = [x.strip() for x in opts.only.split(",")] if opts.only else ALL
    unknown = [x for x in opts.only if x not in ALL]
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {ALL}")
    if opts.pin and ((os.cpu_count() or 1) < 2 or not shutil.which("taskset")):
        log("fewer than 2 CPUs or no taskset: not pinning")
        opts.pin = False
    return opts


def main(argv: list[str] | None = None, epilog: str | None = None) -> int:
    """The whole suite (`python -m bench`); `epilog` ends its --help (the other commands)."""
    opts = parse(argv, epilog)
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install -y wrk")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="izzati-bench-") as tmpdir:
        suite = Suite(opts, Path(tmpdir))
        now = datetime.datetime.now(datetime.UTC)
        info = {"date": now.strftime("%Y-%m-%d %H:%M UTC"), **machine(), **versions()}
        suite.results["info"] = info
        suite.results["options"] = {k: v for k, v in vars(opts).items()}
        suite.say(f"# izzati benchmark{' (--quick smoke run)' if opts.quick else ''}\n")
        for key, value in info.items():
            suite.say(f"- {key}: {value}")
        pinning = f"servers on CPU {SERVER_CPU}, wrk/client on CPU {LOAD_CPU}" if opts.pin else "none"
        suite.say(f"- pinning (taskset): {pinning}; multi-core run unpinned")
        suite.say(
            "- like for like: no target writes an access log (izzati `access_log=False`, FastAPI under uvicorn"
            " `--no-access-log`, werkzeug's request log off for the original); W1/W2/W4: one server process each,"
            " plain `def` callbacks on a thread pool for izzati and FastAPI, neither W2 callback reads the upload"
        )
        suite.say(
            f"- each figure: median of {opts.runs} x {opts.duration} s after {opts.warmup} s warm-up"
            " (p50/p99: of all their requests together)"
        )
        for line in LIKE_FOR_LIKE:
            suite.say(f"- {line}")
        steps = {
            "W1": suite.w1,
            "W2": suite.w2,
            "W3": suite.w3,
            "W4": suite.w4,
            "W5": suite.w5,
            "cold": suite.cold,
            "multicore": suite.multicore,
            "routes": suite.routes,
        }
        for key in ALL:
            if key in opts.only:
                try:
                    steps[key]()
                except Exception as exc:  # one broken workload must not lose the others
                    log(f"{key} failed: {type(exc).__name__}: {exc}")
                    suite.say(f"\n### {key}: FAILED to run: {type(exc).__name__}: {exc}")
                    suite.results[key] = {"error": f"{type(exc).__name__}: {exc}"}
        suite.verdicts()
        suite.close()
        suite.say("\nload average at end (1/5/15 min): " + " ".join(Path("/proc/loadavg").read_text().split()[:3]))
        suite.say(f"\ntotal bench time {time.perf_counter() - started:.0f} s")
    RESULTS.mkdir(exist_ok=True)
    stamp = now.strftime("%Y%m%d-%H%M%S") + ("-quick" if opts.quick else "")
    (RESULTS / f"{stamp}.json").write_text(json.dumps(suite.results, indent=2, default=str))
    (RESULTS / f"{stamp}.md").write_text("\n".join(suite.out) + "\n")
    shutil.copy(RESULTS / f"{stamp}.md", RESULTS / "latest.md")
    shutil.copy(RESULTS / f"{stamp}.json", RESULTS / "latest.json")
    log(f"saved bench/results/{stamp}.json and .md")
    return 0
