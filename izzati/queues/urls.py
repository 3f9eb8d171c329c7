"""URLs of Redis queues: masked for logs, rebuilt from a redis-py client."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

__all__ = ["mask_url", "url_of"]

_CREDENTIALS = re.compile(r"(//[^/@:]*):[^/]*@")


def mask_url(url: str) -> str:
    """Return ``url`` with the password of its ``user:password@`` part replaced by ``***``
    (any string: a malformed URL is masked too, never refused)."""
    return _CREDENTIALS.sub(r"\1:***@", url)


def url_of(client: Any) -> str:
    """Rebuild a URL from a redis-py client, so a queue built on a client can be pickled."""
    pool = client.connection_pool
    kw = pool.connection_kwargs
    db = kw.get("db", 0)
    if "path" in kw:
        return f"unix://{kw['path']}?db={db}"
    scheme = "rediss" if "SSL" in pool.connection_class.__name__ else "redis"
    auth = ""
    if kw.get("password") is not None:
        user = urllib.parse.quote(kw.get("username") or "", safe="")
        auth = f"{user}:{urllib.parse.quote(kw['password'], safe='')}@"
    return f"{scheme}://{auth}{kw.get('host', 'localhost')}:{kw.get('port', 6379)}/{db}"
