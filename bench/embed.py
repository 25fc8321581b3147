"""Benchmark: embedding throughput of the ingestion path, and what a faster embedder does to
retrieval.

Run: `.venv/bin/python bench/embed.py [--throughput-chunks 384] [--rounds 2] [--batch 32]
[--variants float32,fp16,int8,onnx-int8,bfloat16]`

Variants of the shipped all-MiniLM-L6-v2, each against float32 (the anchor) in the same run:
- `int8`: torch dynamic quantization of every Linear layer, per-channel weight scales (the
  per-tensor default loses more: measured 0.68 top-5 overlap with float32);
- `fp16`: every Linear layer with float16 weights, float32 compute (fbgemm; the generator's
  `models.quantize = "fp16"`);
- `onnx-int8`: the model exported to ONNX and run by ONNX Runtime with dynamic int8 matrix
  products, per-channel weight scales (`models.embedder_runtime = "onnx_int8"`);
- `bfloat16`: the weights and activations in bf16 (this CPU has no native bf16).
Throughput: passages/s encoding the packs' own chunk inputs (the first N of each pack,
batch `--batch`, best of `--rounds`, variants interleaved). Retrieval: hit@5 (the question's
source document among the top 5 of the hybrid search, FAISS + BM25 fused) over every in-scope eval
question of the four packs, with each variant embedding both the chunks and the questions
(goal: >= 1.5x throughput with hit@5 unchanged); a variant slower than float32 gets no
retrieval pass. Results go to bench/out/embed.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("float32", "fp16", "int8", "onnx-int8", "bfloat16")


def variant(model, name: str, loaded=None):
    import torch

    if name == "float32":
        return model
    if name == "onnx-int8":  # what models.embedder_runtime = "onnx_int8" runs
        from assistant.runtime.models import resolve_embedder_path
        from assistant.runtime.onnx_embedder import load_onnx_embedder

        return load_onnx_embedder(loaded, model, resolve_embedder_path(loaded))
    if name == "bfloat16":
        return copy.deepcopy(model).to(torch.bfloat16)
    from torch.ao.quantization import (
        float16_dynamic_qconfig,
        per_channel_dynamic_qconfig,
        quantize_dynamic,
    )

    if name == "fp16":
        qconfig = {torch.nn.Linear: float16_dynamic_qconfig}
        return quantize_dynamic(copy.deepcopy(model), qconfig, dtype=torch.float16)
    qconfig = {torch.nn.Linear: per_channel_dynamic_qconfig}
    return quantize_dynamic(copy.deepcopy(model), qconfig, dtype=torch.qint8)


def chunk_inputs(index) -> tuple[list[int], list[str]]:
    from assistant.knowledge import store
    from assistant.knowledge.chunking import embedding_input

    reader = index.reader
    rows = reader.query(reader.current(), store.embedding_rows)
    return [r[0] for r in rows], [embedding_input(r[1], r[2], r[3]) for r in rows]


def encode(model, texts: list[str], batch: int) -> np.ndarray:
    vectors = model.encode(
        texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def hit_at_5(index, cases) -> float:
    hits = [any(h.path == c.source for h in index.search(c.question, k=5)) for c in cases]
    return sum(hits) / len(hits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--throughput-chunks", type=int, default=384, help="per pack")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32, help="encode batch size")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="float32 first")
    args = parser.parse_args()

    import faiss

    from assistant.evaluation.run import load_cases
    from assistant.knowledge.index import open_index
    from assistant.packs.locate import list_packs
    from assistant.runtime.models import load_embedder
    from assistant.settings import load_settings

    loaded = load_settings()
    anchor = load_embedder(loaded)
    models = {name: variant(anchor, name, loaded) for name in args.variants.split(",")}
    packs = list_packs()
    indexes = {p.name: open_index(p, loaded, embedder=anchor) for p in packs}
    inputs = {name: chunk_inputs(idx) for name, idx in indexes.items()}

    sample = [t for _, texts in inputs.values() for t in texts[: args.throughput_chunks]]
    for model in models.values():
        encode(model, sample[:32], args.batch)  # warm-up
    best = dict.fromkeys(models, float("inf"))
    for _ in range(args.rounds):
        for name, model in models.items():
            started = time.perf_counter()
            encode(model, sample, args.batch)
            best[name] = min(best[name], time.perf_counter() - started)

    results = {}
    for name, model in models.items():
        if best[name] > best["float32"]:  # slower than the anchor: retrieval does not matter
            results[name] = {
                "passages_per_s": round(len(sample) / best[name], 1),
                "ratio": round(best["float32"] / best[name], 2),
            }
            print(
                f"{name:9s} {results[name]['passages_per_s']:7.1f} passages/s  ratio"
                f" {results[name]['ratio']:.2f}  (slower: hit@5 not measured)",
                flush=True,
            )
            continue
        hits, n = [], 0
        for pack in packs:
            index = indexes[pack.name]
            cases = [c for c in load_cases(pack.eval_file)[0] if not c.out_of_scope and c.source]
            # Swaps vectors in memory instead of building an index per variant (minutes each):
            # a benchmark reaching into the index on purpose.
            state = index._open()
            if name != "float32":  # the same chunk ids, vectors from this variant
                ids, texts = inputs[pack.name]
                vectors = faiss.IndexIDMap2(faiss.IndexFlatIP(state.vectors.d))
                vectors.add_with_ids(
                    encode(model, texts, args.batch), np.asarray(ids, dtype=np.int64)
                )
                state.vectors = vectors
            index._embedder = model
            hits.append((pack.name, round(hit_at_5(index, cases), 3), len(cases)))
            n += len(cases)
            index._state, index._embedder = None, anchor  # reload the float32 vectors next
        overall = sum(h * c for _, h, c in hits) / n
        results[name] = {
            "passages_per_s": round(len(sample) / best[name], 1),
            "ratio": round(best["float32"] / best[name], 2),
            "hit_at_5": round(overall, 3),
            "hit_at_5_by_pack": {p: h for p, h, _ in hits},
            "questions": n,
        }
        print(
            f"{name:9s} {results[name]['passages_per_s']:7.1f} passages/s  ratio"
            f" {results[name]['ratio']:.2f}  hit@5 {overall:.3f} ({n} questions) {hits}",
            flush=True,
        )
    out = ROOT / "bench" / "out" / "embed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}",
        "passages": len(sample),
        "batch": args.batch,
    }
    out.write_text(json.dumps({**meta, "variants": results}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
