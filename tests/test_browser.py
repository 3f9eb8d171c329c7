"""The try-it page and izzati.js in a real browser: Debian's Chromium, headless, via Playwright."""

from __future__ import annotations

import json
import os
import struct
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response, expect, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import HTMLResponse
from starlette.routing import Route

from izzati import Backend, ChatRequest, file_return
from izzati.chat import Message

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
Serve = Callable[..., str]


def png(width: int, height: int) -> bytes:
    """A small RGB gradient as PNG bytes (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(
        b"\x00" + bytes(c for x in range(width) for c in (x * 255 // width, y * 255 // height, 170))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def handle(text: dict[str, Any], data: list[Any]) -> dict[str, Any]:
    """Echo the text fields and each file's name, size and content."""
    return {
        "text": text,
        "files": [{"name": f.filename, "size": f.size, "content": f.read().decode("utf-8", "replace")} for f in data],
    }


# ----------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless; a missing binary fails the tests (it never skips them)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium; run scripts/browser-setup "
            "(as root: apt-get install chromium). Playwright's own browser download is not used.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where this run's screenshots go (one PNG per step, named after the step)."""
    return tmp_path_factory.mktemp("screenshots")


class Watched:
    """A browser page that records console errors, page errors, failed requests and HTTP errors."""

    def __init__(self, page: Page, shots: Path) -> None:
        self.page = page
        self.shots = shots
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        page.set_default_timeout(15_000)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(f"console {message.type}: {message.text}")

    def _failed(self, request: Request) -> None:
        self.errors.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.errors.append(f"HTTP {response.status}: {response.request.method} {response.url}")

    def shot(self, name: str) -> Path:
        """Save a full-page screenshot of the current state."""
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def reply_json(self) -> Any:
        """The JSON reply the page shows, parsed."""
        self.page.locator("#json").wait_for(state="visible")
        return json.loads(self.page.locator("#json").inner_text())


@pytest.fixture
def open_page(browser: Browser, screenshots: Path) -> Iterator[Callable[[str], Watched]]:
    """Factory: `open_page(url)` opens a fresh browser context on `url` and watches it."""
    contexts = []

    def start(url: str) -> Watched:
        context = browser.new_context(viewport={"width": 900, "height": 900}, accept_downloads=True)
        contexts.append(context)
        watched = Watched(context.new_page(), screenshots)
        watched.page.goto(url)
        watched.page.wait_for_load_state("load")
        return watched

    yield start
    for context in contexts:
        context.close()


def send(watched: Watched, fields: Sequence[tuple[str, str]] = (), files: list[Any] | None = None) -> None:
    """Fill the page's form like a user and press Send."""
    page = watched.page
    for index, (key, value) in enumerate(fields):
        if index:
            page.click("#add-field")
        row = page.locator("#fields .field").nth(index)
        row.locator(".key").fill(key)
        row.locator(".value").fill(value)
    if files:
        page.set_input_files("#files", files)
    page.click("#send")
    page.locator("#status").wait_for(state="visible")
    page.wait_for_function("!document.getElementById('send').disabled")


# -------------------------------------------------------------------------------------- the page


def test_page_loads_without_console_errors(serve: Serve, open_page: Callable[[str], Watched]) -> None:
    url = serve(Backend(handle, title="Photo tagger").app)
    watched = open_page(url + "/")
    page = watched.page
    assert page.title() == "Photo tagger · try it"
    assert page.locator("h1").inner_text() == "Photo tagger"
    assert f"{__name__}:handle" in page.locator("#summary").inner_text()
    assert page.locator("nav a", has_text="API docs").get_attribute("href") == "/docs"
    assert page.evaluate("typeof Izzati") == "function"
    assert page.locator("#fields .field").count() == 1
    page.click("#add-field")
    assert page.locator("#fields .field").count() == 2
    page.locator("#fields .field .remove").nth(1).click()
    assert page.locator("#fields .field").count() == 1
    watched.shot("page-loaded")
    assert watched.errors == []


