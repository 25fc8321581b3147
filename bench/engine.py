"""Benchmark: the default llama.cpp engine against raw llama.cpp on the same weights and the same
prompts, in one run (issue [2/7]).

Run: `.venv/bin/python bench/engine.py [--per-pack 3] [--new-tokens 96] [--cold-runs 3]`

- **Decode.** For the first in-scope eval questions of each pack, the prompt `assistant ask`
  builds (routing, retrieval, persona, passages, chat template) goes through the engine's
  `generate` with the pack's adapter and every rule of the answer path (repetition penalty,
  decline margin, repeat guard), for exactly `--new-tokens` tokens (the end of turn held back);
  and the same token ids go straight to the same xllamacpp server with the same adapter, greedy,
  no rules: raw llama.cpp, the anchor. Runs interleave; decode tok/s medians and their ratio
  (goal >= 0.9).
- **Time to first token** of `Router.stream` (routing, retrieval, prompt, prefill, the decline
  margin's first-token request): right after another question of the same pack (its system turn
  in llama.cpp's prompt cache, its passages not; goal p50 <= 0.5 s), and from an empty cache (the
  server rebuilt before each; goal p50 <= 1.5 s), next to raw llama.cpp's time to first token
  on the same prompt from an empty cache.
- **First text shown** (issue [4/7]): with the system turn cached as above (an empty cache,
  then another question of the pack), each question answered in full under the default
  `grounding = "strict"`; from its timings, the engine's first token and the first text shown
  (a sentence is shown once it is complete and the claim check has passed it, or the evidence
  when none passes). Before the check, text was shown token by token, so the first token was
  the first text; the ratio is the price of checking (goal <= 1.2x). `--only-shown` runs this
  part alone.
- **Cold start.** `assistant ask PACK QUESTION` in a fresh process: the time until the answer's
  first byte on stdout (goal <= 2 s), next to `python -c pass`; and, in another fresh process,
  each phase timed on its own (imports, tokenizer, embedder, model load) and whether torch was
  imported (answering should not need it).
Results go to bench/out/engine.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSISTANT = str(Path(sys.executable).parent / "assistant")

PHASES = r"""
import json, sys, time
marks, start = {}, time.perf_counter()
def mark(name):
    global start
    now = time.perf_counter(); marks[name] = round(now - start, 3); start = now
