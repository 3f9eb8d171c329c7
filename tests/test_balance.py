"""Server processes of one port take its connections in turn (`izzati.web.balance`): real
`python -m app` trees with two server processes, real connections, and the rule itself."""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from izzati.supervisor import State
from izzati.web.balance import ACCEPTS_PER_TURN, GONE, SLACK, WAIT, BalancedServer, Loads
from izzati.web.server import server_children
from tests.support.http import wait_for_http
from tests.support.net import free_tcp_port
from tests.support.processes import PYTHON, Proc
from tests.support.servers import ThreadServer
from tests.support.tls import make_certificates

Spawn = Callable[..., Proc]


def _post(port: int, timeout: float = 30, **fields: str) -> tuple[int, float]:
    """POST `fields` on a new connection; the pid that answered and the seconds it took."""
    began = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        body = urllib.parse.urlencode(fields)
        conn.request("POST", "/", body, {"Content-Type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        assert response.status == 200
        return int(json.loads(response.read())["pid"]), time.monotonic() - began
    finally:
        conn.close()


@pytest.fixture
def two_processes(spawn: Spawn) -> int:
    """The port of a service with two server processes answering with `turns.handle`."""
    port = free_tcp_port()
    env = {
        "IZZATI_HOST": "127.0.0.1",
        "IZZATI_PORT": str(port),
        "IZZATI_CALLBACK": "turns:handle",
        "IZZATI_WORKERS": "2",
        "IZZATI_JOBS": "false",
        "IZZATI_ACCESS_LOG": "false",
    }
    proc = spawn([PYTHON, "-m", "app"], env=env)
    wait_for_http(f"http://127.0.0.1:{port}/ready", proc=proc.popen, timeout=60)
    return port


def _burst(port: int, connections: int) -> list[int]:
    """`connections` requests on new connections opened at once, each held 0.5 s: who answered."""
    start = threading.Barrier(connections)
    answered: list[int] = []

    def send() -> None:
        start.wait()
        answered.append(_post(port, seconds="0.5")[0])

    senders = [threading.Thread(target=send) for _ in range(connections)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(30)
    return answered


def test_a_burst_of_connections_is_split_evenly(two_processes: int) -> None:
    # hashed by SO_REUSEPORT, 40 connections came out within 19-21 for each process in only
    # about one burst in three
    for _ in range(4):
        answered = _burst(two_processes, 40)
        split = sorted(collections.Counter(answered).values())
        assert len(answered) == 40 and len(split) == 2 and split[1] - split[0] <= 2, split


def test_a_process_whose_event_loop_is_stuck_gets_no_new_connections(two_processes: int) -> None:
    stuck = threading.Thread(target=_post, args=(two_processes,), kwargs={"seconds": "4", "block": "1"})
    stuck.start()
    time.sleep(0.5)  # the stuck request is being served
    took = [_post(two_processes)[1] for _ in range(10)]
    stuck.join(30)
    # SO_REUSEPORT sent about half of these to the stuck process, where they waited for it
    assert max(took) < 2, took


def test_the_rule() -> None:
    loads = Loads.make(3)
    assert list(loads.open) == [GONE, GONE, GONE]
    assert loads.excess(0, 5) == 0  # the others do not accept: take it
    for state in loads.states:
        state.value = State.READY
    loads.open[:] = [4, 2, GONE]
    assert loads.excess(0, 4) == 2 and loads.excess(1, 2) == 0
    loads.open[2] = 0
    assert loads.excess(0, 4) == 4 and loads.excess(1, 2) == 2 and loads.excess(2, 0) == 0
    loads.states[2].value = State.WAITING  # died: its last count says nothing
    assert loads.excess(0, 4) == 2 and loads.excess(1, 2) == 0
    assert SLACK == 1  # a process with one more than another still takes the next at once


def test_each_server_process_is_marked_by_the_supervisor_where_the_others_read_it() -> None:
    config = uvicorn.Config(lambda *_: None, host="127.0.0.1", port=0)
    children, sock = server_children(config, ["cpu"], 3)
    try:
        counts = children[0].args[2]
        assert [child.state for child in children] == counts.states
        assert all(child.args[2] is counts for child in children)
    finally:
        sock.close()


@contextlib.contextmanager
def _serving_beside(peer: State) -> Iterator[tuple[int, BalancedServer]]:
    """One balanced server whose peer's slot says idle but never accepts, the peer in state `peer`
    (READY: killed while idle, the supervisor not yet aware; WAITING: known dead): its port and it."""
    loads = Loads.make(2)
    loads.open[1] = 0
    loads.states[1].value = peer

    async def app(scope: dict, receive: Callable, send: Callable) -> None:  # type: ignore[type-arg]
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"pid": 1}'})

    served = ThreadServer(app, lambda config, sock: BalancedServer(config, sock, loads, 0), lifespan="off").start()
    try:
        assert isinstance(served.server, BalancedServer)
        yield served.port, served.server
    finally:
        served.stop()


def _twenty_beside_two_idle(port: int) -> list[float]:
    """With two idle connections open (SLACK + 1 more than the peer's count), 20 requests one
    after another on new connections: the seconds each took."""
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    try:
        time.sleep(0.2)
        return [_post(port, timeout=5)[1] for _ in range(20)]
    finally:
        for conn in idle:
            conn.close()


def test_a_connection_left_to_a_silent_peer_is_taken_after_a_few_ms() -> None:
    with _serving_beside(State.READY) as (port, server):
        took = _twenty_beside_two_idle(port)
        assert server.waited == 20, took  # each was left to the peer, which never took it
    assert max(took) < 1, took
    # uvloop's clock counts whole milliseconds, read once per turn of the loop
    assert min(took) >= WAIT - 0.002, took


def test_a_peer_the_supervisor_marked_dead_is_not_waited_for() -> None:
    with _serving_beside(State.WAITING) as (port, server):
        took = _twenty_beside_two_idle(port)
        assert server.waited == 0, took


def test_tls_connections_are_taken_in_turn_too(spawn: Spawn, tmp_path: Path) -> None:
    certs = make_certificates(tmp_path)
    port = free_tcp_port()
    code = (
        "import turns; from izzati import Backend; "
        f"Backend(turns.handle, access_log=False).run(host='127.0.0.1', port={port}, workers=2, "
        f"ssl_certfile={str(certs.cert)!r}, ssl_keyfile={str(certs.key)!r})"
    )
    proc = spawn([PYTHON, "-c", code])
    context = ssl.create_default_context(cafile=str(certs.ca))
    deadline = time.monotonic() + 60
    while True:
        assert proc.popen.poll() is None and time.monotonic() < deadline, "the TLS service did not start"
        try:
            httpx.get(f"https://127.0.0.1:{port}/ready", verify=context, timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    # a client speaking plain HTTP to the TLS port fails its handshake and costs nothing
    with pytest.raises(httpx.HTTPError):
        httpx.post(f"http://127.0.0.1:{port}/", data={"seconds": "0"}, timeout=5)

    # 8 connections held open at once are split between the processes (one after another, either
    # may take each: the race can give every one to the same process)
    def send(_: int) -> int:
        reply = httpx.post(f"https://127.0.0.1:{port}/", data={"seconds": "0.5"}, verify=context, timeout=10)
        return int(reply.json()["pid"])

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        pids = collections.Counter(pool.map(send, range(8)))
    assert len(pids) == 2, pids


def test_a_flood_of_connections_is_taken_a_hundred_per_turn_of_the_loop() -> None:
    per_turn: list[int] = []

    class Recorded(BalancedServer):
        def _readable(self) -> None:
            before = self.pending
            super()._readable()
            per_turn.append(self.pending - before)

    async def app(scope: dict, receive: Callable, send: Callable) -> None:  # type: ignore[type-arg]
        return None

    served = ThreadServer(app, lambda config, sock: Recorded(config, sock, Loads.make(1), 0), lifespan="off")
    served.sock.listen(512)
    flood = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(150)]  # waiting before it starts
    try:
        served.start()
        deadline = time.monotonic() + 10
        while sum(per_turn) < 150:
            assert time.monotonic() < deadline and served.thread.is_alive(), per_turn
            time.sleep(0.01)
        assert max(per_turn) == ACCEPTS_PER_TURN, per_turn
    finally:
        served.stop()
        for conn in flood:
            conn.close()
