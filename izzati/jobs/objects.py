"""Job files in S3-compatible object storage (`s3://bucket/prefix`), through boto3.

boto3 finds the endpoint and the credentials itself, the way every AWS tool does:
`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION` (or
`AWS_REGION`, which the other AWS SDKs read and boto3 does not), or a role where the process
runs. A job's files are `<prefix><job id>/in-<n>` and `<prefix><job id>/result`. Everything
streams: an upload is read a part at a time (one request up to `part_size`, a multipart upload
beyond, its parts sent one after the other), a download is written or yielded in 1 MiB chunks.
Every call blocks: callers keep them off the event loop.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Iterator
from typing import IO, Any
from urllib.parse import urlsplit

from ..defaults import THREADS, MiB
from ..exceptions import ConfigError, JobStoreUnavailable
from .model import ResultStream

__all__ = ["ObjectStore", "parse_s3_url"]

_CHUNK = 1 * MiB
PART_SIZE = 8 * MiB
# A store that does not answer is a 503 within seconds, not botocore's 60 s per try, times 5
# tries: the read timeout bounds each wait for bytes (a part of 8 MiB is sent, then answered),
# and one retry covers a dropped keep-alive connection.
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 5.0
ATTEMPTS = 2


def parse_s3_url(url: str) -> tuple[str, str]:
    """The bucket and the key prefix (empty, or ending in `/`) of `s3://bucket/prefix`."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment or set("@:") & set(parts.netloc):
        raise ConfigError(f"IZZATI_JOB_STORE={url!r}: expected s3://bucket/prefix (credentials go in AWS_* variables)")
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


def _no_expect(params: dict[str, Any], **kwargs: Any) -> None:
    """Drop the `Expect: 100-continue` botocore puts on uploads.

    botocore waits 1 s for the 100, then sends the body anyway; a server whose 100 comes later
    (SeaweedFS under load did) then answers twice, botocore misreads the reply and the upload
    hangs. Without the header a refused upload costs its body once, nothing worse."""
    params["headers"].pop("Expect", None)


def _configured(client: Any) -> Any:
    # handlers of `before-call.s3` run after botocore's own `before-call.s3.PutObject` ones
    client.meta.events.register("before-call.s3", _no_expect)
    return client


class _Part(io.RawIOBase):
    """`size` bytes of a seekable stream from `start`, read in place: a part of a multipart upload
    that is never copied into memory (botocore reads it for the checksum, seeks back, sends it)."""

    def __init__(self, stream: IO[bytes], start: int, size: int) -> None:
        super().__init__()
        self.stream, self.start, self.size, self.position = stream, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.position, os.SEEK_END: self.size}[whence]
        self.position = min(max(base + offset, 0), self.size)
        return self.position

    def read(self, size: int | None = -1) -> bytes:
        left = self.size - self.position
        wanted = left if size is None or size < 0 else min(size, left)
        self.stream.seek(self.start + self.position)
        data = self.stream.read(wanted)
        self.position += len(data)
        return data