def test_text_and_files_round_trip(serve: Serve, open_page: Callable[[str], Watched], tmp_path: Path) -> None:
    url = serve(Backend(handle).app)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello from the browser\n")
    table = tmp_path / "data.csv"
    table.write_text("a,b\n1,2\n")
    watched = open_page(url + "/")
    send(
        watched,
        [("name", "alice"), ("tag", "cat"), ("tag", "sofa")],
        [str(notes), str(table)],
    )
    assert watched.reply_json() == {
        "text": {"name": "alice", "tag": ["cat", "sofa"]},
        "files": [
            {"name": "notes.txt", "size": 23, "content": "hello from the browser\n"},
            {"name": "data.csv", "size": 8, "content": "a,b\n1,2\n"},
        ],
    }
    assert watched.page.locator("#status").inner_text().startswith("HTTP 200")
    assert "izzati send" in watched.page.locator("#command").inner_text()
    watched.shot("round-trip")
    assert watched.errors == []


def test_returned_image_is_displayed(serve: Serve, open_page: Callable[[str], Watched], tmp_path: Path) -> None:
    image = tmp_path / "gradient.png"
    image.write_bytes(png(96, 64))

    def callback(text: dict[str, Any], data: list[Any]) -> Any:
        return file_return(str(image))

    watched = open_page(serve(Backend(callback).app) + "/")
    send(watched, [("size", "small")])
    img = watched.page.locator("#image")
    img.wait_for(state="visible")
    watched.page.wait_for_function("document.getElementById('image').complete")
    assert img.evaluate("el => [el.naturalWidth, el.naturalHeight]") == [96, 64]
    assert watched.page.locator("#download").inner_text() == "Download gradient.png"
    watched.shot("image-reply")
    assert watched.errors == []


def test_returned_file_downloads_with_its_name(
    serve: Serve, open_page: Callable[[str], Watched], tmp_path: Path
) -> None:
    report = tmp_path / "report.csv"
    report.write_text("id,score\n1,0.5\n")

    def callback(text: dict[str, Any], data: list[Any]) -> Any:
        return file_return(str(report), filename=f"report-{text['id']}.csv")

    watched = open_page(serve(Backend(callback).app) + "/")
    send(watched, [("id", "42")])
    page = watched.page
    page.locator("#download").wait_for(state="visible")
    assert page.locator("#image-box").is_hidden()
    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    assert download.suggested_filename == "report-42.csv"
    assert Path(download.path()).read_text() == "id,score\n1,0.5\n"
    watched.shot("file-reply")
    assert watched.errors == []


def test_error_reply_is_shown(serve: Serve, open_page: Callable[[str], Watched]) -> None:
    def callback(text: dict[str, Any], data: list[Any]) -> Any:
        raise RuntimeError("boom")

    watched = open_page(serve(Backend(callback).app) + "/")
    send(watched, [("a", "1")])
    assert watched.page.locator("#status").inner_text().startswith("Error: HTTP 500")
    assert watched.page.locator("#status").evaluate("el => el.className") == "error"
    assert watched.reply_json()["error"] == "callback_failed"
    watched.shot("error-reply")
    # the browser itself logs the 500 of the fetch; nothing else may go wrong
    assert [e for e in watched.errors if "500" not in e] == []


def test_api_key_field(serve: Serve, open_page: Callable[[str], Watched]) -> None:
    watched = open_page(serve(Backend(handle, api_key="s3cret").app) + "/")
    page = watched.page
    send(watched, [("a", "1")])
    assert page.locator("#status").inner_text().startswith("Error: HTTP 401")
    assert "needs an API key" in page.locator("#hint-401").inner_text()
    assert watched.reply_json()["error"] == "unauthorized"
    watched.shot("api-key-missing")
    page.fill("#api-key", "wrong")
    page.click("#send")
    page.locator("#hint-401", has_text="refused this API key").wait_for()
    page.fill("#api-key", "s3cret")
    page.click("#send")
    page.locator("#status", has_text="HTTP 200").wait_for()
    assert watched.reply_json() == {"text": {"a": "1"}, "files": []}
    assert [e for e in watched.errors if "401" not in e] == []


