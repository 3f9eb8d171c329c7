"""Example user code for `docker compose up`: edit it, then `docker compose restart web worker`.

This folder is mounted read-only at /callbacks and put on IZZATI_CALLBACK_PATH, so the names
below are `example:handle` (IZZATI_CALLBACK, run by `web`) and `example:process`
(IZZATI_WORKER, run by each `worker`). Only the standard library is available here besides
izzati's own dependencies; for more packages, build your own image FROM this one.
"""

import json
import os
import socket
import time


def handle(text, data, q):
    """Web callback: `text` = form/JSON fields (dict), `data` = uploaded files, `q` = the queue.

    Puts the fields on the queue for a worker and answers at once with JSON.
    """
    files = [f.filename for f in data]
    q.put({"text": text, "files": files})
    return {"queued": True, "text": text, "files": files}


def process(q):
    """Worker: takes each item off the queue and logs it (`docker compose logs -f worker`).

    If CALLBACKS_OUT names a directory, each item is also appended there as one JSON line
    (one file per worker container); CALLBACKS_DELAY (seconds) slows each item down. Both
    exist for the end-to-end test and demos; leave them unset otherwise.
    """
    out_dir = os.environ.get("CALLBACKS_OUT")
    delay = float(os.environ.get("CALLBACKS_DELAY") or 0)
    out_path = os.path.join(out_dir, f"{socket.gethostname()}.jsonl") if out_dir else None
    while True:
        item = q.get()
        if delay:
            time.sleep(delay)
        print(f"worker {socket.gethostname()} processed: {json.dumps(item)}", flush=True)
        if out_path:
            with open(out_path, "a", encoding="utf-8") as out:
                out.write(json.dumps(item) + "\n")
        q.task_done()