class ObjectStore:
    """A bucket and a key prefix in S3-compatible storage.

    Arguments:
        url: `s3://bucket/prefix`.
        client: a ready boto3 S3 client (default: one per process, configured from the AWS_*
            variables).
        part_size: files up to this size go in one request; larger ones in parts of this size.
    """

    def __init__(self, url: str, *, client: Any = None, part_size: int = PART_SIZE) -> None:
        self.url = url
        self.bucket, self.prefix = parse_s3_url(url)
        self.part_size = part_size
        self._given = None if client is None else _configured(client)
        self._clients: dict[int, Any] = {}
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The boto3 client of this process (one made before a fork is never used after it)."""
        if self._given is not None:
            return self._given
        pid = os.getpid()
        with self._lock:  # boto3 sessions are not thread-safe: make the client once
            if pid not in self._clients:
                import boto3
                from botocore.config import Config

                # as many connections as the server has threads, so none waits for a free one
                config = Config(
                    max_pool_connections=THREADS + 10,
                    connect_timeout=CONNECT_TIMEOUT,
                    read_timeout=READ_TIMEOUT,
                    retries={"mode": "standard", "total_max_attempts": ATTEMPTS},
                )
                # AWS_REGION: what the AWS CLI v2 and the other SDKs read; boto3 reads only AWS_DEFAULT_REGION
                region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or None
                session = boto3.session.Session(region_name=region)
                self._clients = {pid: _configured(session.client("s3", config=config))}
            return self._clients[pid]

    def key(self, job_id: str, name: str) -> str:
        """The key of a job's file."""
        return f"{self.prefix}{job_id}/{name}"

    @contextlib.contextmanager
    def _reached(self) -> Iterator[None]:
        """Turn a store that does not answer into `JobStoreUnavailable` (503)."""
        from botocore.exceptions import ConnectionError, HTTPClientError

        try:
            yield
        except (ConnectionError, HTTPClientError) as exc:
            raise JobStoreUnavailable(f"the object store of {self.url} is unreachable: {exc}") from exc

    def check(self) -> None:
        """Fail with one line naming the setting when the bucket cannot be used with these credentials."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            with self._reached():
                self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            reason = f"{error.get('Code', '?')} {error.get('Message') or ''}".strip()
            raise ConfigError(f"IZZATI_JOB_STORE={self.url!r}: bucket {self.bucket!r}: {reason}") from None
        except (BotoCoreError, JobStoreUnavailable) as exc:  # no credentials, no endpoint, ...
            raise ConfigError(f"IZZATI_JOB_STORE={self.url!r}: {exc}") from None

    def upload(self, key: str, stream: IO[bytes]) -> int:
        """Store what the seekable `stream` holds from its start; its size in bytes."""
        stream.seek(0, os.SEEK_END)
        size = stream.tell()
        stream.seek(0)
        with self._reached():
            if size <= self.part_size:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=stream, ContentLength=size)
            else:
                self._upload_parts(key, stream, size)
        return size

    def _upload_parts(self, key: str, stream: IO[bytes], size: int) -> None:
        """A multipart upload, one part after the other, each read from `stream` as it is sent."""
        upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        try:
            parts = []
            for number, start in enumerate(range(0, size, self.part_size), 1):
                part = _Part(stream, start, min(self.part_size, size - start))
                reply = self.client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload, PartNumber=number, Body=part, ContentLength=part.size
                )
                parts.append({"ETag": reply["ETag"], "PartNumber": number})
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(Exception):  # else its parts stay, unseen, until the job is swept
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload)
            raise

    def put(self, key: str, data: bytes) -> None:
        """Store `data` (a small body: a JSON result)."""
        with self._reached():
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def download(self, key: str, sink: IO[bytes]) -> None:
        """Write the object into `sink`, a chunk at a time."""
        with self._reached():
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            with contextlib.closing(body):
                for chunk in body.iter_chunks(_CHUNK):
                    sink.write(chunk)

    def open(self, key: str) -> ResultStream | None:
        """The object's size and its bytes as they are read (None when there is no such object)."""
        from botocore.exceptions import ClientError

        try:
            with self._reached():
                reply = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        body = reply["Body"]

        def chunks() -> Iterator[bytes]:
            with contextlib.closing(body):  # also when the reader stops early (a client left)
                yield from body.iter_chunks(_CHUNK)

        return ResultStream(int(reply["ContentLength"]), chunks())

    def keys(self, under: str = "") -> list[str]:
        """The keys of every object under this store's prefix + `under`."""
        with self._reached():
            listing = self.client.get_paginator("list_objects_v2")
            pages = listing.paginate(Bucket=self.bucket, Prefix=self.prefix + under)
            return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def delete_job(self, job_id: str) -> int:
        """Delete a job's files, and abort its unfinished multipart uploads; how many objects went."""
        under = self.key(job_id, "")
        with self._reached():
            # a writer killed mid-upload leaves parts that no listing of objects shows
            uploads = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=under).get("Uploads", [])
            for upload in uploads:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            keys = self.keys(f"{job_id}/")
            for start in range(0, len(keys), 1000):  # DeleteObjects takes up to 1000 keys
                batch = [{"Key": key} for key in keys[start : start + 1000]]
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(keys)
