"""Benchmark: the project's streaming path against plain `model.generate`, in one run.

Run: `.venv/bin/python bench/generation.py [--runs 3] [--skip-conversion]`

Prints prefill and decode tokens/s of `assistant.runtime.generation.stream_chat` next to the same
figures for `model.generate` on the same ~400-token prompt with 128 new tokens (greedy), as
ratios (goal
>= 0.95: streaming adds no overhead); the base model's load time on a first run (with the one-time
GGUF conversion, in a temporary cache) and on later runs; and the peak RSS (llama.cpp on the same
weights, the default engine, is measured by bench/engine.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from assistant.runtime.generation import GenerationOptions, GenerationStats
from assistant.runtime.models import load_base_model
from assistant.runtime.torch_engine import encode_chat, generate_kwargs, stream_tokens
from assistant.settings import load_settings

NEW_TOKENS = 128
PASSAGE = (
    "Hypoglycemia, also called low blood glucose or low blood sugar, occurs when the level of "
    "glucose in your blood drops below normal. For many people with diabetes, that means a level "
    "of 70 milligrams per deciliter or less. Symptoms include shakiness, sweating, confusion and "
    "a fast heartbeat. Eat or drink 15 grams of a fast-acting carbohydrate and check again. "
)
LOAD_SNIPPET = (
    "import time, json; t = time.perf_counter();"
    "from assistant.settings import load_settings;"
    "from assistant.runtime.models import load_base_model;"
    "h = load_base_model(load_settings());"
    "print(json.dumps({'seconds': time.perf_counter() - t, 'load_seconds': h.load_seconds}))"
)


def prompt_messages(handle) -> list[dict[str, str]]:
    """A chat whose prompt is about 400 tokens, like a question with retrieved passages."""
    text = ""
    while len(handle.tokenizer(text)["input_ids"]) < 360:
        text += PASSAGE
    return [
        {"role": "system", "content": "Answer from the passages."},
        {"role": "user", "content": f"Passages:\n{text}\nQuestion: What is hypoglycemia?"},
    ]


def time_generate(handle, input_ids, options: GenerationOptions, new_tokens: int) -> float:
    kwargs = generate_kwargs(handle, options)
    kwargs.update(max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    start = time.perf_counter()
    with torch.inference_mode():
        handle.model.generate(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **kwargs
        )
    return time.perf_counter() - start


def plain_generate(handle, input_ids, options) -> tuple[float, float]:
    """(prefill tok/s, decode tok/s) of model.generate: a 1-token run times the prefill."""
    prefill_s = time_generate(handle, input_ids, options, 1)
    total_s = time_generate(handle, input_ids, options, NEW_TOKENS)
    n = input_ids.shape[-1]
    return n / prefill_s, (NEW_TOKENS - 1) / (total_s - prefill_s)


def streaming(handle, input_ids, options) -> tuple[float, float]:
    stats = GenerationStats()
    for _ in stream_tokens(handle, input_ids, options, stats=stats):
        pass
    assert stats.new_tokens == NEW_TOKENS, stats
    return stats.prompt_tokens / stats.first_token_s, stats.decode_tokens_per_s


def load_times(skip_conversion: bool) -> dict[str, float]:
    env = dict(os.environ)
    result: dict[str, float] = {}
    if not skip_conversion:
        with tempfile.TemporaryDirectory() as cache:
            env["ASSISTANT_CACHE_DIR"] = cache
            for label in ("first_load_with_conversion_s", "second_load_s"):
                out = subprocess.run(
                    [sys.executable, "-c", LOAD_SNIPPET],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result[label] = json.loads(out.stdout.strip().splitlines()[-1])["seconds"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-conversion", action="store_true")
    args = parser.parse_args()

    loaded = load_settings()
    handle = load_base_model(loaded)
    options = GenerationOptions.plain(
        max_new_tokens=NEW_TOKENS,
        temperature=0.0,
        repetition_penalty=1.0,
        extra={"min_new_tokens": NEW_TOKENS},
    )
    input_ids = encode_chat(handle, prompt_messages(handle))
    streaming(handle, input_ids, options)  # warm-up
    plain, stream = [], []
    for _ in range(args.runs):  # interleaved so both see the same machine state
        plain.append(plain_generate(handle, input_ids, options))
        stream.append(streaming(handle, input_ids, options))
    plain_prefill = statistics.median(p for p, _ in plain)
    plain_decode = statistics.median(d for _, d in plain)
    stream_prefill = statistics.median(p for p, _ in stream)
    stream_decode = statistics.median(d for _, d in stream)
    loads = load_times(args.skip_conversion)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, torch threads "
        f"{torch.get_num_threads()}, dtype {loaded.settings.models.dtype}"
    )
    print(
        f"prompt: {input_ids.shape[-1]} tokens, {NEW_TOKENS} new tokens, greedy, "
        f"median of {args.runs}"
    )
    print(
        f"prefill tok/s: streaming {stream_prefill:.0f} vs generate {plain_prefill:.0f} "
        f"(ratio {stream_prefill / plain_prefill:.2f}, goal >= 0.95)"
    )
    print(
        f"decode tok/s:  streaming {stream_decode:.1f} vs generate {plain_decode:.1f} "
        f"(ratio {stream_decode / plain_decode:.2f}, goal >= 0.95)"
    )
    for label, seconds in loads.items():
        print(f"{label}: {seconds:.1f} s (subprocess, includes imports)")
    print(f"in-process model load: {handle.load_seconds:.2f} s")
    print(f"peak RSS: {rss_mb:.0f} MB")
    print("llama.cpp on the same weights: bench/engine.py")


if __name__ == "__main__":
    main()
