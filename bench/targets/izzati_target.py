"""The izzati target: `Backend(cb, access_log=False).run(host="127.0.0.1", port=P)` with the
workload's plain callback. No access log: no target of the suite writes one (like for like).

The access log is off (`Backend(cb, access_log=False)`), as in every target of the suite: izzati's
default writes one line per request, which the others would not.

PYTHONPATH=<repo> python bench/targets/izzati_target.py --port P --workload echo|size|file|typed
    [--file PATH] [--workers N] [--max-body-bytes N] [--async] [--no-metrics] [--stdlib-json] [--routes N]

`typed` is W1 with a typed callback (`name: str, n: int`); `--stdlib-json` answers with the
encoder izzati used before orjson (json.dumps), the baseline of `python -m bench typed`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from izzati import Backend, file_return

CHUNK = 1024 * 1024


def stdlib_json(result: Any) -> bytes:
    """The reply encoder of izzati 2.0 (json.dumps), for comparison."""
    return json.dumps(result, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workload", choices=["echo", "size", "file", "typed"], required=True)
    parser.add_argument("--file", help="the file W4 returns")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-body-bytes", type=int)
    parser.add_argument("--threads", type=int, help="Backend(threads=N), for experiments (default: izzati's)")
    parser.add_argument("--async", dest="use_async", action="store_true", help="an async def callback")
    parser.add_argument("--no-metrics", dest="metrics", action="store_false", help="Backend(metrics=False)")
    parser.add_argument("--stdlib-json", action="store_true", help="reply with json.dumps, as before orjson")
    parser.add_argument("--routes", type=int, default=1, help="serve N routes: the callback at / and N-1 more")
    parser.add_argument("--access-log", action="store_true", help="izzati's default access log (bench accesslog)")
    opts = parser.parse_args()
    if opts.stdlib_json:
        import izzati.web.responses

        setattr(izzati.web.responses, "encode_json", stdlib_json)  # noqa: B010 - where render() finds it
    path = opts.file

    def echo(text: dict[str, Any], data: list[Any]) -> Any:
        return text

    def size(text: dict[str, Any], data: list[Any]) -> Any:
        # the same work as every target's W2 callback: read the whole upload in 1 MiB chunks
        total = 0
        while chunk := data[0].read(CHUNK):
            total += len(chunk)
        return {"size": total}

    def send_file(text: dict[str, Any], data: list[Any]) -> Any:
        return file_return(path)

    async def echo_async(text: dict[str, Any], data: list[Any]) -> Any:
        return text

    async def size_async(text: dict[str, Any], data: list[Any]) -> Any:
        return size(text, data)

    def typed(name: str, n: int) -> dict[str, Any]:
        return {"name": name, "n": n}

    plain: dict[str, Callable[..., Any]] = {"echo": echo, "size": size, "file": send_file, "typed": typed}
    coroutine = {"echo": echo_async, "size": size_async}
    callback = coroutine[opts.workload] if opts.use_async else plain[opts.workload]
    options: dict[str, Any] = {"access_log": opts.access_log}
    if opts.max_body_bytes is not None:
        options["max_body_bytes"] = opts.max_body_bytes
    if opts.threads is not None:
        options["threads"] = opts.threads
    routes = {"/": callback, **{f"/route{n}": callback for n in range(1, opts.routes)}}
    backend = Backend(routes if opts.routes > 1 else callback, metrics=opts.metrics, **options)
    backend.run(host="127.0.0.1", port=opts.port, workers=opts.workers)


if __name__ == "__main__":
    main()
