"""Benchmark: adapters — training cost per pack, switch latency, and decode speed with an adapter.

Run: `.venv/bin/python bench/adapters.py [--switches 1000]` after the packs' adapters are trained.

Prints, for every shipped pack with an adapter, the training wall time and seconds per step
recorded in its training.json (goal: one pack in <= 15 min on 2 cores); the p50/p95 latency of
switching between the loaded adapters (goal p50 <= 5 ms); and decode tokens/s with an adapter
active against the base model alone on the same prompt in the same run (goal ratio >= 0.9).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time

from assistant.packs.locate import list_packs
from assistant.runtime.adapters import bank_for
from assistant.runtime.bases import pack_adapter
from assistant.runtime.generation import GenerationOptions, GenerationStats
from assistant.runtime.models import load_base_model
from assistant.runtime.torch_engine import encode_chat, stream_tokens
from assistant.settings import load_settings

NEW_TOKENS = 96


def decode_speed(handle, bank, name: str | None, input_ids) -> float:
    options = GenerationOptions.plain(
        max_new_tokens=NEW_TOKENS, extra={"min_new_tokens": NEW_TOKENS}, repetition_penalty=1.0
    )
    stats = GenerationStats()
    with bank.using(name) as model:
        for _ in stream_tokens(handle, input_ids, options, stats=stats, model=model):
            pass
    return stats.decode_tokens_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    loaded = load_settings()
    handle = load_base_model(loaded)
    bank = bank_for(handle)
    packs = [p for p in list_packs() if pack_adapter(p, loaded).trained]
    if not packs:
        raise SystemExit("no trained adapters: run `assistant train PACK` first")

    print(f"machine: {os.cpu_count()} cores; packs with adapters: {len(packs)}")
    for pack in packs:
        info = json.loads(pack_adapter(pack, loaded).record.read_text())
        steps = max(1, info["steps"])
        print(
            f"train {pack.name}: {info['wall_seconds'] / 60:.1f} min wall, {steps} steps,"
            f" {info['wall_seconds'] / steps:.1f} s/step, {info['examples']} examples,"
            f" final loss {info['final_loss']:.3f}, peak RSS {info.get('peak_rss_mb', '?')} MB"
            " (goal <= 15 min)"
        )
    start = time.perf_counter()
    names = [bank.load(pack, loaded) for pack in packs]
    print(f"load {len(names)} adapters: {(time.perf_counter() - start) * 1000:.0f} ms")

    latencies = []
    for i in range(args.switches):
        name = names[i % len(names)] if len(names) > 1 else names[0]
        t0 = time.perf_counter()
        bank.switch(name)
        latencies.append((time.perf_counter() - t0) * 1000)
        if len(names) == 1:
            bank.active = None  # force a real set_adapter call each time
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[int(0.95 * len(latencies)) - 1]
    print(
        f"switch latency over {args.switches}: p50 {p50:.2f} ms, p95 {p95:.2f} ms (goal p50 <= 5)"
    )

    messages = [{"role": "user", "content": "Explain how to store timber boards in a workshop."}]
    input_ids = encode_chat(handle, messages)
    base, adapted = [], []
    for _ in range(args.runs):
        base.append(decode_speed(handle, bank, None, input_ids))
        adapted.append(decode_speed(handle, bank, names[0], input_ids))
    b, a = statistics.median(base), statistics.median(adapted)
    print(
        f"decode tok/s: adapter {names[0]} {a:.1f} vs base {b:.1f} (ratio {a / b:.2f}, goal >= 0.9)"
    )
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
