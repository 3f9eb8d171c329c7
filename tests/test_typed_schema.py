"""The schema of a typed callback: /openapi.json describes it exactly and is a valid OpenAPI
document, schemathesis finds no 5xx, and `callback_schema` gives its input and output schemas."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate

from izzati import Backend
from izzati.typed import callback_schema
from tests.callbacks import echo_all, typed

Client = Callable[..., httpx.Client]


def _schema(callback: Callable[..., Any], **options: Any) -> dict[str, Any]:
    return Backend(callback, access_log=False, metrics=False, **options).app.openapi()


def test_every_document_is_valid_openapi() -> None:
    for callback in (typed.predict, typed.image_size, typed.order, typed.tokens, typed.double_batch, echo_all.handle):
        validate(_schema(callback))
        validate(_schema(callback, jobs=True))


def test_the_inputs_are_described_exactly(client_for: Client) -> None:
    document = client_for(Backend(typed.predict, access_log=False).app).get("/openapi.json").json()
    post = document["paths"]["/"]["post"]
    content = post["requestBody"]["content"]
    assert set(content) == {"multipart/form-data", "application/x-www-form-urlencoded", "application/json"}
    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/PredictInputs"}
    inputs = document["components"]["schemas"]["PredictInputs"]
    assert inputs["required"] == ["n"]
    fields = inputs["properties"]
    assert fields["n"]["type"] == "integer"
    assert fields["tags"] == {"default": [], "items": {"type": "string"}, "title": "Tags", "type": "array"}
    assert fields["flag"]["type"] == "boolean" and fields["flag"]["default"] is False
    assert fields["mode"]["enum"] == ["fast", "exact"] and fields["mode"]["default"] == "fast"
    assert fields["ratio"] == {
        "default": 0.5,
        "description": "how much",
        "maximum": 1,
        "minimum": 0,
        "title": "Ratio",
        "type": "number",
    }
    assert fields["limit"]["anyOf"] == [{"type": "integer"}, {"type": "null"}]
    assert document["components"]["schemas"]["Color"]["enum"] == ["red", "blue"]
    responses = post["responses"]
    assert {"200", "400", "401", "413", "415", "422", "500", "503"} <= set(responses)
    assert responses["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/InvalidInput"}
    assert document["components"]["schemas"]["InvalidInput"]["required"] == ["error", "detail", "fields"]


def test_files_are_binary_with_what_they_accept_and_results_and_streams_are_described() -> None:
    files = _schema(typed.image_size)
    inputs = files["components"]["schemas"]["ImageSizeInputs"]
    assert inputs["properties"]["image"]["format"] == "binary"
    assert inputs["properties"]["extra"]["items"]["format"] == "binary"
    multipart = files["paths"]["/"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert multipart["encoding"] == {"image": {"contentType": "image/*, .png"}}
    # files cannot come in a JSON or urlencoded body: those list the other fields only
    assert files["paths"]["/"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"] == {}
    label = _schema(typed.classify)["paths"]["/"]["post"]["responses"]["200"]["content"]["application/json"]
    assert label["schema"]["required"] == ["label", "score"]
    stream = _schema(typed.tokens)["paths"]["/"]["post"]["responses"]["200"]["content"]
    assert set(stream) == {"application/x-ndjson", "text/event-stream"}
    assert stream["text/event-stream"]["x-izzati-item"]["properties"]["index"]["type"] == "integer"


def test_the_job_routes_follow_the_types() -> None:
    document = _schema(typed.classify, jobs=True)
    submit = document["paths"]["/jobs"]["post"]
    assert submit["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ClassifyInputs")
    assert {"202", "422"} <= set(submit["responses"])
    result = document["paths"]["/jobs/{job_id}/result"]["get"]["responses"]["200"]["content"]["application/json"]
    assert result["schema"]["title"] == "Label"


def test_callback_schema_gives_the_input_and_output_schemas() -> None:
    described = callback_schema(typed.classify)
    assert described is not None
    assert described.inputs["properties"]["text"] == {"title": "Text", "type": "string"}
    assert described.inputs["required"] == ["text"]
    assert described.output is not None and described.output["title"] == "Label" and not described.stream
    streamed = callback_schema(typed.tokens)
    assert streamed is not None and streamed.stream
    assert callback_schema(echo_all.handle) is None  # classic: (text, data)
    json.dumps(described.inputs)  # plain JSON, as an MCP tool's inputSchema


def _typed_app() -> Any:
    return Backend(typed.predict, access_log=False, metrics=False).app


schema = schemathesis.openapi.from_asgi("/openapi.json", _typed_app()).include(path="/", method="POST")


@schema.parametrize()
@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_finds_no_server_error_on_a_typed_callback(case: Any) -> None:
    response = case.call()
    assert response.status_code < 500, response.text
    if response.status_code == 422:
        assert {"error", "detail", "fields"} <= set(json.loads(response.text))


def test_the_job_routes_document_the_errors_they_answer(client_for: Client) -> None:
    """Each job route's documented replies are those it gives: izzati's error shape for 404 (and
    409 for a result not ready), not FastAPI's 422 (a job id is any string: never a 422)."""
    gate = threading.Event()

    def waits(n: int) -> int:
        gate.wait(10)
        return n

    client = client_for(Backend(waits, jobs=True, access_log=False, metrics=False).app)
    document = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in json.dumps(document)
    for path, method in [
        ("/jobs/x", "get"),
        ("/jobs/x/events", "get"),
        ("/jobs/x/result", "get"),
        ("/jobs/x", "delete"),
    ]:
        answered = client.request(method.upper(), path)
        assert answered.status_code == 404 and answered.json()["error"] == "not_found"
        responses = document["paths"][path.replace("/x", "/{job_id}")][method]["responses"]
        assert "422" not in responses, path
        assert responses["404"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    job = client.post("/jobs", data={"n": "1"}).json()
    try:
        not_ready = client.get(f"/jobs/{job['id']}/result")
        assert not_ready.status_code == 409 and not_ready.json()["error"] == "not_done"
        assert "409" in document["paths"]["/jobs/{job_id}/result"]["get"]["responses"]
    finally:
        gate.set()
