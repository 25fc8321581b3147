"""Probe: which linear layers can be int8 or fp16 without changing what the adapters say.

Run: `.venv/bin/python bench/quant_agreement.py [--questions 6] [--tokens 64]`

The float32 model with all four adapters answers `--questions` in-scope eval questions per
pack (greedy, the prompt `ask` builds). Each variant then reads the same prompt and float32
answer in one forward pass (teacher forcing) with the pack's adapter active; the figures are the
share of answer positions where the variant's top token equals float32's (first token and all
positions), and the forward pass time as a ratio to float32's in the same run. A variant that
agrees less than ~0.95 changes the answers' wording (and, on contracts, their structure).
Results go to bench/out/quant_agreement.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADAPTED_FROM = 20  # the packs train LoRA in the top 10 of SmolLM2-135M's 30 layers


def _layer(name: str) -> int:
    parts = name.split(".")
    at = parts.index("layers") + 1 if "layers" in parts else len(parts)
    return int(parts[at]) if at < len(parts) and parts[at].isdigit() else -1


def _projection(name: str) -> str:
    return name.removesuffix(".base_layer").rsplit(".", 1)[-1]


# variant -> which linear layers stay float (None: no quantization at all)
VARIANTS = {
    "float32": None,
    "int8 all": lambda name: False,
    "int8 mlp only": lambda name: _projection(name) not in ("gate_proj", "up_proj", "down_proj"),
    "int8 below adapters": lambda name: _layer(name) >= ADAPTED_FROM,
    # down_proj reads the MLP's activations, where small LMs keep their outliers; per-tensor
    # activation scales lose the rest of the row to one outlier
    "int8 except down_proj": lambda name: _projection(name) == "down_proj",
    "fp16 weights (fbgemm)": lambda name: False,
}


def load_with_adapters(loaded, packs):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from assistant.runtime.bases import pack_adapter
    from assistant.runtime.models import resolve_base_path

    model = AutoModelForCausalLM.from_pretrained(resolve_base_path(loaded)).eval()
    first = str(pack_adapter(packs[0], loaded).dir)
    peft = PeftModel.from_pretrained(model, first, adapter_name=packs[0].name)
    for pack in packs[1:]:
        peft.load_adapter(str(pack_adapter(pack, loaded).dir), adapter_name=pack.name)
    return model, peft.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=6, help="per pack")
    parser.add_argument("--tokens", type=int, default=64, help="float32 answer length")
    parser.add_argument("--variants", help="comma-separated names (default: all)")
    args = parser.parse_args()

    import torch

    from assistant.answering.prompts import PromptPassage, build_messages
    from assistant.evaluation.run import load_cases, sample_cases
    from assistant.knowledge import open_index
    from assistant.packs.format import load_pack_config
    from assistant.packs.locate import list_packs
    from assistant.runtime.models import load_base_model
    from assistant.runtime.quantization import QuantizedLinears
    from assistant.settings import load_settings

    loaded = load_settings()
    tokenizer = load_base_model(loaded).tokenizer
    packs = list_packs()
    jobs = []
    for pack in packs:
        config = load_pack_config(pack, loaded)
        index = open_index(pack, loaded)
        cases, _ = load_cases(pack.eval_file)
        for case in sample_cases([c for c in cases if not c.out_of_scope], args.questions):
            hits = index.search(case.question, k=config.retrieval.k)
            passages = [PromptPassage(h.text, h.path, h.section or "") for h in hits]
            messages = build_messages(
                config.persona, case.question, passages, [], config.retrieval.passage_words
            )
            ids = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )["input_ids"]
            jobs.append((pack.name, ids))

    model, peft = load_with_adapters(loaded, packs)
    sequences = []
    with torch.inference_mode():
        for name, ids in jobs:
            peft.set_adapter(name)
            out = peft.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.tokens,
                do_sample=False, pad_token_id=tokenizer.eos_token_id,
            )  # fmt: skip
            sequences.append((name, out, ids.shape[-1]))

    rows = {}
    chosen = args.variants.split(",") if args.variants else list(VARIANTS)
    for variant in ["float32", *[v for v in chosen if v != "float32"]]:
        keep_float = VARIANTS[variant]
        converted = None
        if keep_float is not None:
            weights = "fp16" if variant.startswith("fp16") else "int8"
            converted = QuantizedLinears(model, weights, keep_float)
            converted.apply()
        firsts, agree, total, seconds = 0, 0, 0, []
        with torch.inference_mode():
            for name, seq, prompt_len in sequences:
                peft.set_adapter(name)
                start = time.perf_counter()
                logits = peft(seq).logits[0]
                seconds.append(time.perf_counter() - start)
                predicted = logits[prompt_len - 1 : -1].argmax(-1)
                target = seq[0, prompt_len:]
                firsts += int(predicted[0] == target[0])
                agree += int((predicted == target).sum())
                total += len(target)
        quantized = len(converted.float_layers) if converted else 0
        if converted is not None:
            converted.restore()
        rows[variant] = {
            "quantized_layers": quantized,
            "first_token_agreement": round(firsts / len(sequences), 3),
            "token_agreement": round(agree / total, 3),
            "forward_s_median": round(statistics.median(seconds), 3),
        }
        print(variant, rows[variant], flush=True)
    anchor = rows["float32"]["forward_s_median"]
    for row in rows.values():
        row["speed_ratio"] = round(anchor / row["forward_s_median"], 3)
    print(f"{'variant':22} {'first tok':>9} {'all tok':>8} {'forward':>8} {'speed':>6}")
    for variant, row in rows.items():
        print(
            f"{variant:22} {row['first_token_agreement']:>9} {row['token_agreement']:>8}"
            f" {row['forward_s_median']:>7}s {row['speed_ratio']:>6}"
        )
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}",
        "load_average": os.getloadavg(),
        "answers": len(sequences),
        "rows": rows,
    }
    out = ROOT / "bench" / "out" / "quant_agreement.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
