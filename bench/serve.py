"""Benchmark: `assistant serve` over HTTP against `Assistant` in-process, in one run.

Run: `.venv/bin/python bench/serve.py [--max-tokens 32] [--port 0] [--rounds 2]`

1 client: the same questions alternate between in-process `Assistant.stream` and one streaming
HTTP client (the anchor; goal: the service adds <= 5 % to p50 latency). Then 4 and 16 concurrent
HTTP clients (16 and 32 requests). Each row: answers/min, p50/p95 latency and time to first token
(first content piece), and the count of 503s (expected only when more clients than
`--queue-size` + 1 wait at once). Results go to bench/out/serve.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    ("diabetes", "What is hypoglycemia?"),
    ("support", "How do I upgrade Syncthing?"),
    ("penguin-wood", "Which glue should I use for a penguin wood glue-up?"),
    ("contracts", "What does a force majeure clause usually say?"),
    ("diabetes", "How is gestational diabetes diagnosed?"),
    ("support", "How do I set up a relay server for Syncthing?"),
    ("penguin-wood", "How long does 50 mm penguin wood stock take in the kiln?"),
    ("contracts", "What is a mutual NDA?"),
]
LEVELS = [(1, 8), (4, 16), (16, 32)]  # (concurrent clients, requests)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


def http_stream(url: str, pack: str, question: str, max_tokens: int) -> dict:
    """One streaming chat completion: status, time to first content piece, total time."""
    body = {
        "model": pack,
        "messages": [{"role": "user", "content": question}],
        "max_tokens": max_tokens,
        "stream": True,
    }
    start = time.perf_counter()
    first = None
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=600) as response:
        if response.status_code != 200:
            response.read()
            return {"status": response.status_code, "total": time.perf_counter() - start}
        for line in response.iter_lines():
            if first is None and line.startswith("data: {") and '"delta": {"content"' in line:
                first = time.perf_counter() - start
    total = time.perf_counter() - start
    return {"status": 200, "ttft": first or total, "total": total}


def in_process(assistant, pack: str, question: str, max_tokens: int) -> dict:
    start = time.perf_counter()
    first = None
    for _piece in assistant.stream(pack, question, max_tokens=max_tokens):
        first = first or time.perf_counter() - start
    total = time.perf_counter() - start
    return {"status": 200, "ttft": first or total, "total": total}


def summary(name: str, results: list[dict], wall: float) -> dict:
    ok = [r for r in results if r["status"] == 200]
    return {
        "name": name,
        "requests": len(results),
        "ok": len(ok),
        "503": sum(r["status"] == 503 for r in results),
        "other_errors": sum(r["status"] not in (200, 503) for r in results),
        "answers_per_min": round(len(ok) / wall * 60, 1),
        "p50_s": round(pct([r["total"] for r in ok], 0.5), 2),
        "p95_s": round(pct([r["total"] for r in ok], 0.95), 2),
        "ttft_p50_s": round(pct([r["ttft"] for r in ok], 0.5), 2),
        "ttft_p95_s": round(pct([r["ttft"] for r in ok], 0.95), 2),
        "wall_s": round(wall, 1),
    }


def start_server(port: int, queue_size: int) -> tuple[subprocess.Popen, str]:
    if not port:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "assistant.cli", "serve", "--port", str(port)]
    cmd += ["--queue-size", str(queue_size), "--log-level", "warning"]
    env = {k: v for k, v in os.environ.items() if k != "ASSISTANT_API_KEY"}
    process = subprocess.Popen(cmd, cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise SystemExit("the server exited")
        time.sleep(0.5)
    process.kill()
    raise SystemExit("the server never got ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--queue-size", type=int, default=8)
    parser.add_argument(
        "--rounds", type=int, default=2, help="1-client passes over the 8 questions (pairs)"
    )
    args = parser.parse_args()

    from assistant import Assistant

    load1 = os.getloadavg()[0]
    assistant = Assistant()
    process, url = start_server(args.port, args.queue_size)
    rows = []
    try:
        in_process(assistant, *QUESTIONS[0], args.max_tokens)  # warm-up: adapters, caches
        http_stream(url, *QUESTIONS[0], args.max_tokens)
        local, remote = [], []
        t_local = t_remote = 0.0
        for pack, question in QUESTIONS[: LEVELS[0][1]] * args.rounds:
            result = in_process(assistant, pack, question, args.max_tokens)
            local.append(result)
            t_local += result["total"]
            result = http_stream(url, pack, question, args.max_tokens)
            remote.append(result)
            t_remote += result["total"]
        rows.append(summary("in-process Assistant.stream, 1 client", local, t_local))
        rows.append(summary("HTTP, 1 client", remote, t_remote))
        for clients, count in LEVELS[1:]:
            jobs = [QUESTIONS[i % len(QUESTIONS)] for i in range(count)]
            lock = threading.Lock()
            results: list[dict] = []

            def run(job: tuple[str, str], lock=lock, results=results) -> None:
                result = http_stream(url, job[0], job[1], args.max_tokens)
                with lock:
                    results.append(result)

            start = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(run, jobs))
            rows.append(summary(f"HTTP, {clients} clients", results, time.perf_counter() - start))
    finally:
        process.terminate()
        process.wait(15)

    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.platform()}",
        "load_average_start_end": [round(load1, 2), round(os.getloadavg()[0], 2)],
        "max_tokens": args.max_tokens,
        "queue_size": args.queue_size,
        "rows": rows,
        "overhead_p50_1_client": round(rows[1]["p50_s"] / rows[0]["p50_s"], 3),
        "overhead_ttft_p50_1_client": round(rows[1]["ttft_p50_s"] / rows[0]["ttft_p50_s"], 3),
        # Greedy answers are the same both ways, so each question pairs an HTTP latency with an
        # in-process one measured moments apart: the median of the pair ratios is robust to
        # load drifting during the run.
        "overhead_paired_median_1_client": round(
            pct([r["total"] / a["total"] for r, a in zip(remote, local, strict=True)], 0.5), 3
        ),
        "overhead_total_time_1_client": round(t_remote / t_local, 3),
    }
    head = f"{'':40} {'ok':>4} {'503':>4} {'err':>4} {'ans/min':>8} {'p50':>6} {'p95':>6}"
    print(head + f" {'ttft50':>7} {'ttft95':>7}")
    for r in rows:
        print(
            f"{r['name']:40} {r['ok']:>4} {r['503']:>4} {r['other_errors']:>4}"
            f" {r['answers_per_min']:>8} {r['p50_s']:>6} {r['p95_s']:>6}"
            f" {r['ttft_p50_s']:>7} {r['ttft_p95_s']:>7}"
        )
    print(
        f"1 client: HTTP / in-process latency: p50 {report['overhead_p50_1_client']},"
        f" paired median {report['overhead_paired_median_1_client']}, total time"
        f" {report['overhead_total_time_1_client']} (goal <= 1.05)"
    )
    out = ROOT / "bench" / "out" / "serve.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
