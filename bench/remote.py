"""Benchmark: `assistant serve` through a remote engine against the same engine called directly,
4 concurrent clients each, in one run (issue [7/7]; goal: serve >= 0.9x the engine's tokens/s).

Run: `.venv/bin/python bench/remote.py [--max-tokens 64] [--clients 4] [--rounds 2]`

The engine is `assistant engine run` (llama.cpp's server, 4 slots) on 127.0.0.1 with every
pack's adapter. First the answers' own engine requests are recorded in-process (the router's
generator wrapped): prompt token ids, adapter, tokens generated. Then, timed:
- direct: the recorded requests sent to the engine's /v1/completions by `--clients` threads,
  each asking for exactly as many tokens as its answer got (the anchor);
- serve: the same questions to `assistant serve --concurrency 4` (models.backend = "openai")
  by `--clients` threads on /v1/ask: retrieval, prompts, the decline margin, the claim check
  and HTTP on top of the same engine work.
Each row: answer tokens per second over the wall time, answers per minute, p50 latency.
Results go to bench/out/remote.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from serve import QUESTIONS, pct  # noqa: E402

ASSISTANT = str(Path(sys.executable).parent / "assistant")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, health_key: str | None = None) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} stopped: {process.stderr.read() if process.stderr else ''}")
        try:
            reply = httpx.get(f"{url}/health", timeout=2)
            if reply.status_code == 200 and (
                health_key is None or reply.json().get("status") == health_key
            ):
                return
        except (httpx.TransportError, ValueError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} not ready in 600 s")


def record(settings: Any, url: str, max_tokens: int) -> list[dict[str, Any]]:
    """Each question's engine request as the answer path makes it (grounding as shipped)."""
    from assistant.answering.router import Router

    router = Router(settings)
    generator = router.engine()
    recorded: list[dict[str, Any]] = []

    class Recorder:
        tokenizer = generator.tokenizer

        def __getattr__(self, name: str) -> Any:
            return getattr(generator, name)

        def generate(self, token_ids, options, *, adapter=None, cancel=None):  # noqa: ANN001
            stream = generator.generate(token_ids, options, adapter=adapter, cancel=cancel)
            recorded.append({"ids": list(token_ids), "adapter": adapter, "stats": stream.stats})
            return stream

    router.engine = lambda: Recorder()  # type: ignore[method-assign]
    for pack, question in QUESTIONS:
        router.answer(question, pack, max_tokens=max_tokens)
    engine = generator.engine
    return [
        {
            "prompt": item["ids"],
            "lora": engine.lora(item["adapter"]),
            "tokens": item["stats"].new_tokens,
        }
        for item in recorded
        if item["stats"].new_tokens > 0
    ]


def direct(url: str, requests: list[dict[str, Any]], clients: int) -> dict[str, Any]:
    def one(request: dict[str, Any]) -> tuple[float, int]:
        body = {
            "prompt": request["prompt"],
            "lora": request["lora"],
            "max_tokens": request["tokens"],
            "temperature": 0.0,
            "ignore_eos": True,
            "cache_prompt": True,
        }
        start = time.perf_counter()
        reply = httpx.post(f"{url}/v1/completions", json=body, timeout=600)
        reply.raise_for_status()
        return time.perf_counter() - start, reply.json()["usage"]["completion_tokens"]

    return timed(one, requests, clients)


def through_serve(url: str, questions: list[tuple[str, str]], clients: int, max_tokens: int):
    def one(item: tuple[str, str]) -> tuple[float, int]:
        pack, question = item
        body = {"pack": pack, "question": question, "max_tokens": max_tokens}
        start = time.perf_counter()
        reply = httpx.post(f"{url}/v1/ask", json=body, timeout=600)
        reply.raise_for_status()
        return time.perf_counter() - start, reply.json()["timings"]["answer_tokens"]

    return timed(one, questions, clients)


def timed(call: Any, items: list[Any], clients: int) -> dict[str, Any]:
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(call, items))
    wall = time.perf_counter() - start
    tokens = sum(t for _, t in results)
    return {
        "requests": len(results),
        "tokens": tokens,
        "wall_s": round(wall, 2),
        "tokens_per_s": round(tokens / wall, 2),
        "answers_per_min": round(len(results) / wall * 60, 1),
        "p50_s": round(pct([s for s, _ in results], 0.5), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from assistant.packs.locate import list_packs
    from assistant.runtime.engine_files import prepare_engine
    from assistant.settings import load_settings

    base = load_settings()
    folder = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    prepare_engine(folder, list_packs(), base)
    engine_url = f"http://127.0.0.1:{free_port()}"
    port = engine_url.rsplit(":", 1)[1]
    command = [ASSISTANT, "engine", "run", "--dir", str(folder), "--port", port, "--slots", "4"]
    engine = subprocess.Popen(command, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    serve_url = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "ASSISTANT_BACKEND": "openai", "ASSISTANT_BASE_URL": engine_url}
    serve_command = [ASSISTANT, "serve", "--port", serve_url.rsplit(":", 1)[1]]
    serve = None
    try:
        wait_ready(engine_url, engine)
        os.environ.update(ASSISTANT_BACKEND="openai", ASSISTANT_BASE_URL=engine_url)
        requests = record(load_settings(), engine_url, args.max_tokens)
        serve = subprocess.Popen(
            [*serve_command, "--concurrency", "4"], env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        wait_ready(serve_url, serve, "ready")
        through_serve(serve_url, QUESTIONS[:2], 2, 8)  # warm: embedder, adapters listed
        rows = []
        for round_number in range(args.rounds):
            anchor = direct(engine_url, requests * 2, args.clients)
            served = through_serve(serve_url, QUESTIONS * 2, args.clients, args.max_tokens)
            ratio = served["tokens_per_s"] / anchor["tokens_per_s"]
            rows.append({"round": round_number + 1, "direct": anchor, "serve": served,
                         "ratio": round(ratio, 3)})  # fmt: skip
            print(
                f"round {round_number + 1}: engine directly {anchor['tokens_per_s']} tok/s,"
                f" {anchor['answers_per_min']} answers/min (p50 {anchor['p50_s']} s);"
                f" through serve {served['tokens_per_s']} tok/s, {served['answers_per_min']}"
                f" answers/min (p50 {served['p50_s']} s): {ratio:.2f}x"
            )
    finally:
        for process in (serve, engine):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=60)
    out = ROOT / "bench" / "out" / "remote.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores"
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine, "args": vars(args),
              "rows": rows}  # fmt: skip
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
