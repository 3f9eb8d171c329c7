"""Job files in S3-compatible storage (`izzati.jobs.objects`), against a real SeaweedFS."""

from __future__ import annotations

import io
import os
import tempfile
import tracemalloc

import pytest

from izzati.exceptions import ConfigError
from izzati.jobs.objects import ObjectStore, parse_s3_url
from tests.support.net import free_tcp_port
from tests.support.seaweed import SeaweedServer

MiB = 1024 * 1024
JOB = "a" * 32


@pytest.mark.parametrize(
    ("url", "parsed"),
    [("s3://b", ("b", "")), ("s3://b/", ("b", "")), ("s3://b/jobs", ("b", "jobs/")), ("s3://b/x/y/", ("b", "x/y/"))],
)
def test_parse_s3_url(url: str, parsed: tuple[str, str]) -> None:
    assert parse_s3_url(url) == parsed


@pytest.mark.parametrize("url", ["s3://", "http://b/x", "s3://key:secret@b/x", "s3://b:9000/x", "s3://b/x?y=1", "b/x"])
def test_a_wrong_s3_url_names_the_setting(url: str) -> None:
    with pytest.raises(ConfigError, match="IZZATI_JOB_STORE=.*expected s3://bucket/prefix") as caught:
        parse_s3_url(url)
    assert "secret" not in str(caught.value) or "secret@" in url  # echoed only as the user wrote it


def _random_file(size: int) -> tempfile._TemporaryFileWrapper[bytes]:
    source = tempfile.NamedTemporaryFile()  # noqa: SIM115 - closed by the test
    for _ in range(size // MiB):
        source.write(os.urandom(MiB))
    source.seek(0)
    return source


def test_a_large_file_goes_up_in_parts_and_comes_back_in_chunks(object_store: ObjectStore) -> None:
    size = 24 * MiB  # parts of 5 MiB in this fixture
    with _random_file(size) as source:
        tracemalloc.start()
        try:
            assert object_store.upload(object_store.key(JOB, "in-0"), source) == size
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < size / 2  # a few parts at a time, never the whole file
        head = object_store.client.head_object(Bucket=object_store.bucket, Key=object_store.key(JOB, "in-0"))
        assert head["ContentLength"] == size and head["ETag"].strip('"').endswith("-5")  # a multipart upload
        stream = object_store.open(object_store.key(JOB, "in-0"))
        assert stream is not None and stream.size == size
        source.seek(0)
        for chunk in stream.chunks:
            assert len(chunk) <= MiB and chunk == source.read(len(chunk))
        assert source.read() == b""


def test_small_bodies_download_and_missing_objects(object_store: ObjectStore) -> None:
    object_store.put(object_store.key(JOB, "result"), b'{"a": 1}')
    sink = io.BytesIO()
    object_store.download(object_store.key(JOB, "result"), sink)
    assert sink.getvalue() == b'{"a": 1}'
    assert object_store.open(object_store.key(JOB, "nothing")) is None
    assert object_store.keys() == [f"jobs/{JOB}/result"]


def test_deleting_a_job_takes_its_objects_and_unfinished_uploads(
    object_store: ObjectStore, seaweed: SeaweedServer, bucket: str
) -> None:
    other = "b" * 32
    for name in ("in-0", "in-1", "result"):
        object_store.put(object_store.key(JOB, name), b"x")
    object_store.put(object_store.key(other, "in-0"), b"y")
    client = object_store.client
    # a worker killed in the middle of a multipart upload leaves this behind
    upload = client.create_multipart_upload(Bucket=bucket, Key=object_store.key(JOB, "result2"))
    client.upload_part(
        Bucket=bucket, Key=object_store.key(JOB, "result2"), UploadId=upload["UploadId"], PartNumber=1, Body=b"z"
    )
    assert seaweed.count(bucket, f"jobs/{JOB}/") >= 4
    assert object_store.delete_job(JOB) == 3
    assert seaweed.count(bucket, f"jobs/{JOB}/") == 0
    assert object_store.keys() == [f"jobs/{other}/in-0"]  # another job's files stay


def test_the_check_names_the_setting_and_the_reason(seaweed: SeaweedServer, bucket: str) -> None:
    ObjectStore(f"s3://{bucket}/jobs", client=seaweed.client()).check()
    with pytest.raises(ConfigError, match=r"IZZATI_JOB_STORE='s3://no-such-bucket/jobs': bucket 'no-such-bucket'"):
        ObjectStore("s3://no-such-bucket/jobs", client=seaweed.client()).check()
    with pytest.raises(ConfigError, match=r"IZZATI_JOB_STORE=.*bucket .*(403|Forbidden|Signature)") as caught:
        ObjectStore(f"s3://{bucket}/jobs", client=seaweed.client(secret="wrong")).check()
    assert "wrong" not in str(caught.value)


def test_endpoint_and_credentials_come_from_the_aws_variables(
    seaweed: SeaweedServer, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    store = ObjectStore(f"s3://{bucket}/env")
    store.check()
    store.put(store.key(JOB, "result"), b"from the environment")
    assert seaweed.count(bucket, "env/") == 1
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_tcp_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # boto3 reads this one too: fail at the first refusal
    with pytest.raises(ConfigError, match="IZZATI_JOB_STORE=.*(Could not connect|unreachable)"):
        ObjectStore(f"s3://{bucket}/env").check()


@pytest.mark.parametrize(
    ("env", "region"),
    [
        ({"AWS_REGION": "eu-west-3"}, "eu-west-3"),  # what the AWS CLI v2 and the other SDKs read
        ({"AWS_DEFAULT_REGION": "ap-south-1", "AWS_REGION": "eu-west-3"}, "ap-south-1"),  # boto3's own wins
    ],
)
def test_the_region_comes_from_aws_region_too(
    env: dict[str, str], region: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    store = ObjectStore("s3://bucket/jobs")
    assert store.client.meta.region_name == region
