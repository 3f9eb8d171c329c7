"""W3's client: stream one multipart upload of SIZE bytes, generated on the fly, to a server.

    python bench/upload_client.py PORT SIZE_BYTES [TIMEOUT_S]

Sends one 1 MiB block of random bytes over and over (never the whole body in memory), reads
the whole response, and prints one JSON line: seconds (connect → last response byte), status,
content_type, body.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time

BLOCK = 1024 * 1024


def main() -> None:
    port, size = int(sys.argv[1]), int(sys.argv[2])
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 120.0
    boundary = "benchboundary" + os.urandom(8).hex()
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + size + len(tail)
    request = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()
    block = os.urandom(BLOCK)
    view = memoryview(block)
    start = time.perf_counter()
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(request + head)
    left = size
    while left > 0:
        n = min(left, BLOCK)
        sock.sendall(view[:n])
        left -= n
    sock.sendall(tail)
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    seconds = time.perf_counter() - start
    sock.close()
    raw = b"".join(chunks)
    header, _, body = raw.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0] else 0
    content_type = ""
    chunked = False
    for line in lines[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-type":
            content_type = value.strip()
        if key.strip().lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:  # de-chunk a small body
        out, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            n = int(size_line.split(b";")[0], 16)
            if n == 0:
                break
            out, rest = out + rest[:n], rest[n + 2 :]
        body = out
    print(
        json.dumps(
            {
                "seconds": seconds,
                "status": status,
                "content_type": content_type,
                "body": body.decode("utf-8", "replace"),
            }
        )
    )


if __name__ == "__main__":
    main()
