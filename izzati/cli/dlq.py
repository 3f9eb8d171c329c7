"""`izzati dlq list|retry|purge`: the dead letters of a redis:// queue (or of its jobs queue)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from ..exceptions import UsageError
from . import EXIT_OK, say

__all__ = ["dlq"]


def dlq(args: argparse.Namespace) -> int:
    """List, retry or purge the parked entries; return the exit code."""
    from ..assembly import load_settings
    from ..queues import RedisQueue, mask_url, open_queue

    settings = load_settings(queue_url=args.queue)
    name = settings.queue_name + (":jobs" if args.jobs else "")
    if not settings.queue_url.startswith(("redis:", "rediss:", "unix:")):
        raise UsageError(
            f"IZZATI_QUEUE_URL={mask_url(settings.queue_url)!r}: dead letters exist only on a redis:// queue "
            "(give one with --queue URL)"
        )
    queue = open_queue(settings.queue_url, name=name, connect_timeout=settings.queue_connect_timeout)
    assert isinstance(queue, RedisQueue)
    letters = queue.dead_letters
    try:
        if args.action == "list":
            for letter in letters.entries(args.limit):
                if args.json:
                    print(json.dumps(letter.as_dict(), ensure_ascii=False))
                    continue
                when = datetime.fromtimestamp(letter.time, UTC).isoformat(timespec="seconds")
                item = letter.fields.get("d", json.dumps(letter.fields, ensure_ascii=False))
                print(f"{letter.id}  {when}  deliveries={letter.deliveries}  {letter.reason}\n    {item[:300]}")
            say(f"{letters.count()} parked in {letters.key}")
        elif args.action == "retry":
            if not args.all and not args.ids:
                raise UsageError("dlq retry: name the ids to retry, or --all")
            requeued = letters.retry(None if args.all else list(args.ids))
            say(f"{len(requeued)} put back on {queue.name!r}")
        else:
            say(f"{letters.purge()} deleted from {letters.key}")
    finally:
        queue.close()
    return EXIT_OK


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add `dlq` and its actions to the `izzati` command."""
    dlq_parser = commands.add_parser(
        "dlq",
        help="list, retry or purge the dead letters of a redis:// queue",
        description=(
            "Queue items that killed their workers IZZATI_MAX_DELIVERIES times, and entries that are not "
            "izzati's JSON, are parked in <IZZATI_QUEUE_NAME>:dead instead of stopping the fleet. "
            "The queue comes from --queue or IZZATI_QUEUE_URL; --jobs works on the jobs queue."
        ),
        allow_abbrev=False,
    )
    actions = dlq_parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="print the parked entries, oldest first")
    listing.add_argument("--json", action="store_true", help="one JSON object a line")
    listing.add_argument("--limit", type=int, default=100, metavar="N", help="at most N entries (default 100)")
    retry = actions.add_parser("retry", help="put parked entries back on the queue")
    retry.add_argument("ids", nargs="*", metavar="ID", help="ids as `list` prints them")
    retry.add_argument("--all", action="store_true", help="every parked entry")
    actions.add_parser("purge", help="delete every parked entry")
    for action in (listing, retry, actions.choices["purge"]):
        action.add_argument("--queue", help="queue URL, e.g. redis://127.0.0.1:6379/0 (IZZATI_QUEUE_URL)")
        action.add_argument("--jobs", action="store_true", help="the jobs queue (<IZZATI_QUEUE_NAME>:jobs)")
