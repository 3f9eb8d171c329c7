"""Wire parsing: every encoding the clients use becomes `text` and `data`, and bad bodies get 4xx."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from izzati import Backend, Limits
from tests.callbacks import echo_all

Client = Callable[..., httpx.Client]


@pytest.fixture
def client(client_for: Client) -> httpx.Client:
    return client_for(Backend(echo_all.handle).app)


def raw_request(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `request` byte for byte over a socket, as a device client does; parse the reply."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        reply = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
            head, sep, body = reply.partition(b"\r\n\r\n")
            if sep:
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in head.decode("latin-1").split("\r\n")[1:])
                }
                if len(body) >= int(headers.get("content-length", "-1")) >= 0:
                    break
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def test_urlencoded_single_and_repeated_keys(client: httpx.Client) -> None:
    r = client.post(
        "/",
        content=b"name=alice&n=1&tag=a&tag=b&tag=c&empty=",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"text": {"name": "alice", "n": "1", "tag": ["a", "b", "c"], "empty": ""}, "files": []}


def test_urlencoded_unicode_and_plus(client: httpx.Client) -> None:
    r = client.post("/", data={"greeting": "héllo wörld ✓", "sum": "1+1"})
    assert r.json()["text"] == {"greeting": "héllo wörld ✓", "sum": "1+1"}


def test_urlencoded_raw_utf8_like_curl_d(client: httpx.Client) -> None:
    # `curl -d 'name=héllo'` sends the UTF-8 bytes unescaped
    body = "name=héllo&other=h%C3%A9&sp=a+b".encode()
    r = client.post("/", content=body, headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.json()["text"] == {"name": "héllo", "other": "hé", "sp": "a b"}


def test_urlencoded_invalid_utf8_is_400(client: httpx.Client) -> None:
    r = client.post("/", content=b"name=%ff%fe", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400
    assert r.json()["error"] == "bad_request"


def test_empty_post_without_content_type_has_no_fields(client: httpx.Client) -> None:
    # what the original Frontend().send() sends with nothing
    r = client.post("/")
    assert r.status_code == 200
    assert r.json() == {"text": {}, "files": []}


def test_empty_body_with_any_content_type_has_no_fields(client: httpx.Client) -> None:
    for content_type in ("application/json", "application/x-www-form-urlencoded", "text/plain"):
        r = client.post("/", content=b"", headers={"content-type": content_type})
        assert r.status_code == 200, content_type
        assert r.json()["text"] == {}


def test_json_object_body(client: httpx.Client) -> None:
    r = client.post("/", json={"name": "bob", "n": 2, "nested": {"a": [1, 2]}})
    assert r.json()["text"] == {"name": "bob", "n": 2, "nested": {"a": [1, 2]}}


def test_json_numbers_arrive_as_the_json_module_reads_them(client: httpx.Client) -> None:
    # a large numeric body takes a faster decoder: every number must still be what json.loads makes of it
    features = [round((i * 0.6180339887) % 2 - 1, 4) for i in range(4096)]
    body = {"x": features, "big": 123456789012345678901234567890, "neg": -9876543210987654321, "tiny": 5e-324}
    raw = json.dumps(body).encode()
    r = client.post("/", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 200
    assert r.json()["text"] == json.loads(raw)
    assert type(r.json()["text"]["big"]) is int


def test_json_with_charset_and_suffix(client: httpx.Client) -> None:
    r = client.post("/", content=b'{"a": "b"}', headers={"content-type": "application/json; charset=utf-8"})
    assert r.json()["text"] == {"a": "b"}
    r = client.post("/", content=b'{"a": "c"}', headers={"content-type": "application/vnd.api+json"})
    assert r.json()["text"] == {"a": "c"}


@pytest.mark.parametrize("body", [b"{bad", b"[1, 2]", b'"str"', b"\xff\xfe", b"[" * 100000])
def test_malformed_or_non_object_json_is_400(client: httpx.Client, body: bytes) -> None:
    r = client.post("/", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/json"
    assert set(r.json()) == {"error", "detail"}


def test_json_escaped_lone_surrogate_is_400_but_pairs_are_text(client: httpx.Client) -> None:
    r = client.post("/", content=b'{"x": "\\ud800"}', headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert "surrogate" in r.json()["detail"]
    r = client.post("/", content=b'{"x": "\\ud83d\\ude00"}', headers={"content-type": "application/json"})
    assert r.json()["text"] == {"x": "\U0001f600"}


def test_unreadable_media_type_is_415(client: httpx.Client) -> None:
    r = client.post("/", content=b"hello", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    assert r.json()["error"] == "unsupported_media_type"
    r = client.post("/", content=b"hello")
    assert r.status_code == 415


def test_multipart_files_in_order_with_fields(client: httpx.Client) -> None:
    files = [
        ("file", ("a.txt", b"first", "text/plain")),
        ("file", ("b.bin", b"\x00\x01second", "application/octet-stream")),
        ("file", ("c.png", b"third", "image/png")),
    ]
    r = client.post("/", data={"name": "carol", "tag": ["x", "y"]}, files=files)
    body = r.json()
    assert body["text"] == {"name": "carol", "tag": ["x", "y"]}
    assert [f["filename"] for f in body["files"]] == ["a.txt", "b.bin", "c.png"]
    assert [f["size"] for f in body["files"]] == [5, 8, 5]
    assert [f["content_type"] for f in body["files"]] == ["text/plain", "application/octet-stream", "image/png"]


def test_multipart_any_field_name_with_filename_is_a_file(client: httpx.Client) -> None:
    r = client.post("/", files=[("photo", ("p.jpg", b"jpg", "image/jpeg")), ("file", ("f.txt", b"t"))])
    files = r.json()["files"]
    assert [(f["name"], f["filename"]) for f in files] == [("photo", "p.jpg"), ("file", "f.txt")]


def test_multipart_json_field_is_merged(client: httpx.Client) -> None:
    r = client.post(
        "/", data={"json": json.dumps({"user": "dan", "age": 30}), "other": "1"}, files=[("file", ("x", b"1"))]
    )
    assert r.json()["text"] == {"user": "dan", "age": 30, "other": "1"}


def test_multipart_json_field_that_is_not_an_object_stays_text(client: httpx.Client) -> None:
    r = client.post("/", data={"json": "not json"}, files=[("file", ("x", b"1"))])
    assert r.json()["text"] == {"json": "not json"}


def test_multipart_without_boundary_is_400(client: httpx.Client) -> None:
    r = client.post("/", content=b"--x\r\n", headers={"content-type": "multipart/form-data"})
    assert r.status_code == 400


def test_truncated_multipart_is_400(client: httpx.Client) -> None:
    body = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhalf a fi'
    r = client.post("/", content=body, headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert r.status_code == 400
    assert "closing boundary" in r.json()["detail"]


def test_garbage_multipart_is_400(client: httpx.Client) -> None:
    r = client.post(
        "/", content=b"this is not multipart at all", headers={"content-type": "multipart/form-data; boundary=xyz"}
    )
    assert r.status_code == 400


def test_a_part_with_two_dispositions_is_a_json_400(client: httpx.Client) -> None:
    # python-multipart reads the last, other parsers (a proxy's) the first: which field is it?
    body = (
        b'--b\r\nContent-Disposition: form-data; name="role"\r\n'
        b'content-disposition: form-data; name="admin"\r\n\r\nyes\r\n--b--\r\n'
    )
    r = client.post("/", content=body, headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 400
    assert r.json() == {"error": "bad_request", "detail": "a multipart part has two Content-Disposition headers"}


def test_browser_empty_file_input_is_not_a_file(client: httpx.Client) -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename=""\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n\r\n"
        b'--b\r\nContent-Disposition: form-data; name="k"\r\n\r\nv\r\n--b--\r\n'
    )
    r = client.post("/", content=body, headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.json() == {"text": {"k": "v"}, "files": []}


def test_body_over_limit_is_413_before_reading(client_for: Client) -> None:
    client = client_for(Backend(echo_all.handle, max_body_bytes=1000).app)
    r = client.post("/", data={"a": "x" * 2000})
    assert r.status_code == 413
    assert r.json()["error"] == "payload_too_large"
    # chunked: no Content-Length, so the limit is enforced while streaming
    r = client.post(
        "/",
        content=iter([b"a=" + b"x" * 600, b"y" * 600]),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413
    assert client.post("/", data={"a": "small"}).json()["text"] == {"a": "small"}


def test_field_and_count_limits(client_for: Client) -> None:
    limits = Limits(max_files=2, max_fields=3, max_field_bytes=10)
    client = client_for(Backend(echo_all.handle, limits=limits).app)
    assert client.post("/", files=[("file", ("a", b"1"))] * 3).status_code == 413
    assert client.post("/", data={"a": "1", "b": "2", "c": "3", "d": "4"}).status_code == 413
    assert client.post("/", data={"a": "1" * 11}, files=[("file", ("a", b"1"))]).status_code == 413
    assert client.post("/", data={"a": "1" * 10}, files=[("file", ("a", b"1"))] * 2).status_code == 200


# -- byte-for-byte requests of the original clients -------------------------------------------


def _check_reply(status: int, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    result: dict[str, Any] = json.loads(body)
    return result


def test_esp8266_http_client_form_post(serve: Callable[..., str]) -> None:
    # ESP8266HTTPClient: http.addHeader("Content-Type", "application/x-www-form-urlencoded");
    # http.POST("temperature=21.5&humidity=40") — HTTP/1.1, Connection: close, no User-Agent quirks
    url = serve(Backend(echo_all.handle).app)
    request = (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: ESP8266HTTPClient\r\nConnection: close\r\n"
        b"Accept-Encoding: identity;q=1,chunked;q=0.1,*;q=0\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 28\r\n\r\n"
        b"temperature=21.5&humidity=40"
    )
    reply = _check_reply(*raw_request(url, request))
    assert reply["text"] == {"temperature": "21.5", "humidity": "40"}


def test_esp8266_http10_without_content_type(serve: Callable[..., str]) -> None:
    url = serve(Backend(echo_all.handle).app)
    request = b"POST / HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
    assert _check_reply(*raw_request(url, request))["text"] == {}


def test_android_multipart_entity(serve: Callable[..., str]) -> None:
    # Apache HttpMime MultipartEntityBuilder (Android): per-part Content-Type and
    # Content-Transfer-Encoding headers, a long dashed boundary
    url = serve(Backend(echo_all.handle).app)
    boundary = b"-------------HV2ymHFg03ehbqgZCaKO6jyH"
    body = (
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="name"\r\n'
        b"Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        b"android\r\n"
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="IMG_0001.jpg"\r\n'
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        b"\xff\xd8\xff\xe0JPEGDATA\r\n"
        b"--" + boundary + b"--\r\n"
    )
    request = (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Keep-Alive\r\n"
        b"User-Agent: Apache-HttpClient/UNAVAILABLE (java 1.4)\r\n"
        b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    reply = _check_reply(*raw_request(url, request))
    assert reply["text"] == {"name": "android"}
    assert [(f["filename"], f["size"]) for f in reply["files"]] == [("IMG_0001.jpg", 12)]


def test_ios_multipart_with_json_field(serve: Callable[..., str]) -> None:
    # the iOS client: its fields as one JSON object in a part named "json", then the image
    url = serve(Backend(echo_all.handle).app)
    boundary = b"Boundary-7C1A2E4B-6C2D-4F55-9A7E-3B1B8F3D1E29"
    body = (
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="json"\r\n\r\n'
        b'{"user":"ios","count":3}\r\n'
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="image.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n"
        b"\xff\xd8\xff\xdbIMG\r\n"
        b"--" + boundary + b"--\r\n"
    )
    request = (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1:5020\r\nAccept: */*\r\nAccept-Language: en-us\r\n"
        b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n"
        b"User-Agent: izzati-ios/1 CFNetwork/808.3 Darwin/16.3.0\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    reply = _check_reply(*raw_request(url, request))
    assert reply["text"] == {"user": "ios", "count": 3}
    assert [(f["filename"], f["content_type"], f["size"]) for f in reply["files"]] == [("image.jpg", "image/jpeg", 7)]


def test_react_native_formdata(serve: Callable[..., str]) -> None:
    # React Native's FormData: Content-Length per part, WebKit-style boundary
    url = serve(Backend(echo_all.handle).app)
    boundary = b"----WebKitFormBoundaryaBcDeFgHiJkLmNoP"
    body = (
        b"--" + boundary + b"\r\n"
        b'content-disposition: form-data; name="name"\r\n\r\nreact\r\n'
        b"--" + boundary + b"\r\n"
        b'content-disposition: form-data; name="file"; filename="photo.jpg"\r\n'
        b"content-type: image/jpeg\r\ncontent-length: 4\r\n\r\nJPEG\r\n"
        b"--" + boundary + b"\r\n"
        b'content-disposition: form-data; name="file"; filename="second.jpg"\r\n'
        b"content-type: image/jpeg\r\ncontent-length: 3\r\n\r\nJPG\r\n"
        b"--" + boundary + b"--\r\n"
    )
    request = (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\naccept: application/json\r\n"
        b"content-type: multipart/form-data; boundary=" + boundary + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    reply = _check_reply(*raw_request(url, request))
    assert reply["text"] == {"name": "react"}
    assert [f["filename"] for f in reply["files"]] == ["photo.jpg", "second.jpg"]


def test_python_requests_multipart_without_part_content_type(serve: Callable[..., str]) -> None:
    # the original Frontend (requests): file parts carry no Content-Type header
    url = serve(Backend(echo_all.handle).app)
    boundary = b"c3f1b5b6d0a84f0e9a1f1d3c2b4a5e6f"
    body = (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="name"\r\n\r\nfrank\r\n'
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="notes.txt"\r\n\r\nhello\r\n'
        b"--" + boundary + b"--\r\n"
    )
    request = (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: python-requests/2.18.4\r\n"
        b"Accept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: keep-alive\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n\r\n" + body
    )
    reply = _check_reply(*raw_request(url, request))
    assert reply["text"] == {"name": "frank"}
    assert reply["files"][0]["filename"] == "notes.txt"
    assert reply["files"][0]["content_type"] == "application/octet-stream"


def test_text_limits_apply_to_json_and_form_bodies(client_for: Client) -> None:
    limits = Limits(max_fields=5, max_field_bytes=100, max_text_bytes=1000)
    client = client_for(Backend(echo_all.handle, limits=limits).app)
    assert client.post("/", data={"a": "x" * 101}).status_code == 413
    assert client.post("/", json={"a": "x" * 101}).status_code == 413
    assert client.post("/", json={str(i): i for i in range(6)}).status_code == 413
    r = client.post("/", content=b'{"a": "' + b"x" * 2000 + b'"}', headers={"content-type": "application/json"})
    assert (r.status_code, r.json()["error"]) == (413, "payload_too_large")
    fields = {f"k{i}": "y" * 90 for i in range(5)}  # 5 fine fields, but 450 bytes of text
    assert client.post("/", data=fields, files={"file": ("f", b"1")}).status_code == 200
    small = Limits(max_text_bytes=300)
    assert (
        client_for(Backend(echo_all.handle, limits=small).app)
        .post("/", data=fields, files={"file": ("f", b"1")})
        .status_code
        == 413
    )
    assert client.post("/", json={"a": "x" * 100, "b": [1, 2]}).status_code == 200


@pytest.mark.parametrize("body", [b'{"a": NaN}', b'{"a": -Infinity}', b'{"a": Infinity}'])
def test_nan_and_infinity_are_not_json(client: httpx.Client, body: bytes) -> None:
    r = client.post("/", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert "not JSON" in r.json()["detail"]


def test_overlong_multipart_boundary_is_400(client: httpx.Client) -> None:
    boundary = "b" * 1000
    body = f'--{boundary}\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--{boundary}--\r\n'.encode()
    r = client.post("/", content=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 400
    assert r.json()["error"] == "bad_request"


def test_multipart_json_field_with_a_lone_surrogate_is_400(client: httpx.Client) -> None:
    # the iOS client's `json` part: an escaped lone surrogate parses, but is no text
    r = client.post("/", data={"json": '{"k": "\\ud800"}'}, files=[("file", ("x", b"1"))])
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/json"
    assert "surrogate" in r.json()["detail"]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json; charset=utf-7", b'{"k": "+2AA-"}'),  # UTF-7 for a lone U+D800
        ("application/json; charset=unicode_escape", b'{"k": "\\ud800"}'),
        ("application/json; charset=punycode", b'{"k": "v"}'),
        ("application/json; charset=base64", b"eyJrIjogInYifQ=="),  # not a text encoding
        ("application/x-www-form-urlencoded; charset=utf-7", b"k=+2AA-"),
        ("application/x-www-form-urlencoded; charset=unicode_escape", b"k=\\ud800"),
        ("application/x-www-form-urlencoded; charset=punycode", b"k=v"),
    ],
)
def test_text_in_a_client_chosen_charset_is_valid_unicode_or_400(
    client: httpx.Client, content_type: str, body: bytes
) -> None:
    r = client.post("/", content=body, headers={"content-type": content_type})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"] == "bad_request"


def test_other_charsets_still_work(client: httpx.Client) -> None:
    r = client.post(
        "/",
        content="k=é".encode("latin-1"),
        headers={"content-type": "application/x-www-form-urlencoded; charset=latin-1"},
    )
    assert r.json()["text"] == {"k": "é"}
    r = client.post(
        "/", content='{"k": "é"}'.encode("utf-16"), headers={"content-type": "application/json; charset=utf-16"}
    )
    assert r.json()["text"] == {"k": "é"}
