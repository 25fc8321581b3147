"""The remote generation engine (`models.backend = "openai"`) against a real llama.cpp server
that the test starts on 127.0.0.1 (`assistant engine run`: llama.cpp's server from the
xllamacpp wheel) with two packs' adapters from `assistant engine prepare`: answers equal the
local engine's; a missing adapter, no engine at all, and an engine stopped mid-answer are each
one line, and the answer path works again once the engine is back."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from model_cache import SHARED_CACHE
from settings_helpers import with_models

from assistant.errors import AssistantError
from assistant.packs.locate import find_pack

ASSISTANT = str(Path(sys.executable).parent / "assistant")
SERVED = ("penguin-wood", "diabetes")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _test_questions(pack: str, count: int) -> list[str]:
    lines = (find_pack(pack).eval_file).read_text("utf-8").splitlines()
    cases = [json.loads(line) for line in lines if line.strip()]
    return [c["question"] for c in cases if c.get("split") == "test" and c.get("source")][:count]


class Engine:
    """`assistant engine run` in a child process, on a free loopback port."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "ASSISTANT_CACHE_DIR": str(SHARED_CACHE)}
        command = [ASSISTANT, "engine", "run", "--dir", str(folder), "--port", str(self.port)]
        self.process = subprocess.Popen(
            [*command, "--slots", "1"], env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the engine stopped: {self.process.stderr.read()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise AssertionError("the engine did not come up in 300 s")

    def stop(self, how: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(how)
            self.process.wait(timeout=60)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, settings) -> Path:
    from assistant.runtime.engine_files import prepare_engine

    folder = tmp_path_factory.mktemp("engine")
    prepare_engine(folder, [find_pack(name) for name in SERVED], settings)
    return folder


@pytest.fixture(scope="module")
def engine(prepared) -> Iterator[Engine]:
    running = Engine(prepared)
    yield running
    running.stop()


def _remote(settings, url: str, **models):
    return with_models(settings, backend="openai", base_url=url, **models)


def test_prepare_writes_each_adapter_and_the_launch_lines(prepared) -> None:
    launch = (prepared / "launch.txt").read_text("utf-8")
    for name in SERVED:
        (lora,) = (prepared / "lora").glob(f"{name}-*.gguf")
        assert f"--lora {lora.resolve()}" in launch
        assert (prepared / "peft" / name / "adapter_model.safetensors").is_file()
        assert f"{name}={(prepared / 'peft' / name).resolve()}" in launch
    assert "llama-server -m " in launch and "vllm serve " in launch


@pytest.mark.parametrize("pack", SERVED)
def test_answers_equal_the_local_engines(engine, settings, pack: str) -> None:
    from assistant.answering.router import Router

    local = Router(with_models(settings, backend="llama_cpp"))
    remote = Router(_remote(settings, engine.url))
    for question in _test_questions(pack, 2):
        here = local.answer(question, pack, max_tokens=48)
        there = remote.answer(question, pack, max_tokens=48)
        assert there.adapter == pack
        assert there.answer == here.answer, question


def test_an_engine_without_the_packs_adapter_is_one_line(engine, settings) -> None:
    from assistant.answering.router import Router

    with pytest.raises(AssistantError) as raised:
        Router(_remote(settings, engine.url)).answer("How do I share a folder?", "support")
    message = str(raised.value)
    assert "has no adapter for pack 'support'" in message and "engine prepare" in message
    assert "\n" not in message


def test_no_engine_is_one_line_after_its_retries(settings) -> None:
    from assistant.answering.router import Router

    url = f"http://127.0.0.1:{_free_port()}"
    router = Router(_remote(settings, url, retries=1))
    with pytest.raises(AssistantError) as raised:
        router.answer("How thick should a shelf be?", "penguin-wood", max_tokens=8)
    message = str(raised.value)
    assert message.startswith(f"no engine answers at {url}") and "\n" not in message


def test_an_engine_stopped_mid_answer_is_one_line_and_the_next_answer_works(
    prepared, settings
) -> None:
    from assistant.answering.router import Router

    running = Engine(prepared)
    router = Router(_remote(settings, running.url, retries=0))
    question = _test_questions("penguin-wood", 1)[0]
    stream = router.stream(question, "penguin-wood", max_tokens=200, grounding="off")
    shown = []
    with pytest.raises(AssistantError) as raised:
        for piece in stream:
            shown.append(piece)
            if len(shown) == 1:
                running.stop(signal.SIGKILL)
    message = str(raised.value)
    assert f"the engine at {running.url} stopped mid-answer" in message and "\n" not in message
    assert shown  # what came before the engine stopped was shown, not taken back
    back = Engine(prepared, port=running.port)
    try:
        again = router.answer(question, "penguin-wood", max_tokens=16)
        assert again.answer.strip() and again.adapter == "penguin-wood"
    finally:
        back.stop()


def test_serve_workers_share_the_engine(engine) -> None:
    """`assistant serve --workers 2` behind one address, both workers answering through the
    one remote engine."""
    port = _free_port()
    env = {
        **os.environ,
        "ASSISTANT_CACHE_DIR": str(SHARED_CACHE),
        "ASSISTANT_BACKEND": "openai",
        "ASSISTANT_BASE_URL": engine.url,
    }
    command = [ASSISTANT, "serve", "--port", str(port), "--workers", "2"]
    server = subprocess.Popen(
        command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stderr.read()
            try:
                if httpx.get(f"{url}/health", timeout=2).json().get("status") == "ready":
                    break
            except (httpx.TransportError, ValueError):
                pass
            time.sleep(0.5)
        children = subprocess.run(
            ["pgrep", "-a", "-P", str(server.pid)], capture_output=True, text=True, check=False
        ).stdout.splitlines()
        workers = [line for line in children if "spawn_main" in line]
        assert len(workers) == 2, children  # uvicorn's worker processes behind one address
        question = _test_questions("penguin-wood", 1)[0]
        body = {"pack": "penguin-wood", "question": question, "max_tokens": 16}
        for _ in range(3):
            reply = httpx.post(f"{url}/v1/ask", json=body, timeout=300)
            assert reply.status_code == 200, reply.text
            assert reply.json()["adapter"] == "penguin-wood" and reply.json()["answer"].strip()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
