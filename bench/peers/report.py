"""The peer benchmark's report: one table per workload and process count, the ratios izzati / peer,
the goals of issue 15 with their verdicts, and the saved markdown and JSON."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["rows_table", "ratio_table", "kernel_line", "goals", "goals_table", "save"]

Say = Callable[[str], None]
IZZATI = ("izzati", "izzati-async", "izzati batched")
# what no serving tool can beat: no framework (asgi), no HTTP at all (ceiling); not peers in the p99 goals
FLOORS = ("asgi", "ceiling")


def rows_table(say: Say, rows: list[dict[str, Any]], idle: dict[str, float]) -> None:
    """Every target's figures: medians of the timed runs."""
    say(
        "| target | req/s | p50 ms | p99 ms | server CPU (cores) | CPU ms / req | idle CPU | peak RSS MiB |"
        " wrk CPU | runs (req/s) | note |"
    )
    say("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if not r["rps"]:
            say(f"| {r['label']} | – | – | – | – | – | – | – | – | – | {r['note']} |")
            continue
        per_request = r["server_cpu"] / r["rps"] * 1000
        say(
            f"| {r['label']} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['server_cpu']:.2f} |"
            f" {per_request:.3f} | {idle.get(r['label'], 0.0):.2f} | {r['rss_mib']:.0f} | {r['wrk_cpu']:.0%} |"
            f" {', '.join(f'{x:,.0f}' for x in r['runs'])} | {r['note']} |"
        )


def ratio_table(say: Say, rows: list[dict[str, Any]]) -> dict[str, float]:
    """req/s of each izzati row over each peer row (and batched izzati over unbatched)."""
    rps = {r["label"]: r["rps"] for r in rows if r["rps"]}
    ours = [label for label in IZZATI if label in rps]
    peers = [label for label in rps if label not in IZZATI]
    if not ours or not peers:
        return {}
    found: dict[str, float] = {}
    say("| req/s ratio | " + " | ".join(f"/ {p}" for p in peers) + " |")
    say("|---|" + "---|" * len(peers))
    for mine in ours:
        cells = []
        for peer in peers:
            found[f"{mine} / {peer}"] = rps[mine] / rps[peer]
            cells.append(f"{rps[mine] / rps[peer]:.2f}x")
        say(f"| {mine} | " + " | ".join(cells) + " |")
    if "izzati" in ours and "izzati batched" in ours:
        found["izzati batched / izzati"] = rps["izzati batched"] / rps["izzati"]
        say(f"\nizzati batched / izzati (unbatched) = {found['izzati batched / izzati']:.2f}x")
    return found


def kernel_line(kernel: dict[str, float], blas_threads: int, batch: int) -> str:
    """What batching can gain at most: the matrix product alone, one x against a full batch."""
    gain = kernel["one"] * batch / kernel["batch"]
    return (
        f"the matrix product alone (one process, {blas_threads} BLAS thread(s)): W @ x {kernel['one']:.2f} ms,"
        f" X @ W.T for {batch} xs {kernel['batch']:.2f} ms: a full batch makes it at most {gain:.1f}x cheaper per x"
    )


# (workload, ratio name, goal, what the issue says); the ratios are izzati's req/s over the peer's
_RATIO_GOALS = [
    ("P1", "izzati / litserve", 7.5, "keep the lead measured before"),
    ("P1", "izzati / bentoml", 19.0, "keep the lead measured before"),
    ("P1", "izzati / fastapi", 3.0, "keep the lead measured before"),
    ("P2", "izzati / litserve", 2.6, "keep the lead measured before"),
    ("P2", "izzati / litserve batched", 2.6, "keep the lead measured before, LitServe batching"),
    ("P3", "izzati batched / litserve batched", 1.5, "batching"),
    ("P3", "izzati batched / izzati", 3.0, "batching pays"),
    ("P1", "izzati / asgi", 0.4, "issue 22: the request path toward the bare-ASGI floor"),
    ("P1", "izzati-async / asgi", 0.4, "issue 22: the request path toward the bare-ASGI floor"),
    ("P3", "izzati batched / litserve batched", 1.5, "issue 22: one process keeps the model busy"),
    ("P4", "izzati batched / ceiling", 0.95, "issue 22: LitServe's parity test, toward the physical limit"),
    ("P4", "izzati batched / litserve batched", 1.0, "issue 22: ahead of LitServe on its own test"),
    ("P4", "izzati batched / litserve batched (their method)", 1.0, "issue 22: the same, their load generator"),
]


def goals(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 15's goals for the workloads that ran, each with its figure and PASS / FAIL / not run
    (a target missing: its check failed, or its tool was not installed)."""
    out: list[dict[str, Any]] = []
    by = {(g["workload"], g["processes"]): g for g in groups}
    for processes in sorted({g["processes"] for g in groups}):
        for workload, name, goal, words in _RATIO_GOALS:
            group = by.get((workload, processes))
            if group is None:
                continue  # not asked for (--only, --processes)
            value = group["ratios"].get(name)
            verdict = "not run" if value is None else ("PASS" if value >= goal else "FAIL")
            out.append(
                {
                    "goal": f"{workload} x{processes}: {name} >= {goal:g}x ({words})",
                    "value": value,
                    "shown": "–" if value is None else f"{value:.2f}x",
                    "verdict": verdict,
                }
            )
        for workload in ("P1", "P2", "P3", "P4"):
            group = by.get((workload, processes))
            if group is None:
                continue
            rows = {r["label"]: r for r in group["rows"] if r["rps"]}
            for mine in IZZATI:
                batched = mine.endswith("batched")
                others = [label for label in rows if label not in FLOORS and not label.startswith("izzati")]
                peers = [rows[label] for label in others if label.endswith("batched") == batched]
                if mine not in rows or not peers:
                    continue
                best = min(peers, key=lambda r: r["p99_ms"])
                value = rows[mine]["p99_ms"]
                out.append(
                    {
                        "goal": f"{workload} x{processes}: {mine} p99 <= the best peer's"
                        f" ({best['label']} {best['p99_ms']:.2f} ms)",
                        "value": value,
                        "shown": f"{value:.2f} ms",
                        "verdict": "PASS" if value <= best["p99_ms"] else "FAIL",
                    }
                )
    return out


def goals_table(say: Say, found: list[dict[str, Any]]) -> None:
    """The goals as a table."""
    say("| goal | measured | verdict |")
    say("|---|---|---|")
    for g in found:
        say(f"| {g['goal']} | {g['shown']} | {g['verdict']} |")


def save(results: dict[str, Any], lines: list[str], folder: Path, stamp: str) -> Path:
    """Write peers-<stamp>.md and .json (and peers-latest.*) into `folder`; the markdown's path."""
    folder.mkdir(parents=True, exist_ok=True)
    md, js = folder / f"peers-{stamp}.md", folder / f"peers-{stamp}.json"
    md.write_text("\n".join(lines) + "\n")
    js.write_text(json.dumps(results, indent=2, default=str))
    shutil.copy(md, folder / "peers-latest.md")
    shutil.copy(js, folder / "peers-latest.json")
    return md
