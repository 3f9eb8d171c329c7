"""`Settings`: the one place izzati reads the environment (`IZZATI_*` variables and `.env`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from . import defaults
from .settingsbase import ServiceSettings

__all__ = ["Settings", "ENV_PREFIX"]

ENV_PREFIX = "IZZATI_"


# settings where an empty value (IZZATI_API_KEY=) means "not set"
_EMPTY_IS_NONE: tuple[str, ...] = ("callback_timeout", "api_key", "max_inflight", "max_queued_jobs", "batch_size")
_EMPTY_IS_NONE += ("batch_wait_ms", "metrics_port", "workers_per_device")


class Settings(ServiceSettings):
    """Every setting of the service; each field is read from `IZZATI_<NAME>` or a `.env` file."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore")

    max_body_bytes: int = Field(
        defaults.MAX_BODY_BYTES,
        gt=0,
        description="largest request body accepted, in bytes (413 beyond)",
    )
    max_files: int = Field(
        defaults.MAX_FILES,
        ge=0,
        description="most files in one request",
    )
    max_fields: int = Field(
        defaults.MAX_FIELDS,
        ge=0,
        description="most text fields in one request",
    )
    max_field_bytes: int = Field(
        defaults.MAX_FIELD_BYTES,
        gt=0,
        description="largest single text field, in bytes",
    )
    max_text_bytes: int = Field(
        defaults.MAX_TEXT_BYTES,
        gt=0,
        description="largest JSON or form body, and all text fields of a multipart body, in bytes",
    )
    max_header_bytes: int = Field(
        defaults.MAX_HEADER_BYTES,
        gt=0,
        description="largest total size of request headers, in bytes (431 beyond)",
    )
    read_timeout: float = Field(
        defaults.READ_TIMEOUT,
        gt=0,
        description="seconds a client may take to send its headers, or pause while sending a body (408)",
    )
    callback_timeout: float | None = Field(
        None,
        gt=0,
        description="seconds a callback may take before the client gets 504 (empty: no bound)",
    )
    max_inflight: int | None = Field(
        None,
        gt=0,
        description="most synchronous calls running or waiting for a thread per server process; beyond it "
        "503 'overloaded' with Retry-After from the measured service time (empty: no bound)",
    )
    batch_size: int | None = Field(
        None,
        ge=1,
        description="the callback takes batches of up to this many requests (a list of (text, data) pairs; "
        "empty: as @izzati.batched says, else one request per call)",
    )
    batch_wait_ms: float | None = Field(
        None,
        ge=0,
        description="milliseconds the first request of a batch may wait for more (empty: as @izzati.batched says, "
        f"else {defaults.BATCH_WAIT_MS:g})",
    )
    ready_without_workers: bool = Field(
        False,
        description="GET /ready answers 200 with no live worker, when the queue answers (workers that scale "
        "from zero, e.g. KEDA)",
    )
    metrics: bool = Field(
        True,
        description="serve GET /metrics in the Prometheus text format (needs the API key when one is set)",
    )
    metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="a worker (python -m app worker) serves its metrics on this port at IZZATI_METRICS_HOST, "
        "without the API key (empty: none)",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="the address a worker's metrics port listens on: 127.0.0.1 keeps it on this machine; "
        "0.0.0.0 lets a Prometheus in another container or pod scrape it (no API key: keep it off public networks)",
    )
    traces: Literal["", "otlp", "console"] = Field(
        "",
        description="OpenTelemetry traces (pip install 'izzati[otel]'): otlp sends them to "
        "OTEL_EXPORTER_OTLP_ENDPOINT, console prints them (empty: only when the application sets up a tracer provider)",
    )
    graceful_timeout: float = Field(
        defaults.GRACEFUL_TIMEOUT,
        ge=0,
        description="seconds in-flight requests (and a worker's current item) get to finish on SIGTERM",
    )
    max_connections: int = Field(
        defaults.MAX_CONNECTIONS,
        gt=0,
        description="most concurrent connections per server process (503 beyond)",
    )
    api_key: str | None = Field(
        None,
        description="when set, every route needs 'Authorization: Bearer <key>' except /health, /ready, /izzati.js "
        "and the try-it page (GET / from a browser)",
    )
    cors_origins: str = Field(
        "",
        description="comma-separated origins allowed to call from a browser ('*' for any)",
    )
    access_log: bool = Field(
        True,
        description="log one line per request: method, path, status, duration, request id",
    )
    jobs: bool = Field(
        True,
        description="accept jobs: POST /jobs, or POST / with 'Prefer: respond-async'",
    )
    job_dir: str = Field(
        "",
        description="folder for job inputs and results, shared by web and workers (default: with memory://, a private "
        "folder for this run, removed at exit; otherwise <tmp>/izzati-jobs-<uid>, mode 0700)",
    )
    job_store: str = Field(
        "",
        description="where jobs live: empty for a folder (IZZATI_JOB_DIR), or s3://bucket/prefix for records in the "
        "IZZATI_QUEUE_URL Redis and files in S3 (endpoint and credentials from AWS_* variables; izzati[s3])",
    )
    job_ttl: float = Field(
        defaults.JOB_TTL,
        gt=0,
        description="seconds a finished job's result and files are kept",
    )
    job_max_attempts: int = Field(
        defaults.JOB_MAX_ATTEMPTS,
        ge=1,
        description="times a job whose worker died is started before it fails",
    )
    job_retries: int = Field(
        defaults.JOB_RETRIES,
        ge=0,
        description="times a job whose callback raised is run again, after 1 s, 2 s, 4 s, ... (0: it fails at once)",
    )
    max_queued_jobs: int | None = Field(
        None,
        gt=0,
        description="most jobs waiting in the jobs queue; beyond it a submit gets 503 'overloaded' with "
        "Retry-After from the measured job time (empty: no bound)",
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info",
        description="critical, error, warning, info or debug",
    )

    @field_validator(*_EMPTY_IS_NONE, mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    chat: str = Field(
        "",
        description="chat callbacks served at POST /v1/chat/completions and /v1/responses (OpenAI-compatible), as "
        "comma-separated 'model-name=module:function' (empty: none)",
    )
    embeddings: str = Field(
        "",
        description="embedding callbacks served at POST /v1/embeddings, as comma-separated "
        "'model-name=module:function' (empty: none)",
    )
    mcp: bool = Field(
        False,
        description="serve the callback as an MCP tool at /mcp (streamable HTTP; pip install 'izzati[mcp]')",
    )
    mcp_wait: float = Field(
        defaults.MCP_WAIT,
        ge=0,
        description="seconds an MCP tool call waits for its job before it answers with the job to follow "
        "(with IZZATI_JOBS)",
    )
    debug: bool = Field(
        False,
        description="include tracebacks in 500 responses (never in production)",
    )
    try_page: bool = Field(
        True,
        description="serve the try-it page at GET / to browsers",
    )