# ------------------------------------------------------------------------------ izzati.js elsewhere


def origin_app(backend: dict[str, str]) -> Starlette:
    """Another site: a page that loads izzati.js from `backend["url"]` (set once it is known)."""

    async def index(request: StarletteRequest) -> HTMLResponse:
        return HTMLResponse(
            '<!doctype html><html><head><title>elsewhere</title><link rel="icon" href="data:,">'
            f'<script src="{backend["url"]}/izzati.js"></script></head><body><p>another origin</p></body></html>'
        )

    return Starlette(routes=[Route("/", index)])


SEND_FROM_PAGE = """async ([url, apiKey]) => {
    const client = new Izzati(url, {apiKey: apiKey});
    const json = await client.send({
        text: {name: "bob", tag: ["a", "b"], n: 3},
        files: [new File(["hello"], "hello.txt", {type: "text/plain"}), new Blob(["raw"])],
    });
    const file = await client.send({text: {want: "file"}});
    return {
        json: {ok: json.ok, status: json.status, text: json.text},
        file: {filename: file.filename, type: file.blob.type, content: await file.blob.text(), hasText: "text" in file},
    };
}"""


def cross_origin_callback(report: Path) -> Callable[[dict[str, Any], list[Any]], Any]:
    def callback(text: dict[str, Any], data: list[Any]) -> Any:
        if text.get("want") == "file":
            return file_return(str(report), filename="résumé 1.txt")
        return handle(text, data)

    return callback


def test_izzati_js_from_another_origin_with_cors(
    serve: Serve, open_page: Callable[[str], Watched], tmp_path: Path
) -> None:
    report = tmp_path / "report.txt"
    report.write_text("the report")
    backend: dict[str, str] = {}
    origin = serve(origin_app(backend))  # first, so the backend can name it in its CORS origins
    backend["url"] = serve(Backend(cross_origin_callback(report), cors_origins=[origin], api_key="k3y").app)
    assert origin.rsplit(":", 1)[1] != backend["url"].rsplit(":", 1)[1]  # another port: another origin
    watched = open_page(origin + "/")
    assert watched.page.evaluate("location.origin") == origin
    result = watched.page.evaluate(SEND_FROM_PAGE, [backend["url"] + "/", "k3y"])
    assert result["json"] == {
        "ok": True,
        "status": 200,
        "text": {
            "text": {"name": "bob", "tag": ["a", "b"], "n": "3"},
            "files": [
                {"name": "hello.txt", "size": 5, "content": "hello"},
                {"name": "file", "size": 3, "content": "raw"},
            ],
        },
    }
    assert result["file"] == {
        "filename": "résumé 1.txt",
        "type": "text/plain; charset=utf-8",
        "content": "the report",
        "hasText": False,
    }
    watched.shot("izzati-js-cross-origin")
    assert watched.errors == []


def test_izzati_js_from_another_origin_without_cors_is_refused(
    serve: Serve, open_page: Callable[[str], Watched]
) -> None:
    backend = {"url": serve(Backend(handle).app)}
    watched = open_page(serve(origin_app(backend)) + "/")
    outcome = watched.page.evaluate(
        """async (url) => {
            try { await new Izzati(url).send({text: {a: "1"}}); return "sent"; }
            catch (err) { return err.name; }
        }""",
        backend["url"] + "/",
    )
    assert outcome == "TypeError"  # fetch's network error: the browser's CORS check refused the reply


