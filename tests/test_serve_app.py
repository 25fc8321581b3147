"""The app in-process with a stand-in router (no models): loading state, crashes without
tracebacks, each library error type's HTTP status, message splitting and the 422 -> 400
override. The damaged-index cases use the stand-in raising DamagedDataError (what the knowledge
layer raises for a damaged index file), not a real damaged file."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from assistant.answering.answers import Answer, AnswerStream
from assistant.errors import DamagedDataError, MissingDependencyError, NotFoundError, TooLargeError
from assistant.server import create_app
from assistant.server.errors import ApiError, without_paths
from assistant.server.requests import split_messages
from assistant.server.schemas import ChatMessage


class FakeRouter:
    loaded = None

    def __init__(self, fail: BaseException | None = None) -> None:
        self.fail = fail

    def packs(self):
        return [SimpleNamespace(name="diabetes")]

    def stream(self, question, pack=None, history=(), *, max_tokens=None, cancel=None):
        if self.fail:
            raise self.fail

        def steps():
            yield "Hello"
            return Answer(question, "Hello", "diabetes")

        return AnswerStream(steps())


def _client(router: FakeRouter, ready: bool = True, **options) -> TestClient:
    app = create_app(router, preload=False, **options)
    if ready:
        app.state.service.ready.set()
    return TestClient(app)


CHAT = {"model": "diabetes", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def test_loading_is_503() -> None:
    with _client(FakeRouter(), ready=False) as client:
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "loading"
        response = client.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 503 and response.json()["error"]["code"] == "loading"
        assert "Retry-After" in response.headers


def test_answers_with_a_stand_in_router() -> None:
    with _client(FakeRouter()) as client:
        body = client.post("/v1/chat/completions", json=CHAT).json()
        assert body["choices"][0]["message"]["content"] == "Hello"
        assert body["sources"] == [] and body["declined"] is False
        stream = client.post("/v1/chat/completions", json={**CHAT, "stream": True}).text
        assert stream.rstrip().endswith("data: [DONE]") and '"Hello"' in stream


def test_a_crash_is_500_without_traceback() -> None:
    with _client(FakeRouter(RuntimeError("secret detail"))) as client:
        response = client.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 500
        assert response.json()["error"]["type"] == "server_error"
        assert "secret" not in response.text and "Traceback" not in response.text


def test_user_errors_from_the_router_are_400() -> None:
    from assistant.errors import AssistantError

    with _client(FakeRouter(AssistantError("the question is empty"))) as client:
        response = client.post("/v1/ask", json={"pack": "diabetes", "question": " "})
        assert response.status_code == 400
        assert response.json()["error"]["message"] == "the question is empty"


# What the index raises for a truncated file of a pack installed in the server's home folder.
DAMAGED = DamagedDataError(
    "the index of pack 'diabetes' is damaged: /srv/home/packs/diabetes/index/vectors.faiss is"
    " truncated; run `assistant index rebuild diabetes` to rebuild it from /srv/home/docs"
)


@pytest.mark.parametrize("stream", [False, True])
def test_damaged_data_is_500_with_the_repair_command_and_no_path(stream: bool) -> None:
    with _client(FakeRouter(DAMAGED)) as client:
        response = client.post("/v1/chat/completions", json={**CHAT, "stream": stream})
        assert response.status_code == 500
        error = response.json()["error"]
        assert error["type"] == "server_error"
        assert "run `assistant index rebuild diabetes`" in error["message"]
        assert "/srv" not in response.text and "vectors.faiss" in error["message"]


class FailsToLoad(FakeRouter):
    def warm_up(self) -> None:
        raise DAMAGED


def test_a_damaged_index_at_startup_is_500_without_the_path() -> None:
    with _client(FailsToLoad(), ready=False) as client:
        client.app.state.service.load()
        health = client.get("/health")
        assert health.status_code == 500 and "/srv" not in health.text
        response = client.post("/v1/ask", json={"pack": "diabetes", "question": "hi"})
        assert response.status_code == 500 and "/srv" not in response.text
        assert "assistant index rebuild diabetes" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFoundError("no document docs/a.md in pack 'diabetes'"), 404),
        (TooLargeError("the question is longer than 64 kB"), 413),
        (MissingDependencyError("llama.cpp is not installed; pip install llama-cpp-python"), 503),
    ],
)
def test_each_library_error_has_its_status(error: Exception, status: int) -> None:
    with _client(FakeRouter(error)) as client:
        response = client.post("/v1/ask", json={"pack": "diabetes", "question": "hi"})
        assert response.status_code == status
        assert response.json()["error"]["message"] == str(error)


def test_an_unknown_pack_is_404_with_the_packs() -> None:
    with _client(FakeRouter()) as client:
        response = client.post("/v1/ask", json={"pack": "diabtes", "question": "hi"})
        assert response.status_code == 404
        error = response.json()["error"]
        assert error["code"] == "model_not_found" and "auto, diabetes" in error["message"]


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("cannot read /home/ann/x/manifest.json (cut)", "cannot read …/manifest.json (cut)"),
        ("bad file 'C:\\Users\\ann\\x.gguf'", "bad file '…/x.gguf'"),
        ("docs/a.md and/or https://example.org/x", "docs/a.md and/or https://example.org/x"),
    ],
)
def test_without_paths(message: str, shown: str) -> None:
    assert without_paths(message) == shown


def test_key_from_api_key_option() -> None:
    with _client(FakeRouter(), api_key="k") as client:
        assert client.get("/v1/models").status_code == 401
        wrong = client.post("/v1/chat/completions", json=CHAT, headers={"Authorization": "k"})
        assert wrong.status_code == 401
        ok = client.post("/v1/chat/completions", json=CHAT, headers={"Authorization": "Bearer k"})
        assert ok.status_code == 200


def test_split_messages() -> None:
    messages = [
        ChatMessage(role="system", content="be nice"),
        ChatMessage(role="user", content="What glue?"),
        ChatMessage(role="assistant", content="Epoxy [1]."),
        ChatMessage(role="user", content=[{"type": "text", "text": "How long to cure?"}]),
    ]
    question, history = split_messages(messages)
    assert question == "How long to cure?"
    assert history == [
        {"role": "user", "content": "What glue?"},
        {"role": "assistant", "content": "Epoxy [1]."},
    ]
    with pytest.raises(ApiError):
        split_messages([ChatMessage(role="system", content="x")])


def test_queue_skips_jobs_cancelled_while_waiting() -> None:
    import asyncio

    from assistant.server.queue import END, GeneratorQueue

    started = threading.Event()
    release = threading.Event()
    ran: list[str] = []

    def slow(cancel):
        started.set()
        release.wait(5)
        ran.append("slow")
        yield "a"

    def never(cancel):
        ran.append("never")
        yield "b"

    async def main() -> None:
        queue = GeneratorQueue(1)
        first = queue.submit(slow)
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 5)
        second = queue.submit(never)
        second.cancel.set()
        release.set()
        assert await first.next(5) == "a" and await first.next(5) is END
        assert await second.next(5) is END
        queue.close()

    asyncio.run(main())
    assert ran == ["slow"]


def test_a_history_of_thousands_of_tiny_turns_is_refused_before_any_work() -> None:
    """Tens of thousands of tiny turns fit in the 1 MB body; more than MAX_MESSAGES is a 400
    naming the field, and the router is never called (the stand-in would answer)."""
    from assistant.server.schemas import MAX_MESSAGES

    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": "k"} for i in range(20_000)]
    with _client(FakeRouter()) as client:
        chat = client.post(
            "/v1/chat/completions", json={**CHAT, "messages": turns + CHAT["messages"]}
        )
        ask = client.post("/v1/ask", json={"question": "hi", "history": turns})
        within = client.post(
            "/v1/chat/completions",
            json={**CHAT, "messages": turns[-MAX_MESSAGES + 1 :] + CHAT["messages"]},
        )
    for response in (chat, ask):
        assert response.status_code == 400, response.text
        assert "Hello" not in response.text
    assert "messages" in chat.json()["error"]["param"] and "history" in ask.json()["error"]["param"]
    assert within.status_code == 200


def test_a_rebound_host_name_is_refused() -> None:
    """DNS rebinding: a page at evil.example rebinds its name to 127.0.0.1 and its requests
    carry `Host: evil.example`; only the allowed names get through, as OpenAI error JSON."""
    from assistant.cli.serve import default_allowed_hosts

    hosts = default_allowed_hosts("127.0.0.1")
    with _client(FakeRouter(), allowed_hosts=hosts) as client:
        evil = client.post("/v1/ask", json={"question": "hi"}, headers={"Host": "evil.example"})
        health = client.get("/health", headers={"Host": "evil.example:8000"})
        for name in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "localhost"):
            ok = client.post("/v1/ask", json={"question": "hi"}, headers={"Host": name})
            assert ok.status_code == 200, (name, ok.text)
    for response in (evil, health):
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "host_not_allowed"
        assert "Hello" not in response.text
    assert default_allowed_hosts("0.0.0.0") == ["*"]
    assert "10.0.0.5" in default_allowed_hosts("10.0.0.5")


def test_a_post_that_is_not_json_is_refused() -> None:
    """A cross-site form or `text/plain` post (no preflight) must not reach the queue."""
    with _client(FakeRouter()) as client:
        body = '{"question": "hi"}'
        plain = client.post("/v1/ask", content=body, headers={"Content-Type": "text/plain"})
        form = client.post("/v1/ask", data={"question": "hi"})
        none = client.post("/v1/ask", content=body, headers={"Content-Type": ""})
        ok = client.post(
            "/v1/ask", content=body, headers={"Content-Type": "application/json; charset=utf-8"}
        )
    for response in (plain, form, none):
        assert response.status_code == 415, response.text
        assert response.json()["error"]["code"] == "unsupported_media_type"
    assert ok.status_code == 200


def test_a_user_error_naming_a_server_file_reaches_the_client_without_its_path() -> None:
    """Index errors are the user's mistake (400) but name the server's files."""
    from assistant.errors import AssistantError

    error = AssistantError("no document /srv/home/packs/diabetes/docs/secret-plan.md in the index")
    with _client(FakeRouter(error)) as client:
        response = client.post("/v1/ask", json={"pack": "diabetes", "question": "hi"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "no document …/secret-plan.md in the index"


def test_health_says_only_that_loading_failed() -> None:
    """/health needs no key: the reason (with the repair command) is behind the key."""
    with _client(FailsToLoad(), ready=False, api_key="k") as client:
        client.app.state.service.load()
        health = client.get("/health")
        behind_key = client.post(
            "/v1/ask", json={"question": "hi"}, headers={"Authorization": "Bearer k"}
        )
    assert health.status_code == 500 and health.json()["status"] == "error"
    assert "damaged" not in health.text and "rebuild" not in health.text
    assert "assistant index rebuild diabetes" in behind_key.json()["error"]["message"]