import assistant.cli
mark("import the CLI")
from assistant.answering.router import Router
from assistant.settings import load_settings
loaded = load_settings(); router = Router(loaded)
mark("import the answer path")
router.tokenizer(); mark("load the tokenizer")
router.embedding().model; mark("load the embedder")
router.warm_up(); mark("load the model and 4 adapters")
marks["torch imported"] = "torch" in sys.modules
print(json.dumps(marks))
"""


def questions(per_pack: int) -> list[tuple[str, str]]:
    from assistant.evaluation.cases import load_cases
    from assistant.packs.locate import list_packs

    found = []
    for pack in list_packs():
        cases, _ = load_cases(pack.eval_file)
        found += [(pack.name, c.question) for c in cases if not c.out_of_scope][:per_pack]
    return found


def prompt_of(router, pack: str, question: str) -> tuple[list[int], object, str]:
    """The token ids, options and adapter `assistant ask` generates with (captured from a
    one-token answer)."""
    generator = router.engine()
    captured = {}
    real = generator.generate

    def capture(ids, options, *, adapter=None, cancel=None):
        captured.update(ids=list(ids), options=options, adapter=adapter)
        return real(ids, options, adapter=adapter, cancel=cancel)

    generator.generate = capture
    try:
        router.answer(question, pack, max_tokens=1)
    finally:
        del generator.generate
    return captured["ids"], captured["options"], captured["adapter"]


def raw_llama(engine, ids: list[int], adapter: str | None, new_tokens: int) -> dict:
    """Raw llama.cpp on the same server: greedy, no rules, exactly `new_tokens` tokens."""
    times: list[float] = []
    request = {
        "prompt": ids, "max_tokens": new_tokens, "temperature": 0.0, "ignore_eos": True,
        "stream": True, "cache_prompt": True, "lora": engine.lora(adapter),
    }  # fmt: skip
    start = time.perf_counter()
    with engine.lock:
        engine.server().handle_completions(request, lambda chunk: times.append(time.perf_counter()))
    first, last = times[0], times[-1]
    return {"first_token_s": first - start, "decode": (new_tokens - 1) / (last - first)}


def ours(generator, ids, options, adapter, new_tokens: int) -> dict:
    from dataclasses import replace

    fixed = replace(options, max_new_tokens=new_tokens, extra={"min_new_tokens": new_tokens})
    stream = generator.generate(ids, fixed, adapter=adapter)
    stream.text()
    assert stream.stats.new_tokens == new_tokens, stream.stats
    return {"first_token_s": stream.stats.first_token_s, "decode": stream.stats.decode_tokens_per_s}


def first_token(router, pack: str, question: str) -> float:
    """Seconds until the engine's first token (from the answer's timings: the text shown waits
    for whole checked sentences)."""
    answer = router.answer(question, pack, max_tokens=8, grounding="off")
    return answer.timings.first_token_ms / 1000


def first_shown(router, pack: str, question: str) -> tuple[float, float]:
    """(engine's first token, first text shown) in seconds, for one whole strict answer."""
    timings = router.answer(question, pack, grounding="strict").timings
    return timings.first_token_ms / 1000, timings.first_shown_ms / 1000


def cold_start(pack: str, question: str) -> float:
    start = time.perf_counter()
    process = subprocess.Popen(
        [ASSISTANT, "ask", pack, question, "--max-tokens", "8"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None
    process.stdout.read(1)
    elapsed = time.perf_counter() - start
    process.communicate()
    return elapsed


def python_start() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-pack", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=96)
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--only-shown", action="store_true", help="only the first text shown")
    args = parser.parse_args()

    from assistant.answering.router import Router
    from assistant.settings import load_settings

    loaded = load_settings()
    if loaded.settings.models.backend != "llama_cpp":
        sys.exit("this benchmark measures models.backend = 'llama_cpp'")
    router = Router(loaded)
    router.warm_up()
    generator = router.engine()
    engine = generator.engine
    asked = questions(args.per_pack)
    prompts = [(pack, q, *prompt_of(router, pack, q)) for pack, q in asked]

    def p50(values: list[float]) -> float:
        return statistics.median(values)

    engine_first, shown = [], []
    for number, (pack, question, *_rest) in enumerate(prompts):
        others = [q for p, q, *_ in prompts[number + 1 :] + prompts[:number] if p == pack]
        # an empty cache, then another question of the pack: the server's prompt cache must
        # not hold this question from an earlier run
        engine.drop_cache()
        first_token(router, pack, others[0] if others else f"What else? {question}")
        token_s, shown_s = first_shown(router, pack, question)
        engine_first.append(token_s)
        shown.append(shown_s)
    print(f"first text shown p50, system turn cached, strict: {p50(shown):.2f} s vs the engine's"
          f" first token {p50(engine_first):.2f} s -> {p50(shown) / p50(engine_first):.2f}x"
          " (goal <= 1.2)")  # fmt: skip
    if args.only_shown:
        return

    decode_ours, decode_raw = [], []
    for _pack, _q, ids, options, adapter in prompts:
        decode_raw.append(raw_llama(engine, ids, adapter, args.new_tokens)["decode"])
        decode_ours.append(ours(generator, ids, options, adapter, args.new_tokens)["decode"])

    warm, cold, raw_cold = [], [], []
    for number, (pack, question, ids, _options, adapter) in enumerate(prompts):
        # another question of the same pack first: its system turn is cached, its passages not
        others = [q for p, q, *_ in prompts[number + 1 :] + prompts[:number] if p == pack]
        first_token(router, pack, others[0] if others else f"What else? {question}")
        warm.append(first_token(router, pack, question))
        engine.drop_cache()
        cold.append(first_token(router, pack, question))
        engine.drop_cache()
        raw_cold.append(raw_llama(engine, ids, adapter, 2)["first_token_s"])

    pack, question = asked[0]
    cold_process = [cold_start(pack, question) for _ in range(args.cold_runs)]
    python = statistics.median(python_start() for _ in range(3))
    phases = json.loads(
        subprocess.run([sys.executable, "-c", PHASES], capture_output=True, text=True, check=True)
        .stdout.strip()
        .splitlines()[-1]
    )

    rows = {
        "decode_tok_s": {"assistant": p50(decode_ours), "raw llama.cpp": p50(decode_raw)},
        "first_token_warm_s": p50(warm),
        "first_token_empty_cache_s": p50(cold),
        "raw_first_token_empty_cache_s": p50(raw_cold),
        "first_shown_strict_s": p50(shown),
        "engine_first_token_same_answers_s": p50(engine_first),
        "cold_process_first_byte_s": p50(cold_process),
        "python_start_s": python,
        "phases_s": phases,
    }
    prompt_tokens = [len(ids) for _p, _q, ids, _o, _a in prompts]
    span = f"{min(prompt_tokens)}-{max(prompt_tokens)}"
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}; {len(prompts)} prompts,"
          f" {span} tokens, {args.new_tokens} new tokens")  # fmt: skip
    ratio = p50(decode_ours) / p50(decode_raw)
    print(f"decode tok/s: assistant {p50(decode_ours):.1f} vs raw llama.cpp {p50(decode_raw):.1f}"
          f" -> {ratio:.2f} (goal >= 0.9)")  # fmt: skip
    print(f"first token p50, system turn cached: {p50(warm):.2f} s (goal <= 0.5)")
    print(f"first token p50, empty cache: {p50(cold):.2f} s (goal <= 1.5); raw llama.cpp"
          f" {p50(raw_cold):.2f} s -> {p50(cold) / p50(raw_cold):.2f}x")  # fmt: skip
    print(f"cold process, first answer byte p50: {p50(cold_process):.2f} s (goal <= 2);"
          f" python -c pass {python:.2f} s")  # fmt: skip
    print("fresh-process phases:", ", ".join(f"{k} {v}" for k, v in phases.items()))
    out = ROOT / "bench" / "out" / "engine.json"
    out.parent.mkdir(exist_ok=True)
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform(), **rows}
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
