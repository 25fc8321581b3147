"""`assistant serve` against a real server process on a free localhost port: the official
`openai` client (models, a completion with sources, a stream from auto, 401, 404), raw httpx for
malformed (400) and oversized (413) bodies, a client that disconnects mid-stream freeing the
generator, and a full queue answering 503 with Retry-After. One server (API key, queue size 1)
serves the module; answers are kept to a few tokens, so this checks plumbing, not prose."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest
from model_cache import SHARED_CACHE

ROOT = Path(__file__).resolve().parent.parent
KEY = "test-key"
PACKS = ("contracts", "diabetes", "penguin-wood", "support")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    missing = [p for p in PACKS if not (ROOT / "indexes" / p / "CURRENT").is_file()]
    if missing:
        pytest.skip(f"no index yet for {missing}: run `assistant index rebuild NAME`")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(ASSISTANT_HOME=str(tmp_path_factory.mktemp("serve-home")))
    env.update(ASSISTANT_CACHE_DIR=str(SHARED_CACHE))
    log = tmp_path_factory.mktemp("serve-log") / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "assistant.cli", "serve", "--port", str(port)]
            + ["--api-key", KEY, "--queue-size", "1", "--log-level", "warning"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        status = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the server exited: {log.read_text()[-2000:]}")
            try:
                status = httpx.get(f"{url}/health", timeout=2)
                if status.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"the server never got ready ({status}): {log.read_text()[-2000:]}")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


@pytest.fixture
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0, timeout=120)


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


def _wait_idle(url: str, timeout: float = 30) -> float:
    """Seconds until /health says nothing is generating or waiting."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        health = httpx.get(f"{url}/health").json()
        if not health["generating"] and not health["waiting"]:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"the generator stayed busy: {health}")


def test_health_and_models(server: str, client: openai.OpenAI) -> None:
    health = httpx.get(f"{server}/health").json()
    assert health["status"] == "ready" and health["queue_size"] == 1
    ids = [m.id for m in client.models.list()]
    assert ids[0] == "auto" and set(PACKS) <= set(ids)


def test_completion_has_sources(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="diabetes",
        messages=[
            {"role": "system", "content": "ignored: the pack has its own persona"},
            {"role": "user", "content": "What is hypoglycemia?"},
        ],
        max_tokens=8,
        temperature=0.2,
    )
    assert response.object == "chat.completion" and response.model == "diabetes"
    choice = response.choices[0]
    assert choice.message.role == "assistant" and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    usage = response.usage
    assert 0 < usage.completion_tokens <= 8
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    extra = response.model_extra
    assert extra["declined"] is False and extra["pack"] == "diabetes"
    sources = extra["sources"]
    assert sources and {"number", "path", "title", "text", "score", "cited"} <= set(sources[0])
    assert any("hypoglycemia" in s["path"] for s in sources)


def test_stream_from_auto(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="auto",
        messages=[
            {"role": "user", "content": "What glue works for penguin wood?"},
            {"role": "assistant", "content": "A PVA or epoxy glue [1]."},
            {"role": "user", "content": "How long should it cure?"},
        ],
        max_tokens=8,
        stream=True,
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text.strip()
    final = chunks[-1]
    assert final.choices[0].finish_reason in ("stop", "length")
    assert final.model_extra["pack"] == "penguin-wood"
    assert final.model_extra["declined"] is False and final.model_extra["sources"]
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])


