"""`python -m bench [COMMAND] [OPTIONS]`: the one way to run the benchmarks, from the repository root.

    python -m bench [--quick] [--only W1,W2] ...   the whole suite (bench/suite.py)
    python -m bench latency [--calls 50]           the service's reliability paths (bench/service_latency.py)
    python -m bench queues [-n 20000] [--runs 3]   queue put -> get throughput (bench/queue_throughput.py)
    python -m bench profile [--workload W1] ...    py-spy profile under wrk load (bench/profile.py)
    python -m bench stream [--items N]             streamed replies vs FastAPI (bench/stream.py)
    python -m bench overload [--seconds S]         load shedding, IZZATI_MAX_INFLIGHT (bench/overload.py)
    python -m bench metrics [--runs 5]             W1 with metrics on vs off (bench/metrics_overhead.py)
    python -m bench typed [--runs 5]               W1 typed vs untyped; orjson vs json.dumps (bench/typed.py)
    python -m bench accesslog [--runs 5]           W1, access log on vs off, izzati and uvicorn (bench/access_log.py)
    python -m bench jobstore [--jobs 200]          jobs/s, S3 vs directory store; RSS serving 1 GiB (bench/jobstore.py)
    python -m bench tree [--model-mb 200] [--workers 2] [--baseline DIR]
                                                   summed RSS of the service's process tree (bench/tree_memory.py)
    python -m bench multiplex [--requests 400] [--max-models 3]
                                                   10 model ids, max_models=3 vs all resident (bench/multiplex.py)
    python -m bench peers [--quick] [--only P1,P2,P3] [--processes 1,2] [--seconds S] [--runs N]
                                                   izzati beside LitServe, BentoML, FastAPI (bench/peers/)

`python -m bench COMMAND --help` lists a command's options. See docs/performance.md.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

# command -> (module, one line for --help); modules import on use (queues needs redis, latency httpx)
COMMANDS = {
    "latency": ("bench.service_latency", "latencies of the service's reliability paths (real Redis, web, worker)"),
    "queues": ("bench.queue_throughput", "queue put -> get items/s across two processes, izzati vs raw tools"),
    "profile": ("bench.profile", "py-spy profile of the izzati target under wrk load (needs py-spy)"),
    "stream": ("bench.stream", "streamed replies: time to first item and items/s, izzati vs FastAPI"),
    "overload": ("bench.overload", "load shedding at 4x the sustainable load of a 50 ms callback"),
    "metrics": ("bench.metrics_overhead", "W1 with metrics on vs off, interleaved (the cost of /metrics)"),
    "typed": ("bench.typed", "W1 typed vs untyped callback, and orjson vs json.dumps replies, interleaved"),
    "accesslog": ("bench.access_log", "W1 with the access log on vs off, izzati's and uvicorn's (FastAPI)"),
    "jobstore": ("bench.jobstore", "jobs/s through the S3 store vs the directory store; web RSS serving 1 GiB results"),
    "tree": ("bench.tree_memory", "summed RSS of a service's whole process tree, a 200 MiB model, 2 workers"),
    "multiplex": ("bench.multiplex", "10 model ids with max_models=3 vs all resident: loads, evictions, req/s"),
    "peers": ("bench.peers.cli", "izzati beside LitServe, BentoML and FastAPI: overhead and models, batched too"),
}


def epilog() -> str:
    lines = ["commands (`python -m bench COMMAND --help` for each; without one: the whole suite above):"]
    lines += [f"  {name:<9} {line}" for name, (_, line) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in COMMANDS:
        command: Callable[[list[str]], int] = importlib.import_module(COMMANDS[args[0]][0]).main
        return command(args[1:])
    from bench.suite import main as suite

    return suite(args, epilog())


if __name__ == "__main__":
    sys.exit(main())
