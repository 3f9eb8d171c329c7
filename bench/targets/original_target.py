"""The original izzati 1.2.3 (Flask), run from its own venv (bench/.orig/venv).

    bench/.orig/venv/bin/python bench/targets/original_target.py --port P --workload echo|size|file [--file PATH]

izzati 1.2.3's `Backend.run()` is `app.run(debug=True, use_reloader=...)`: the debugger and
reloader would distort the figures, so this builds the original `Backend(cb)` (its Flask app
and `FlaskHandle` view, unchanged) and serves `backend.app` under Flask's development server
exactly as `app.run(host, port, debug=False, use_reloader=False, threaded=True)`, with werkzeug's
per-request log off (like every target's access log).
"""

import argparse
import importlib
import logging
import sys
from typing import Any

# the original 1.2.3, from the venv: not this repository's izzati, so its types do not apply
izzati: Any = importlib.import_module("izzati")
Backend, file_return = izzati.Backend, izzati.file_return
CHUNK = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workload", choices=["echo", "size", "file"], required=True)
    parser.add_argument("--file")
    opts = parser.parse_args()
    if "site-packages" not in izzati.__file__:
        sys.exit(f"not the original izzati 1.2.3: {izzati.__file__}")
    path = opts.file

    def echo(text: Any, data: Any) -> Any:
        return text

    def size(text: Any, data: Any) -> Any:
        # the same work as every target's W2 callback: read the whole upload in 1 MiB chunks
        total = 0
        while chunk := data[0].read(CHUNK):
            total += len(chunk)
        return {"size": total}

    def send_file(text: Any, data: Any) -> Any:
        return file_return(path)

    callback = {"echo": echo, "size": size, "file": send_file}[opts.workload]
    backend = Backend(callback)
    # werkzeug logs every request; off, like every target's access log (only errors remain)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    backend.app.run(host="127.0.0.1", port=opts.port, debug=False, use_reloader=False, threaded=True)


if __name__ == "__main__":
    main()