def test_ask_endpoint(server: str) -> None:
    response = httpx.post(
        f"{server}/v1/ask",
        json={"pack": "auto", "question": "Who won the 2018 World Cup?"},
        headers=_auth(),
        timeout=120,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["declined"] is True and body["pack"] is None
    assert {"answer", "sources", "citations", "timings", "adapter"} <= set(body)


def test_wrong_or_missing_key_is_401(server: str) -> None:
    wrong = openai.OpenAI(base_url=f"{server}/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        wrong.models.list()
    assert info.value.status_code == 401
    response = httpx.get(f"{server}/v1/models")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{server}/health").status_code == 200  # health needs no key


def test_unknown_model_is_404_with_the_models(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(
            model="gpt-4", messages=[{"role": "user", "content": "hi"}], max_tokens=8
        )
    error = info.value.body
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert all(name in error["message"] for name in ("auto", *PACKS))


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"model": "diabetes", "messages": [', "not valid JSON"),
        (b'{"model": "diabetes"}', "messages"),
        (b'{"model": "diabetes", "messages": [{"role": "system", "content": "x"}]}', "user"),
        (b'{"model": "diabetes", "messages": [], "max_tokens": 0}', "messages"),
        (b"[1, 2]", "JSON object"),
        (b'{"model": "diabetes", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
         "nested too deeply"),
    ],
)  # fmt: skip
def test_bad_requests_are_400(server: str, body: bytes, fragment: str) -> None:
    response = httpx.post(
        f"{server}/v1/chat/completions",
        content=body,
        headers={**_auth(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert fragment in error["message"] and "Traceback" not in response.text


def test_oversized_body_is_413(server: str) -> None:
    big = b'{"model": "diabetes", "messages": [{"role": "user", "content": "' + b"a" * 1_200_000
    big += b'"}]}'
    json_body = {**_auth(), "Content-Type": "application/json"}
    response = httpx.post(f"{server}/v1/chat/completions", content=big, headers=json_body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"

    def chunks():  # no Content-Length: the limit is checked while reading
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    response = httpx.post(f"{server}/v1/chat/completions", content=chunks(), headers=json_body)
    assert response.status_code == 413


def test_client_disconnect_frees_the_generator(server: str) -> None:
    _wait_idle(server)
    before = httpx.get(f"{server}/health").json()
    served, stopped = before["served"], before["stopped"]
    body = {
        "model": "diabetes",
        "messages": [{"role": "user", "content": "Explain everything about insulin pumps."}],
        "max_tokens": 2000,
        "stream": True,
    }
    with (
        httpx.Client(timeout=120) as http,
        http.stream(
            "POST", f"{server}/v1/chat/completions", json=body, headers=_auth()
        ) as response,
    ):
        assert response.status_code == 200
        pieces = 0
        for line in response.iter_lines():
            if '"content": "' in line and '"content": ""' not in line:
                pieces += 1
            if pieces >= 1:  # whole checked sentences, not tokens
                # Asked while connected: leaving the loop closes the connection (httpx), and
                # the server may stop the generator before a later /health request arrives.
                assert httpx.get(f"{server}/health").json()["generating"] is True
                break
    # the connection is closed: generation stops at its next token, not after 2000
    _wait_idle(server, timeout=120)
    health = httpx.get(f"{server}/health").json()
    assert health["served"] == served + 1 and health["stopped"] == stopped + 1
    response = httpx.post(
        f"{server}/v1/chat/completions",
        json={**body, "stream": False, "max_tokens": 4},
        headers=_auth(),
        timeout=120,
    )
    assert response.status_code == 200


def test_full_queue_is_503_with_retry_after(server: str) -> None:
    _wait_idle(server)
    barrier = threading.Barrier(4)
    results: list[httpx.Response] = []

    def call(i: int) -> None:
        barrier.wait()
        results.append(
            httpx.post(
                f"{server}/v1/chat/completions",
                json={
                    "model": "support",
                    "messages": [{"role": "user", "content": f"How do I upgrade Syncthing? ({i})"}],
                    "max_tokens": 16,
                },
                headers=_auth(),
                timeout=120,
            )
        )

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(r.status_code for r in results)
    assert 503 in codes and 200 in codes and set(codes) <= {200, 503}, codes
    for response in results:
        if response.status_code == 503:
            assert int(response.headers["Retry-After"]) > 0
            assert response.json()["error"]["code"] == "queue_full"
        else:
            assert response.json()["choices"][0]["message"]["content"]
