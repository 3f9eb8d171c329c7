"""`ServiceSettings`: the settings of what a service runs and where (its callbacks, processes,
devices and queue); `Settings` adds the limits, jobs, doors and the rest."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings

from . import defaults, threads

__all__ = ["ServiceSettings"]


class ServiceSettings(BaseSettings):
    """What the service runs and where: read through `Settings`, which sets the sources."""

    callback: str = Field(
        "izzati.examples:echo",
        description="'module:function' of the web callback (default echoes text and file names "
        "and puts text on the queue)",
    )
    routes: str = Field(
        "",
        description="several callbacks, each on its path: '/=mymodule:echo,/classify=mymodel:Classifier' "
        "(replaces IZZATI_CALLBACK; jobs run the callback at /)",
    )
    worker_routes: str = Field(
        "", description="the routes whose jobs `python -m app worker` runs, e.g. '/classify,/embed' (empty: all)"
    )
    worker: str = Field(
        "izzati.examples:print_items",
        description="'module:function' of the background target, called as target(q, *args, **kwargs) "
        "(default prints each item)",
    )
    host: str = Field(
        defaults.HOST,
        description="address the web server listens on",
    )
    port: int = Field(
        defaults.PORT,
        ge=0,
        le=65535,
        description="port the web server listens on",
    )
    workers: int = Field(
        1,
        ge=1,
        description="number of web server processes (on each device: see IZZATI_WORKERS_PER_DEVICE)",
    )
    devices: str = Field(
        "cpu",
        description="devices the server processes run on: cpu, a list such as cuda:0,cuda:1 (each GPU process "
        "gets CUDA_VISIBLE_DEVICES=N, and setup(self, device) gets 'cuda:0'), or auto (the GPUs nvidia-smi -L "
        "lists, else cpu)",
    )
    workers_per_device: int | None = Field(
        None,
        ge=1,
        description="server processes on each device (default: IZZATI_WORKERS)",
    )
    cpu_threads: str = Field(
        "auto",
        description="threads each server process's numeric libraries (torch, OpenMP, MKL, OpenBLAS) use: auto gives "
        "each of N processes on one host its share of the usable cores (cores // N, at least 1, counting CPU affinity "
        "and a container's CPU quota; the libraries' own defaults for one process that may use every core, or with "
        "OMP_NUM_THREADS set), a number sets it, 0 leaves the libraries' defaults",
    )
    queue_url: str = Field(
        "memory://",
        description="memory:// (in-process, web and worker in one process tree) or redis://host:port/db",
    )
    queue_name: str = Field(
        defaults.QUEUE_NAME,
        min_length=1,
        description="name of the queue on the broker",
    )
    queue_connect_timeout: float = Field(
        defaults.QUEUE_CONNECT_TIMEOUT,
        ge=0,
        description="seconds to keep retrying a broker at startup before giving up",
    )
    redelivery_timeout: float = Field(
        defaults.REDELIVERY_TIMEOUT,
        gt=0,
        description="seconds before an item held by a dead worker goes to another worker",
    )
    max_deliveries: int = Field(
        defaults.MAX_DELIVERIES,
        ge=1,
        description="deliveries of a queue item (or job) whose worker dies each time, before it is parked "
        "as a dead letter (redis://)",
    )
    callback_args: list[Any] = Field(
        default_factory=list,
        description="JSON list of extra positional arguments of the callback",
    )
    callback_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="JSON object of extra keyword arguments of the callback",
    )
    worker_args: list[Any] = Field(
        default_factory=list,
        description="JSON list of extra positional arguments of the worker",
    )
    worker_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="JSON object of extra keyword arguments of the worker",
    )
    callback_path: str = Field(
        "",
        description="extra directories for imports, separated like PYTHONPATH (e.g. a mounted folder)",
    )

    @field_validator("cpu_threads", mode="before")
    @classmethod
    def _thread_count(cls, value: Any) -> str:
        return threads.check(value)
