"""Every default value, defined once: `Settings`, `Limits`, `Backend`, the queues and the job
service all take theirs from here (stdlib only, so a worker or a script imports it for free)."""

from __future__ import annotations

__all__ = [
    "MiB",
    "HOST",
    "PORT",
    "THREADS",
    "GRACEFUL_TIMEOUT",
    "MAX_CONNECTIONS",
    "QUEUE_NAME",
    "QUEUE_CONNECT_TIMEOUT",
    "REDELIVERY_TIMEOUT",
    "MAX_DELIVERIES",
    "MAX_BODY_BYTES",
    "MAX_FILES",
    "MAX_FIELDS",
    "MAX_FIELD_BYTES",
    "MAX_PART_HEADER_BYTES",
    "MAX_TEXT_BYTES",
    "MAX_HEADER_BYTES",
    "READ_TIMEOUT",
    "SPOOL_BYTES",
    "JOB_TTL",
    "JOB_MAX_ATTEMPTS",
    "JOB_RETRIES",
    "JOB_RETRY_DELAY",
    "BATCH_SIZE",
    "BATCH_WAIT_MS",
    "BATCH_CONCURRENCY",
    "MCP_WAIT",
]

MiB = 1024 * 1024

HOST = "0.0.0.0"
PORT = 5020
THREADS = 40
GRACEFUL_TIMEOUT = 30.0
MAX_CONNECTIONS = 1000

QUEUE_NAME = "izzati"
QUEUE_CONNECT_TIMEOUT = 10.0
REDELIVERY_TIMEOUT = 10.0
MAX_DELIVERIES = 5

MAX_BODY_BYTES = 100 * MiB
MAX_FILES = 1000
MAX_FIELDS = 1000
MAX_FIELD_BYTES = 1 * MiB
MAX_PART_HEADER_BYTES = 8 * 1024
MAX_TEXT_BYTES = 8 * MiB
MAX_HEADER_BYTES = 16 * 1024
READ_TIMEOUT = 30.0
SPOOL_BYTES = 1 * MiB

JOB_TTL = 86400.0
JOB_MAX_ATTEMPTS = 3
JOB_RETRIES = 0
JOB_RETRY_DELAY = 1.0

BATCH_SIZE = 8
BATCH_WAIT_MS = 5.0
BATCH_CONCURRENCY: int | None = None  # as many as keep the process's cores busy: izzati.threads

MCP_WAIT = 30.0
"""Seconds an MCP tool call waits for its job before it answers with the job to follow."""