def test_a_streamed_reply_shows_items_as_they_arrive_and_izzati_js_iterates_them(
    serve: Serve, open_page: Callable[[str], Watched]
) -> None:
    import threading
    from collections.abc import Iterator as Items

    release = threading.Event()

    def tokens(text: dict[str, Any], data: list[Any]) -> Items[dict[str, str]]:
        yield {"token": "Once"}
        release.wait(15)  # the page shows the first item while the generator still runs
        for token in [" upon", " a", " time"]:
            yield {"token": token}

    url = serve(Backend(tokens).app)
    watched = open_page(url + "/")
    watched.page.click("#send")
    # a locator waits without evaluating strings (the page's CSP allows no eval)
    watched.page.locator("#json[data-items='1']").wait_for()
    assert watched.page.locator("#json").inner_text() == '{"token":"Once"}'
    watched.shot("streaming-first-item")
    release.set()
    watched.page.locator("#json[data-items='4']").wait_for()
    watched.page.locator("#status", has_text="4 items").wait_for()
    assert watched.page.locator("#status").inner_text().startswith("HTTP 200 · 4 items")
    watched.shot("streaming-done")
    items = watched.page.evaluate(
        """async (url) => {
            const got = [];
            for await (const item of new Izzati(url).stream({text: {prompt: "hi"}})) got.push(item);
            return got;
        }""",
        url + "/",
    )
    assert items == [{"token": t} for t in ["Once", " upon", " a", " time"]]
    assert watched.errors == []


# -------------------------------------------------------------------------------------- the chat box


def test_the_chat_box_streams_the_answer_of_a_chat_route(serve: Serve, open_page: Callable[[str], Watched]) -> None:
    first_shown = threading.Event()
    seen: list[list[Message]] = []

    def talk(request: ChatRequest) -> Iterator[str]:
        seen.append(list(request.messages))
        yield "Hello"
        assert first_shown.wait(15)  # the page shows the first piece while this generator still runs
        yield ", " + request.prompt

    url = serve(Backend(handle, chat={"echo-lm": talk}).app)
    assert open_page(url + "/").page.locator("#chat-box").is_visible()
    without = open_page(serve(Backend(handle).app) + "/")
    assert without.page.locator("#chat-box").is_hidden()  # a service without chat models: no chat box
    watched = open_page(url + "/")
    page = watched.page
    assert page.locator("#chat-model option").all_inner_texts() == ["echo-lm"]
    page.fill("#chat-input", "how are you")
    page.click("#chat-send")
    answer = page.locator("#chat-log .chat-assistant").nth(0)
    expect(answer).to_have_text("Hello")
    watched.shot("chat-first-piece")
    first_shown.set()
    expect(answer).to_have_attribute("data-finish", "stop")
    assert answer.inner_text() == "Hello, how are you"
    page.fill("#chat-input", "and now")
    page.click("#chat-send")
    expect(page.locator("#chat-log .chat-assistant").nth(1)).to_have_attribute("data-finish", "stop")
    assert seen[1] == [
        {"role": "user", "content": "how are you"},
        {"role": "assistant", "content": "Hello, how are you"},
        {"role": "user", "content": "and now"},
    ]
    watched.shot("chat-two-turns")
    assert watched.errors == []


def test_the_chat_box_sends_the_api_key_and_says_why_it_failed(
    serve: Serve, open_page: Callable[[str], Watched]
) -> None:
    def talk(request: ChatRequest) -> Iterator[str]:
        yield "fine"

    url = serve(Backend(handle, chat={"echo-lm": talk}, api_key="sekret").app)
    watched = open_page(url + "/")
    page = watched.page
    page.fill("#chat-input", "hi")
    page.click("#chat-send")
    page.locator("#chat-log .chat-error").wait_for()
    assert page.locator("#chat-log .chat-error").inner_text().startswith("HTTP 401: this service needs an API key")
    watched.errors.clear()  # the 401 above was the point
    page.fill("#api-key", "sekret")
    page.fill("#chat-input", "hi")
    page.click("#chat-send")
    expect(page.locator("#chat-log .chat-assistant")).to_have_attribute("data-finish", "stop")
    assert page.locator("#chat-log .chat-assistant").inner_text() == "fine"
    assert watched.errors == []
