"""Benchmark: inference settings of the answer path, side by side in one run.

Run: `.venv/bin/python bench/speed.py [--questions 2] [--recall 6] [--max-tokens 64]`

For each configuration (weights x torch threads; weights float32, bfloat16, or
fp16/int8 = float32 with `models.quantize = "fp16"`/`"int8"`) the same questions go through
`Router.stream` with the pack's adapter active, the default k passages and the system-prefix
KV cache warm: time to first token p50 (goal <= 1 s) and decode tokens/s. The first
configuration (float32, one thread per core: the shipped default) is the anchor; every other
row prints its ratio to it. Quality: `answer_fact_recall` in generate mode (the model's own
words, no quoted evidence) on `--recall` questions per pack, spread over each eval file, for
each weights variant against float32 (goal: within 1 point), and the share of answers that are
identical to float32's.
Peak RSS of the process is printed at the end. Results go to bench/out/speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIGS = "float32:2,fp16:2,int8:2,float32:1,fp16:1,bfloat16:2"


def router_for(weights: str):
    from assistant.answering.router import Router
    from assistant.packs.locate import list_packs
    from assistant.settings import load_settings

    os.environ["ASSISTANT_DTYPE"] = "bfloat16" if weights == "bfloat16" else "float32"
    os.environ["ASSISTANT_QUANTIZE"] = weights if weights in ("fp16", "int8") else "none"
    loaded = load_settings()
    return Router(loaded, packs=list_packs())


def questions_of(pack, count: int) -> list:
    from assistant.evaluation.run import load_cases, sample_cases

    cases, _ = load_cases(pack.eval_file)
    inside = [c for c in cases if not c.out_of_scope]
    return sample_cases(inside, count)


def speed(router, questions, max_tokens: int) -> dict:
    ttft, decode = [], []
    for pack, case in questions:
        start = time.perf_counter()
        first = None
        stream = router.stream(case.question, pack, max_tokens=max_tokens, mode="generate")
        for _piece in stream:
            if first is None:
                first = time.perf_counter() - start
        decode.append(stream.answer.timings.tokens_per_s)
        ttft.append((first or 0.0) * 1000)
    return {
        "ttft_p50_ms": round(statistics.median(ttft), 1),
        "ttft_max_ms": round(max(ttft), 1),
        "decode_tok_s": round(statistics.median(decode), 2),
    }


def recall(router, questions, max_tokens: int) -> tuple[float, list[str]]:
    from assistant.text import fact_in

    found, total, texts = 0, 0, []
    for pack, case in questions:
        answer = router.answer(case.question, pack, max_tokens=max_tokens, mode="generate")
        texts.append(answer.answer)
        found += sum(fact_in(fact, answer.answer) for fact in case.facts)
        total += len(case.facts)
    return found / max(1, total), texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=2, help="speed questions per pack")
    parser.add_argument("--recall", type=int, default=6, help="recall questions per pack (0: skip)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument(
        "--configs",
        default=DEFAULT_CONFIGS,
        help="weights:threads, comma-separated; the first is the anchor (default: %(default)s)",
    )
    args = parser.parse_args()
    configs = [(w, int(t)) for w, t in (item.split(":") for item in args.configs.split(","))]

    import torch

    from assistant.packs.locate import list_packs

    packs = list_packs()
    timed = [(p.name, c) for p in packs for c in questions_of(p, args.questions)]
    scored = (
        [(p.name, c) for p in packs for c in questions_of(p, args.recall)] if args.recall else []
    )
    variants = list(dict.fromkeys(w for w, _ in configs))
    routers = {weights: router_for(weights) for weights in variants}
    for router in routers.values():  # load models, indexes, adapters; warm the prefix caches
        speed(router, timed, 4)

    rows = []
    for weights, threads in configs:
        torch.set_num_threads(threads)
        row = {
            "weights": weights,
            "threads": threads,
            **speed(routers[weights], timed, args.max_tokens),
        }
        rows.append(row)
        print(row, flush=True)
    anchor = rows[0]
    for row in rows:
        row["ttft_ratio"] = round(row["ttft_p50_ms"] / anchor["ttft_p50_ms"], 3)
        row["decode_ratio"] = round(row["decode_tok_s"] / anchor["decode_tok_s"], 3)

    torch.set_num_threads(2)
    quality: dict[str, float] = {}
    texts: dict[str, list[str]] = {}
    for weights, router in routers.items() if scored else ():
        quality[weights], texts[weights] = recall(router, scored, 96)
    reference = texts.get(variants[0], [])
    same = {w: sum(a == b for a, b in zip(reference, t, strict=True)) for w, t in texts.items()}

    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}",
        "load_average": os.getloadavg(),
        "questions_timed": len(timed),
        "max_tokens": args.max_tokens,
        "rows": rows,
        "recall_questions": len(scored),
        "answer_fact_recall": {k: round(v, 3) for k, v in quality.items()},
        "identical_to_anchor": {k: f"{v}/{len(scored)}" for k, v in same.items()},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }
    print(f"{'weights':10} {'threads':>7} {'TTFT p50':>9} {'ratio':>6} {'decode':>7} {'ratio':>6}")
    for r in rows:
        print(
            f"{r['weights']:10} {r['threads']:>7} {r['ttft_p50_ms']:>7.0f}ms {r['ttft_ratio']:>6}"
            f" {r['decode_tok_s']:>7} {r['decode_ratio']:>6}"
        )
    for weights, value in quality.items():
        print(
            f"answer_fact_recall (generate mode, {len(scored)} questions) {weights}: {value:.3f};"
            f" answers identical to {variants[0]}: {same[weights]}/{len(scored)}"
        )
    print(f"peak RSS {report['peak_rss_mb']} MB ({len(routers)} models loaded)")
    out = ROOT / "bench" / "out" / "speed.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
