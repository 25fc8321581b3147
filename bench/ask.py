"""Benchmark: the router's latency and its streaming overhead, against anchors in the same run.

Run: `.venv/bin/python bench/ask.py [--questions 5] [--generate 8] [--max-tokens 64] [--threads 0]`

Over the first in-scope questions of each pack's eval/qa.jsonl (5 per pack: 20 questions):
- routing + retrieval p50/p95 (`Router.route` over every pack, then the chosen pack's hybrid
  search; the query is embedded once), goal p50 <= 100 ms; the anchor is one raw embedder
  `encode` of the same question;
- time to first token p50 of `Router.stream` in auto mode (routing, retrieval, prompt, adapter
  switch, prefill), goal <= 2 s;
- decode tokens/s while the router answers vs. `assistant.runtime.generation.stream_chat` on
  the very same prompt (the messages the router built), runs interleaved, goal ratio >= 0.9.
  Both use the
  base model (`adapter=False`) so the ratio measures the router's own overhead; the answer speed
  with the pack's adapter, where one is trained, is printed beside it.
Before those, the routing targets over every question of every pack's eval/qa.jsonl: in-scope
questions routed to their own pack (goal >= 95 %), everyday off-topic questions declined (goal
>= 90 %), in-scope questions declined (goal <= 10 %), and other packs' questions routed to
their pack.
`--threads 0` (one per core, the shipped setting) is the default; `--threads 1` suits a box
with a busy neighbour, where two OpenMP threads make every step many times slower
(bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

EVERYDAY = {  # the off-topic questions of the eval sets that belong to no pack, and two more
    "Who holds the record for the men's 100 metres?",
    "What's the population of Canada?",
    "Can you solve this equation for me: 3x + 5 = 20?",
    "What year did the Berlin Wall fall?",
    "How do I knit a scarf?",
    "What are the best beaches in Greece?",
    "How do I bake chocolate chip cookies?",
    "Can you suggest a name for my goldfish?",
    "Will it rain in London this weekend?",
    "How do I unclog a kitchen sink?",
    "What's a good recipe for banana bread?",
    "Who won the 2018 World Cup?",
}


def routing_targets(router, packs) -> None:
    inside, everyday, other = [], [], []
    in_scope = {}
    for pack in packs:
        for line in pack.eval_file.read_text("utf-8").splitlines():
            row = json.loads(line)
            if not row.get("out_of_scope"):
                in_scope[row["question"]] = pack.name
    for pack in packs:
        for line in pack.eval_file.read_text("utf-8").splitlines():
            row = json.loads(line)
            got = router.route(row["question"]).pack
            if not row.get("out_of_scope"):
                inside.append((pack.name, got))
            elif row["question"] in EVERYDAY:
                everyday.append(got)
            elif row["question"] in in_scope:
                other.append((in_scope[row["question"]], got))
    everyday += [router.route(q).pack for q in ("What's a good recipe for banana bread?",)]
    everyday += [router.route(q).pack for q in ("Who won the 2018 World Cup?",)]
    own = sum(p == g for p, g in inside) / len(inside)
    declined_in = sum(g is None for _, g in inside) / len(inside)
    declined_ev = sum(g is None for g in everyday) / len(everyday)
    print(
        f"routing targets: in-scope to their own pack {own:.1%} of {len(inside)} (goal >= 95%),"
        f" everyday declined {declined_ev:.1%} of {len(everyday)} (goal >= 90%), in-scope"
        f" declined {declined_in:.1%} (goal <= 10%), other packs' questions to their pack"
        f" {sum(p == g for p, g in other)}/{len(other)}"
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=5, help="questions per pack")
    parser.add_argument("--generate", type=int, default=8, help="questions answered (of those)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: one per core)")
    args = parser.parse_args()
    os.environ["ASSISTANT_THREADS"] = str(args.threads)

    import assistant.answering.compose as compose_module
    import assistant.answering.router as router_module
    from assistant.packs.locate import list_packs
    from assistant.runtime.bases import pack_adapter
    from assistant.runtime.generation import GenerationOptions, GenerationStats
    from assistant.runtime.models import load_base_model, load_embedder
    from assistant.runtime.torch_engine import stream_chat
    from assistant.settings import load_settings

    loaded = load_settings()
    packs = list_packs()
    questions = []
    for pack in packs:
        rows = [json.loads(line) for line in pack.eval_file.read_text("utf-8").splitlines()]
        picked = [r["question"] for r in rows if not r.get("out_of_scope")][: args.questions]
        questions += [(pack.name, q) for q in picked]

    started = time.perf_counter()
    base = load_base_model(loaded)
    embedder = load_embedder(loaded)
    router = router_module.Router(loaded, packs=packs)
    router.route("warm up every pack's index")
    print(f"models and indexes loaded in {time.perf_counter() - started:.1f} s")
    routing_targets(router, packs)

    # ----- routing + retrieval vs one raw encode -----------------------------------------------
    route_ms, anchor_ms, right = [], [], 0
    for pack, question in questions:
        t0 = time.perf_counter()
        embedder.encode([question], normalize_embeddings=True, show_progress_bar=False)
        anchor_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        decision = router.route(question)
        if decision.pack:
            handle = router.handle(decision.pack)
            handle.index.search(question, k=handle.config.retrieval.k)
        route_ms.append((time.perf_counter() - t0) * 1000)
        right += decision.pack == pack
    p50, anchor = statistics.median(route_ms), statistics.median(anchor_ms)
    print(
        f"routing + retrieval over {len(packs)} packs, {len(questions)} questions:"
        f" p50 {p50:.1f} ms, p95 {pct(route_ms, 0.95):.1f} ms (goal p50 <= 100 ms:"
        f" {p50 / 100:.2f} of it); raw encode p50 {anchor:.1f} ms (ratio {p50 / anchor:.2f});"
        f" routed to their own pack: {right}/{len(questions)}"
    )

    # ----- first token and decode speed vs stream_chat on the same prompt -----------------------
    built: list = []
    real_build = compose_module.build_messages

    def recording(*a, **k):
        messages = real_build(*a, **k)
        built.append(messages)
        return messages

    compose_module.build_messages = recording
    per_pack = max(1, args.generate // len(packs))
    chosen: list[tuple[str, str]] = []
    for pack in packs:
        chosen += [(name, q) for name, q in questions if name == pack.name][:per_pack]
    first_ms, raw_first_ms, answer_tps, raw_tps, adapter_tps = [], [], [], [], []
    for _pack, question in chosen:
        answer = router.answer(question, None, adapter=False, max_tokens=args.max_tokens)
        if answer.declined or not answer.timings.answer_tokens:
            print(f"  skipped (declined): {question[:60]}")
            continue
        first_ms.append(answer.timings.first_token_ms)
        answer_tps.append(answer.timings.tokens_per_s)
        config = router.handle(answer.pack).config
        # the raw baseline prefills the whole prompt: no reuse of the system turn's cache
        options = GenerationOptions.from_settings(
            config.generation, max_new_tokens=args.max_tokens, reuse_system_prefix=False
        )
        stats = GenerationStats()
        for _ in stream_chat(base, built[-1], options, stats=stats):
            pass
        raw_tps.append(stats.decode_tokens_per_s)
        raw_first_ms.append(stats.first_token_s * 1000)
        if pack_adapter(router.handle(answer.pack).pack, router.loaded).trained:
            with_adapter = router.answer(question, answer.pack, max_tokens=args.max_tokens)
            if with_adapter.adapter:
                adapter_tps.append(with_adapter.timings.tokens_per_s)
        print(
            f"  {answer.pack:13s} first token {answer.timings.first_token_ms:6.0f} ms,"
            f" {answer.timings.prompt_tokens} prompt tokens, {answer.timings.answer_tokens} new,"
            f" answer {answer.timings.tokens_per_s:5.1f} tok/s,"
            f" raw {stats.decode_tokens_per_s:5.1f}"
        )
    compose_module.build_messages = real_build
    if first_ms:
        ftt = statistics.median(first_ms)
        ratio = statistics.median(answer_tps) / statistics.median(raw_tps)
        print(
            f"time to first token (auto mode) p50 {ftt:.0f} ms (goal <= 2000 ms:"
            f" {ftt / 2000:.2f} of it), p95 {pct(first_ms, 0.95):.0f} ms; stream_chat's first"
            f" token on the same prompts (prefill alone) p50 {statistics.median(raw_first_ms):.0f}"
            f" ms (ratio {ftt / statistics.median(raw_first_ms):.2f})"
        )
        print(
            f"decode tokens/s: router p50 {statistics.median(answer_tps):.1f}, stream_chat on the"
            f" same prompts p50 {statistics.median(raw_tps):.1f}: ratio {ratio:.2f} (goal >= 0.9)"
        )
    if adapter_tps:
        print(f"with the pack's adapter: p50 {statistics.median(adapter_tps):.1f} tok/s")
    load = os.getloadavg()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch threads {args.threads},"
        f" load average {load[0]:.1f} / {load[1]:.1f}"
    )


if __name__ == "__main__":
    main()
