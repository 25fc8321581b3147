"""Vector-store benchmark: search p50 at 100k chunks with the vectors in Milvus (milvus-lite, the
real engine, a local file) against FAISS, in the same run.

Run from the repository root (about 3-5 minutes on 2 cores):

    .venv/bin/python bench/store.py [--chunks 100000] [--queries 200] [--threads 1]

FAISS runs on one OpenMP thread by default: on 2 shared cores OpenMP's spinning makes its
single-query search many times slower (dense p50 at 5k chunks in trial runs: 7.6 ms on 2
threads, 0.13 ms on 1), and the figure would measure the machine, not the store.

One index of synthetic chunks (random words, so BM25 has work) and random unit vectors of the
embedder's dimension is built with FAISS, copied, and the copy migrated to Milvus with
`migrate` (the migration is timed too). Each query is a random unit vector plus three random
words, so no text is embedded and only the stores differ. Timed on both indexes:

- dense: the store's own search, the 50 candidates hybrid search asks for;
- hybrid: `search(query, k=5, query_vector=...)`: dense + BM25, RRF, texts from SQLite.

Prints p50/p95 of each and the Milvus/FAISS ratio of the p50s, then a Markdown table for
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import shutil
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import platformdirs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHUNKS_PER_DOC = 100
CANDIDATES = 50


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def set_store(pack_toml: Path, store: str) -> None:
    text = re.sub(r"(?m)^store = .*\n", "", pack_toml.read_text("utf-8"))
    pack_toml.write_text(text.replace("[retrieval]\n", f'[retrieval]\nstore = "{store}"\n', 1))


def build_faiss(loaded, embedder, name: str, chunks: int, vocab: list[str]):
    """A FAISS index of `chunks` synthetic chunks with random unit vectors."""
    from assistant.knowledge import open_index
    from assistant.knowledge.chunking import Chunk
    from assistant.knowledge.commit import PendingDocument, commit_generation
    from assistant.knowledge.loaders import LoadedDocument, Section
    from assistant.packs.locate import find_pack
    from assistant.packs.scaffold import create_pack

    create_pack(name)
    pack = find_pack(name)
    idx = open_index(pack, loaded, embedder=embedder)
    dim = idx.dimension()
    rng, pyrng = np.random.default_rng(0), random.Random(0)
    pending = []
    for d in range(0, chunks, CHUNKS_PER_DOC):
        n = min(CHUNKS_PER_DOC, chunks - d)
        texts = [" ".join(pyrng.choices(vocab, k=60)) for _ in range(n)]
        parts, pos = [], 0
        for text in texts:
            parts.append(Chunk(text, pos, pos + len(text), None, None))
            pos += len(text) + 2
        doc = LoadedDocument("\n\n".join(texts), f"doc {d}", [Section(0, pos)], "text", {})
        vectors = rng.standard_normal((n, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        pending.append(
            PendingDocument(f"docs/doc{d}.txt", "added", "0" * 64, pos, doc, parts, vectors)
        )
    idx.index_dir.mkdir(parents=True, exist_ok=True)
    commit_generation(idx.config, idx.embedding, None, pending, [], fresh=True)
    return pack, dim


def time_searches(idx, queries) -> dict[str, list[float]]:
    state = idx.reader.current()
    times: dict[str, list[float]] = {"dense": [], "hybrid": []}
    for text, vector in queries[:10]:  # warm up
        state.vectors.search(vector[None, :], CANDIDATES)
        idx.search(text, k=5, query_vector=vector)
    for text, vector in queries:
        start = time.perf_counter()
        state.vectors.search(vector[None, :], CANDIDATES)
        times["dense"].append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        hits = idx.search(text, k=5, query_vector=vector)
        times["hybrid"].append((time.perf_counter() - start) * 1000)
        assert len(hits) == 5
    return times


def top_ids(idx, text: str, vector: np.ndarray) -> list[int]:
    return [h.chunk_id for h in idx.search(text, k=5, query_vector=vector)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="FAISS OpenMP threads")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-store-"))
    os.environ["ASSISTANT_HOME"] = str(work)
    os.environ.setdefault("ASSISTANT_CACHE_DIR", platformdirs.user_cache_dir("assistant"))
    import faiss

    faiss.omp_set_num_threads(args.threads)
    from assistant.knowledge import open_index
    from assistant.knowledge.vectors.milvus_store import release
    from assistant.packs.locate import find_pack
    from assistant.runtime.models import load_embedder
    from assistant.settings import load_settings

    loaded = load_settings()
    embedder = load_embedder(loaded)
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}; {args.chunks:,} chunks,"
        f" {args.queries} queries, FAISS on {args.threads} thread(s); pymilvus"
        f" {version('pymilvus')}, milvus-lite {version('milvus-lite')}",
        flush=True,
    )
    vocab = [f"w{n}" for n in range(5000)]
    try:
        start = time.perf_counter()
        faiss_pack, dim = build_faiss(loaded, embedder, "bench-faiss", args.chunks, vocab)
        print(f"FAISS build {time.perf_counter() - start:.1f} s ({dim} dims)", flush=True)
        shutil.copytree(faiss_pack.root, faiss_pack.root.parent / "bench-milvus")
        milvus_root = faiss_pack.root.parent / "bench-milvus"
        toml = milvus_root / "pack.toml"
        toml.write_text(toml.read_text("utf-8").replace("bench-faiss", "bench-milvus"), "utf-8")
        shutil.copytree(faiss_pack.index_dir, faiss_pack.index_dir.parent / "bench-milvus")
        set_store(toml, "milvus")
        milvus_pack = find_pack("bench-milvus")
        start = time.perf_counter()
        report = open_index(milvus_pack, loaded, embedder=embedder).migrate("milvus")
        migrate_s = time.perf_counter() - start
        print(f"migrate to Milvus: {report.vectors:,} vectors in {migrate_s:.1f} s", flush=True)

        rng, pyrng = np.random.default_rng(1), random.Random(1)
        vectors = rng.standard_normal((args.queries, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        queries = [(" ".join(pyrng.choices(vocab, k=3)), v) for v in vectors]
        results, indexes = {}, {}
        for name, pack in (("faiss", faiss_pack), ("milvus", milvus_pack)):
            start = time.perf_counter()
            idx = indexes[name] = open_index(pack, loaded, embedder=embedder)
            idx.reader.current()
            opened = time.perf_counter() - start
            results[name] = {"open_s": opened, **time_searches(idx, queries)}
        same = sum(
            top_ids(indexes["milvus"], text, vector) == top_ids(indexes["faiss"], text, vector)
            for text, vector in queries
        )
    finally:
        release()
        shutil.rmtree(work, ignore_errors=True)

    when = time.strftime("%Y-%m-%d %H:%M")
    print(f"\nRun on {when}, {os.cpu_count()} cores, {platform.machine()}")
    print(f"same top-5 ids on {same}/{len(queries)} queries; migrate {migrate_s:.1f} s\n")
    print(f"| search at {args.chunks:,} chunks | FAISS p50 (p95) | Milvus p50 (p95) | ratio p50 |")
    print("|---|---|---|---|")
    for kind in ("dense", "hybrid"):
        f, m = results["faiss"][kind], results["milvus"][kind]
        print(
            f"| {kind} | {percentile(f, 50):.2f} ms ({percentile(f, 95):.2f}) |"
            f" {percentile(m, 50):.2f} ms ({percentile(m, 95):.2f}) |"
            f" **{percentile(m, 50) / percentile(f, 50):.2f}x** |"
        )
    print(f"| open | {results['faiss']['open_s']:.2f} s | {results['milvus']['open_s']:.2f} s | |")


if __name__ == "__main__":
    main()
