"""Benchmark: peak memory of `assistant chat` with every pack's adapter loaded.

Run: `.venv/bin/python bench/chat_memory.py [--weights fp16,llama_cpp] [--max-tokens 32]`
(`llama_cpp`: the default engine; fp16/int8/float32: `models.backend = "transformers"` with
that `models.quantize`)

Each variant runs in its own process: the real Textual chat app, headless, auto-routing, asks
one in-scope eval question per pack, so the router loads every pack's index and adapter onto
the one base model and answers with each. The figure is the process's peak RSS, printed next to
the goal (800 MB) and to the first variant (the shipped float32), both as ratios. Results go to
bench/out/chat_memory.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL_MB = 800


async def chat_with_every_pack(max_tokens: int) -> dict:
    from assistant.evaluation.run import load_cases
    from assistant.history import History
    from assistant.packs.locate import list_packs
    from assistant.settings import load_settings
    from assistant.tui.app import ChatApp
    from assistant.tui.widgets import PromptInput

    loaded = load_settings()
    packs = list_packs()
    questions = []
    for pack in packs:
        cases, _ = load_cases(pack.eval_file)
        questions.append(next(c.question for c in cases if not c.out_of_scope))
    # the benchmark's conversation goes to a throwaway history, never the user's
    history = History(Path(tempfile.mkdtemp(prefix="chat-memory-")) / "history.sqlite3")
    app = ChatApp(loaded, None, history=history, max_tokens=max_tokens)
    async with app.run_test(size=(100, 32)) as pilot:
        for question in questions:
            prompt = app.query_one(PromptInput)
            prompt.focus()
            prompt.insert(question)
            await pilot.press("enter")
            await pilot.pause(0.5)
            deadline = time.monotonic() + 600
            while app.answering and time.monotonic() < deadline:
                await pilot.pause(0.2)
    if loaded.settings.models.backend == "llama_cpp":
        from assistant.runtime.llama_engine import engine_for

        names = engine_for(loaded).adapters
    else:
        from assistant.runtime.models import load_base_model

        bank = load_base_model(loaded).bank
        names = bank.names if bank else {}
    return {
        "adapters_loaded": sorted(names),
        "questions": len(questions),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


def run_variant(weights: str, max_tokens: int) -> dict:
    env = dict(os.environ, ASSISTANT_BACKEND="transformers")
    env["ASSISTANT_QUANTIZE"] = weights if weights in ("fp16", "int8") else "none"
    if weights == "llama_cpp":  # the default engine
        env.update(ASSISTANT_BACKEND="llama_cpp")
    done = subprocess.run(
        [sys.executable, __file__, "--child", "--max-tokens", str(max_tokens)],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit(f"{weights} run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="fp16,llama_cpp", help="variants (first: anchor)")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(chat_with_every_pack(args.max_tokens))))
        return

    rows = {weights: run_variant(weights, args.max_tokens) for weights in args.weights.split(",")}
    anchor = next(iter(rows.values()))["peak_rss_mb"]
    print(f"{'weights':10} {'adapters':>8} {'peak RSS':>9} {'/ goal':>7} {'/ first':>8}")
    for weights, row in rows.items():
        row["goal_ratio"] = round(row["peak_rss_mb"] / GOAL_MB, 3)
        row["anchor_ratio"] = round(row["peak_rss_mb"] / anchor, 3)
        print(
            f"{weights:10} {len(row['adapters_loaded']):>8} {row['peak_rss_mb']:>6} MB"
            f" {row['goal_ratio']:>7} {row['anchor_ratio']:>8}"
        )
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}",
        "goal_mb": GOAL_MB,
        "rows": rows,
    }
    out = ROOT / "bench" / "out" / "chat_memory.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
