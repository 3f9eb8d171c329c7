"""Helpers the tests share (no fixtures here: those live in conftest.py and tests/fixtures_redis.py).

- `net`: `free_tcp_port()`, the one free-port helper.
- `http`: `wait_for_http()`.
- `processes`: `Proc`, a child process with captured output; `PYTHON`, `ROOT`, `CALLBACKS`.
- `redis_server`: `RedisServer`, a real `redis-server` child process (`tls.py`: its TLS certificates).
- `seaweed`: `SeaweedServer`, a real SeaweedFS with its S3 gateway.
- `jobs`: `body_bytes()`, a stored result's bytes from any job store.
- `replay`: the hypothesis profile that keeps failing examples (`load_profile()`).
- `servers`: `ThreadServer`, a uvicorn server in a thread of the test process.
"""
