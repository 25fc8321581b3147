"""Benchmark: decode speed and time to first token of the answer path against llama.cpp on the
same weights (issue [10/10]'s anchor), in one run.

Run: `.venv/bin/python bench/llama_anchor.py --setup` once (creates the benchmark's own venv
under the cache folder and compiles `llama-cpp-python==0.3.36` there: ~5-10 min; it is never a
dependency of `assistant`), then `.venv/bin/python bench/llama_anchor.py [--new-tokens 96]`.

One eval question per pack; each prompt is built exactly as `assistant ask` builds it (persona,
the default k retrieved passages, chat template). The same prompt token ids go to:
- `assistant`: transformers through `stream_tokens`, with the pack's adapter active and the
  system-turn KV cache warm (as `ask` answers), and the base alone; for each `--weights`
  (float32, and fp16/int8 = `models.quantize = "fp16"`/`"int8"`);
- `llama.cpp`: the packaged SmolLM2 Q4_1 GGUF that the converted model comes from, greedy, in a
  subprocess of the benchmark venv, 2 threads; once alone (the anchor, before and after the
  rest) and once with each pack's adapter exported as a GGUF LoRA (`assistant pack
  gguf-adapter`), switched per prompt;
- `assistant` with `models.backend = "llama_cpp"` (when this venv has the `llama` extra): the
  F16 re-encoding of that GGUF with the pack's GGUF LoRA, through the backend's own stream;
  once right after another question of the same pack (system turn reused, as in a chat with
  one pack) and once with an empty KV cache (full prefill, as a process's first answer).
All produce exactly `--new-tokens` tokens (end of turn ignored), so decode rates compare like
for like. Goals: decode with the adapter >= 0.5x llama.cpp; first token p50 <= 1 s. Results go
to bench/out/llama_anchor.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LLAMA_CPP = "llama-cpp-python==0.3.36"

# Runs inside the benchmark venv: prompts (token ids) on stdin, timings on stdout.
LLAMA_SCRIPT = r"""
import ctypes, json, sys, time
import llama_cpp
from llama_cpp import Llama
job = json.load(sys.stdin)
llm = Llama(model_path=job["gguf"], n_ctx=2048, n_threads=job["threads"], n_batch=512,
            verbose=False)
loras = [llama_cpp.llama_adapter_lora_init(llm.model, path.encode()) if path else None
         for path in job["loras"]]
results = []
for tokens, lora in zip([job["prompts"][0]] + job["prompts"], loras[:1] + loras):  # warm-up
    adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(lora) if lora else None
    scales = (ctypes.c_float * 1)(1.0) if lora else None
    assert llama_cpp.llama_set_adapters_lora(llm.ctx, adapters, 1 if lora else 0, scales) == 0
    llm.reset()
    start = time.perf_counter()
    first = None
    count = 0
    for _token in llm.generate(tokens, temp=0.0, top_k=1, reset=True):
        count += 1
        if first is None:
            first = time.perf_counter() - start
        if count == job["new_tokens"]:
            break
    total = time.perf_counter() - start
    results.append({"ttft_ms": first * 1000, "decode_tok_s": (count - 1) / (total - first)})
