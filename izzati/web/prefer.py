"""The `Prefer` request header (RFC 7240): which preferences a request states, read exactly.

Every `Prefer` line of a request counts, as one comma-separated list (RFC 9110 §5.3); a
preference is a token, optionally `=` a token or quoted string, then `;` parameters (ignored
here); names are compared whole and case-insensitively; a name given twice counts once, the
first (RFC 7240 §2); an element that is not a preference is ignored.
"""

from __future__ import annotations

import logging
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["preferences", "wants_async", "preferred_wait", "jobs_off"]

logger = logging.getLogger("izzati.jobs")
_warned: set[str] = set()  # the paths whose `jobs_off` was logged (once per path and process)

_QUOTED = r'"(?:[^"\\]|\\.)*"'
# an element of a comma-separated list, and a part of an element between semicolons: quoted
# strings may hold either separator
_ELEMENT = re.compile(rf'(?:[^,"]|{_QUOTED})+')
_PART = re.compile(rf'(?:[^;"]|{_QUOTED})+')
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PREFERENCE = re.compile(rf"[ \t]*({_TOKEN})(?:[ \t]*=[ \t]*({_TOKEN}|{_QUOTED}))?[ \t]*")
_SECONDS = re.compile(r"\d+(?:\.\d+)?")
_MAX_WAIT = 600.0  # seconds: longer than any proxy keeps a quiet request open anyway


def preferences(scope: Scope) -> dict[str, str]:
    """The request's preferences: name (lower case) → value ('' when it has none)."""
    found: dict[str, str] = {}
    for key, line in scope["headers"]:
        if key != b"prefer":
            continue
        for element in _ELEMENT.findall(line.decode("latin-1")):
            first = _PART.match(element)
            preference = _PREFERENCE.fullmatch(first.group()) if first is not None else None
            if preference is None:
                continue
            name, value = preference.group(1).lower(), preference.group(2) or ""
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            found.setdefault(name, value)
    return found


def wants_async(scope: Scope) -> bool:
    """Whether the request asks to be run as a job (`Prefer: respond-async`)."""
    return "respond-async" in preferences(scope)


def preferred_wait(scope: Scope) -> float | None:
    """The request's `Prefer: wait=N`, in seconds (at most 600), or None."""
    value = preferences(scope).get("wait", "")
    return min(float(value), _MAX_WAIT) if _SECONDS.fullmatch(value) else None


def jobs_off(response: ASGIApp, path: str) -> ASGIApp:
    """`response`, answered now to a request that asked for a job on a service with jobs off:
    the preference is ignored (RFC 7240 allows it), and the `Izzati-Jobs: off` header says why
    no job was made; the first such request on a path is logged, naming how to turn jobs on."""
    if path not in _warned:
        _warned.add(path)
        logger.warning(
            "POST %s asked for a job (Prefer: respond-async) but jobs are off: answered now; "
            "turn them on with Backend(..., jobs=True) or IZZATI_JOBS=true",
            path,
        )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"izzati-jobs", b"off")]}
            await send(message)

        await response(scope, receive, send_marked)

    return app
