"""Typed callbacks: the parameters are the inputs, validated from every wire form (422 listing
every problem, the callback not called), and the classic `(text, data)` callbacks unchanged."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

import httpx
import pytest

from izzati import Backend
from izzati.invoker import Invoker
from tests.callbacks import echo_all, typed

Client = Callable[..., httpx.Client]


@pytest.fixture
def predict(client_for: Client) -> httpx.Client:
    return client_for(Backend(typed.predict, access_log=False, metrics=False).app)


def test_form_strings_are_coerced_as_fastapi_does(predict: httpx.Client) -> None:
    reply = predict.post("/", data={"n": "3", "tags": ["a", "b"], "flag": "true", "color": "blue", "limit": ""})
    assert reply.status_code == 200, reply.text
    got = reply.json()
    assert got["n"] == [3, "int"]
    assert got["tags"] == [["a", "b"], "list"]
    assert got["flag"] == [True, "bool"]
    assert got["color"] == ["blue", "Color"]
    assert got["limit"] == [None, "NoneType"]  # an empty form field is a field not sent
    assert got["ratio"] == [0.5, "float"] and got["mode"] == ["fast", "str"]  # defaults


def test_one_value_of_a_list_field_is_a_list_of_one(predict: httpx.Client) -> None:
    assert predict.post("/", data={"n": "1", "tags": "solo"}).json()["tags"] == [["solo"], "list"]


def test_the_same_inputs_from_urlencoded_multipart_json_and_the_json_part(predict: httpx.Client) -> None:
    fields = {"n": "7", "mode": "exact", "ratio": "0.25"}
    as_form = predict.post("/", data=fields).json()
    as_multipart = predict.post("/", data=fields, files={"unrelated": ("a.txt", b"x")}).json()
    as_json = predict.post("/", json={"n": 7, "mode": "exact", "ratio": 0.25}).json()
    # the iOS client: its fields as one JSON object in a multipart part named "json"
    as_part = predict.post("/", files={"json": (None, json.dumps({"n": 7, "mode": "exact", "ratio": 0.25}))}).json()
    assert as_form == as_multipart == as_json == as_part
    assert as_json["n"] == [7, "int"] and as_json["ratio"] == [0.25, "float"]


def test_every_problem_is_listed_in_one_422_and_the_callback_is_not_called(client_for: Client) -> None:
    calls: list[int] = []

    def counted(n: int, mode: Literal["a", "b"] = "a", ratio: float = 0.5) -> int:
        calls.append(n)
        return n

    client = client_for(Backend(counted, access_log=False, metrics=False).app)
    reply = client.post("/", data={"n": "x", "mode": "c", "ratio": "high"})
    assert reply.status_code == 422
    body = reply.json()
    assert body["error"] == "invalid_input"
    assert body["detail"].startswith("3 inputs are not valid: n: ")
    assert [(each["loc"], each["type"]) for each in body["fields"]] == [
        (["n"], "int_parsing"),
        (["mode"], "literal_error"),
        (["ratio"], "float_parsing"),
    ]
    assert all(each["msg"] for each in body["fields"])
    missing = client.post("/", json={}).json()
    assert missing["fields"] == [{"loc": ["n"], "msg": "Field required", "type": "missing"}]
    assert calls == []


def test_json_values_are_validated_as_given(predict: httpx.Client) -> None:
    reply = predict.post("/", json={"n": 2, "tags": "not a list", "ratio": 1.5})
    assert reply.status_code == 422
    assert [each["loc"] for each in reply.json()["fields"]] == [["tags"], ["ratio"]]


def test_extra_fields_are_ignored_unless_the_model_forbids_them(predict: httpx.Client, client_for: Client) -> None:
    assert predict.post("/", data={"n": "1", "other": "x"}).status_code == 200
    order = client_for(Backend(typed.order, access_log=False, metrics=False).app)
    assert order.post("/", json={"item": "pen", "qty": 2}).json() == {"item": "PEN", "qty": 4}
    assert order.post("/", data={"item": "pen", "qty": "2"}).json() == {"item": "PEN", "qty": 4}
    refused = order.post("/", json={"item": "pen", "qty": 0, "colour": "red"})
    assert refused.status_code == 422
    assert [(f["loc"], f["type"]) for f in refused.json()["fields"]] == [
        (["qty"], "greater_than_equal"),
        (["colour"], "extra_forbidden"),
    ]


def test_files_by_name_with_their_types_and_sizes_checked(client_for: Client) -> None:
    client = client_for(Backend(typed.image_size, access_log=False, metrics=False).app)
    files = [
        ("image", ("cat.jpg", b"\xff\xd8jpeg", "image/jpeg")),
        ("extra", ("a.txt", b"a", "text/plain")),
        ("extra", ("b.txt", b"b", "text/plain")),
        ("note", ("n.txt", b"hello", "text/plain")),
    ]
    assert client.post("/", files=files).json() == {
        "image": ["cat.jpg", 6],
        "extra": ["a.txt", "b.txt"],
        "note": "hello",
    }
    by_name = client.post("/", files={"image": ("shot.png", b"png", "application/octet-stream")})
    assert by_name.json() == {"image": ["shot.png", 3], "extra": [], "note": None}  # accepted by its ending
    wrong = client.post("/", files={"image": ("a.pdf", b"%PDF" * 40, "application/pdf")})
    assert wrong.status_code == 422
    assert wrong.json()["fields"] == [
        {"loc": ["image"], "msg": "the file 'a.pdf' is application/pdf; accepted: image/*, .png", "type": "file_type"}
    ]
    big = client.post("/", files={"image": ("big.png", b"x" * 101, "image/png")})
    assert big.json()["fields"][0]["type"] == "file_too_large"
    assert "101 bytes; at most 100" in big.json()["detail"]
    text_for_file = client.post("/", data={"image": "not a file"})
    assert text_for_file.json()["fields"][0]["type"] == "file_expected"


def test_a_parameter_named_text_alone_is_typed_and_the_classic_pair_is_not(client_for: Client) -> None:
    assert Invoker(typed.classify).typed is not None
    assert Invoker(echo_all.handle).typed is None

    def annotated_classic(text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
        return text

    assert Invoker(annotated_classic).typed is None
    client = client_for(Backend(typed.classify, access_log=False, metrics=False).app)
    assert client.post("/", data={"text": "cat", "top": "2"}).json() == {"label": "CA", "score": 0.5}


def test_a_typed_callback_takes_the_queue_as_q(client_for: Client) -> None:
    backend = Backend(typed.with_queue, queue="memory://", access_log=False, metrics=False)
    client = client_for(backend.app)
    assert client.post("/", data={"n": "4"}).json() == {"queued": 4}
    assert backend.q is not None and backend.q.get(timeout=5) == {"n": 4}