print(json.dumps(results[1:]))
"""


def bench_venv() -> Path:
    from assistant.settings import cache_dir, load_settings

    return cache_dir(load_settings().settings) / "bench" / "llama-venv"


def setup() -> None:
    venv = bench_venv()
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", LLAMA_CPP], check=True)
    print(f"llama.cpp ready in {venv}")


def prompts(loaded, packs, nth: int = 0) -> list[tuple[str, list[dict[str, str]]]]:
    """One in-scope eval question per pack (the nth), as the messages `ask` would send."""
    from assistant.answering.prompts import PromptPassage, build_messages
    from assistant.evaluation.run import load_cases
    from assistant.knowledge import open_index
    from assistant.packs.format import load_pack_config

    chosen = []
    for pack in packs:
        config = load_pack_config(pack, loaded)
        cases, _ = load_cases(pack.eval_file)
        case = [c for c in cases if not c.out_of_scope][nth]
        hits = open_index(pack, loaded).search(case.question, k=config.retrieval.k)
        passages = [PromptPassage(h.text, h.path, h.section or "") for h in hits]
        words = config.retrieval.passage_words
        chosen.append(
            (pack.name, build_messages(config.persona, case.question, passages, [], words))
        )
    return chosen


def assistant_side(loaded, packs, jobs, new_tokens: int, adapter: bool) -> list[dict]:
    from assistant.runtime.adapters import bank_for
    from assistant.runtime.generation import GenerationOptions, GenerationStats
    from assistant.runtime.models import load_base_model
    from assistant.runtime.torch_engine import encode_chat, stream_tokens

    base = load_base_model(loaded)
    bank = bank_for(base)
    by_name = {p.name: p for p in packs}
    options = GenerationOptions.plain(
        max_new_tokens=new_tokens,
        repetition_penalty=1.0,
        reuse_system_prefix=True,
        extra={"min_new_tokens": new_tokens},
    )
    rows = []
    for warm in (True, False):  # the first pass fills the system-turn caches
        for name, messages in jobs:
            ids = encode_chat(base, messages)
            use = bank.load(by_name[name], loaded) if adapter else None
            stats = GenerationStats()
            with bank.using(use) as model:
                for _ in stream_tokens(base, ids, options, stats=stats, model=model):
                    pass
            if not warm:
                rows.append(
                    {
                        "pack": name,
                        "prompt_tokens": stats.prompt_tokens,
                        "ttft_ms": stats.first_token_s * 1000,
                        "decode_tok_s": stats.decode_tokens_per_s,
                    }
                )
    return rows


def backend_side(loaded, packs, jobs, warm_jobs, new_tokens: int) -> dict[str, list[dict]]:
    """`assistant` with `models.backend = "llama_cpp"`: each pack's prompt right after another
    question of the same pack (a chat with one pack: the system turn's KV cache is reused), and
    again with the KV cache emptied first (a full prefill, as the first answer of a process)."""
    from assistant.runtime import llama_cpp as llama_backend
    from assistant.runtime.engine import CONTEXT_TOKENS
    from assistant.runtime.generation import GenerationOptions, GenerationStats, chat_token_ids

    os.environ["ASSISTANT_BACKEND"] = "llama_cpp"
    from assistant.settings import load_settings

    variant = load_settings()
    del os.environ["ASSISTANT_BACKEND"]
    engine = llama_backend.engine_for(variant, CONTEXT_TOKENS)
    by_name = {p.name: p for p in packs}
    rows: dict[str, list[dict]] = {"reused": [], "full": []}

    def run(name: str, messages, cold: bool) -> dict:
        adapter = engine.load_adapter(by_name[name])
        options = GenerationOptions.plain(
            max_new_tokens=new_tokens,
            repetition_penalty=1.0,
            reuse_system_prefix=not cold,
            extra={"min_new_tokens": new_tokens},
        )
        stats = GenerationStats()
        ids = chat_token_ids(engine.tokenizer, messages)
        for _ in llama_backend.stream_tokens(engine, ids, options, adapter=adapter, stats=stats):
            pass
        return {
            "pack": name,
            "prompt_tokens": stats.prompt_tokens,
            "ttft_ms": stats.first_token_s * 1000,
            "decode_tok_s": stats.decode_tokens_per_s,
        }

    run(*jobs[0], cold=True)  # warm-up: loads the adapters' first use and llama.cpp's buffers
    for (name, messages), (_, warm) in zip(jobs, warm_jobs, strict=True):
        run(name, warm, cold=False)
        rows["reused"].append(run(name, messages, cold=False))
        rows["full"].append(run(name, messages, cold=True))
    return rows


def prompt_token_lists(loaded, jobs) -> list[list[int]]:
    from assistant.runtime.models import load_base_model
    from assistant.runtime.torch_engine import encode_chat

    base = load_base_model(loaded)
    return [encode_chat(base, messages)[0].tolist() for _, messages in jobs]


def gguf_adapters(loaded, packs) -> dict[str, str]:
    """Each pack's adapter exported for llama.cpp (`assistant pack gguf-adapter`)."""
    from assistant.runtime.gguf_lora import export_pack_adapter
    from assistant.settings import cache_dir

    folder = cache_dir(loaded.settings) / "bench" / "gguf-lora"
    return {p.name: str(export_pack_adapter(p, loaded, folder / f"{p.name}.gguf")) for p in packs}


def llama_side(
    token_lists: list[list[int]], new_tokens: int, threads: int, loras: list[str | None]
) -> list[dict]:
    """llama.cpp on the packaged GGUF; each prompt with the GGUF LoRA beside it in `loras`, if
    any."""
    from assistant.runtime.models import packaged_gguf

    job = {"gguf": str(packaged_gguf()), "prompts": token_lists, "new_tokens": new_tokens,
           "threads": threads, "loras": loras}  # fmt: skip
    python = bench_venv() / "bin" / "python"
    done = subprocess.run(
        [str(python), "-c", LLAMA_SCRIPT],
        input=json.dumps(job),
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit(f"llama.cpp side failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


def summary(rows: list[dict]) -> dict:
    return {
        "ttft_p50_ms": round(statistics.median(r["ttft_ms"] for r in rows), 1),
        "decode_tok_s": round(statistics.median(r["decode_tok_s"] for r in rows), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", action="store_true", help="create the llama.cpp venv")
    parser.add_argument("--new-tokens", type=int, default=96)
    parser.add_argument(
        "--weights",
        default="float32,fp16,int8",
        help="assistant variants (default: %(default)s; '' for none)",
    )
    args = parser.parse_args()
    if args.setup:
        setup()
        return
    if not (bench_venv() / "bin" / "python").exists():
        sys.exit("bench/llama_anchor.py: run it with --setup first (compiles llama.cpp)")

    import torch

    from assistant.packs.locate import list_packs
    from assistant.settings import load_settings

    loaded = load_settings()
    threads = torch.get_num_threads()
    packs = list_packs()
    jobs = prompts(loaded, packs)
    token_lists = prompt_token_lists(loaded, jobs)
    no_loras: list[str | None] = [None] * len(jobs)
    exported = gguf_adapters(loaded, packs)
    pack_loras: list[str | None] = [exported[name] for name, _ in jobs]
    llama = llama_side(token_lists, args.new_tokens, threads, no_loras)
    sides: dict[str, list[dict]] = {
        "llama.cpp Q4_1 + pack GGUF LoRA": llama_side(
            token_lists, args.new_tokens, threads, pack_loras
        )
    }
    for weights in filter(None, args.weights.split(",")):
        os.environ["ASSISTANT_QUANTIZE"] = weights if weights in ("fp16", "int8") else "none"
        variant = load_settings()
        sides[f"assistant {weights} + adapter"] = assistant_side(
            variant, packs, jobs, args.new_tokens, adapter=True
        )
        sides[f"assistant {weights} base alone"] = assistant_side(
            variant, packs, jobs, args.new_tokens, adapter=False
        )
    if importlib.util.find_spec("llama_cpp") is not None:
        product = backend_side(loaded, packs, jobs, prompts(loaded, packs, nth=1), args.new_tokens)
        sides["assistant llama_cpp backend + adapter, system turn reused"] = product["reused"]
        sides["assistant llama_cpp backend + adapter, full prefill"] = product["full"]
    else:
        print("llama-cpp-python is not installed in this venv: no row for the llama_cpp backend")
    llama_again = llama_side(token_lists, args.new_tokens, threads, no_loras)  # before and after

    anchor = summary(llama + llama_again)
    rows = {"llama.cpp Q4_1 (anchor)": anchor} | {k: summary(v) for k, v in sides.items()}
    for row in rows.values():
        row["decode_ratio"] = round(row["decode_tok_s"] / anchor["decode_tok_s"], 3)
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}",
        "load_average": os.getloadavg(),
        "threads": threads,
        "new_tokens": args.new_tokens,
        "prompt_tokens": [len(t) for t in token_lists],
        "rows": rows,
        "per_prompt": {"llama": llama + llama_again, **sides},
    }
    print(f"{'':60} {'TTFT p50':>9} {'decode tok/s':>12} {'ratio':>6}")
    for name, row in rows.items():
        print(
            f"{name:60} {row['ttft_p50_ms']:>7.0f}ms {row['decode_tok_s']:>12}"
            f" {row['decode_ratio']:>6}"
        )
    out = ROOT / "bench" / "out" / "llama_anchor.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
