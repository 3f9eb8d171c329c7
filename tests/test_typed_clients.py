"""A typed callback answers the original clients when their field names match its parameters:
the 1.2.3 Frontend, and the Android, iOS, React Native and ESP8266 request shapes, byte for byte."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from izzati import Backend
from tests.callbacks import typed
from tests.test_client import _load_original
from tests.test_inputs import _check_reply, raw_request

Serve = Callable[..., str]


def _serve(serve: Serve, callback: Callable[..., object]) -> str:
    return serve(Backend(callback, access_log=False, metrics=False).app)


def test_the_original_frontend(serve: Serve, tmp_path: Path) -> None:
    original = _load_original()
    url = _serve(serve, typed.uploaded)
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8jpeg")
    with open(path, "rb") as f:
        reply = original.Frontend(url).send(js={"name": "old client", "count": "2"}, f=f)
    assert reply == {"name": "old client", "user": "", "count": 2, "file": ["photo.jpg", 6]}
    # without its file: the 422 comes back to the old client as the JSON it returns
    missing = original.Frontend(url).send(js={"name": "no file"})
    assert missing["error"] == "invalid_input" and missing["fields"][0]["loc"] == ["file"]


def test_esp8266_form_post(serve: Serve) -> None:
    url = _serve(serve, typed.sensor)
    request = (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: ESP8266HTTPClient\r\nConnection: close\r\n"
        b"Accept-Encoding: identity;q=1,chunked;q=0.1,*;q=0\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 28\r\n\r\n"
        b"temperature=21.5&humidity=40"
    )
    reply = _check_reply(*raw_request(url, request))
    assert reply == {"temperature": 21.5, "humidity": 40, "types": ["float", "int"]}


def test_android_multipart_entity(serve: Serve) -> None:
    url = _serve(serve, typed.uploaded)
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
    assert reply == {"name": "android", "user": "", "count": 0, "file": ["IMG_0001.jpg", 12]}


def test_ios_json_part(serve: Serve) -> None:
    url = _serve(serve, typed.uploaded)
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
    assert reply == {"name": "", "user": "ios", "count": 3, "file": ["image.jpg", 7]}


def test_react_native_formdata(serve: Serve) -> None:
    url = _serve(serve, typed.uploads)
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
    assert reply == {"name": "react", "files": ["photo.jpg", "second.jpg"]}
