"""Knowledge-index benchmark: ingestion throughput and query latency, each against its anchor.

Run from the repository root (takes about 3-6 minutes on 2 cores):

    .venv/bin/python bench/index.py [--docs 20] [--sizes 1000,10000,100000] [--queries 60]

1. Ingestion: `add_docs` on the first N diabetes corpus documents (load, chunk, embed, FAISS,
   BM25, SQLite, atomic publish) in chunks/s, against raw `SentenceTransformer.encode` of the
   very same embedding inputs in the same run. Goal: ratio >= 0.9.
2. Query latency at 1k/10k/100k chunks: `idx.search` (embed the query, FAISS + BM25, RRF, fetch
   texts from SQLite) p50/p95, against raw `encode` + raw `IndexFlatIP.search` over the same
   vectors. The indexes hold synthetic text and random unit vectors (the query embedding is
   real). Goal: p50 ratio <= 1.5 and p50 <= 50 ms at 100k. Also: build time and the part of it
   spent rebuilding BM25 from the docstore texts (done on every write), open time, RSS.

Pass `--threads 1` on a shared machine: with 2 torch threads and another busy process, OpenMP
spinning makes every encode ~10x slower on both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.knowledge import open_index, store  # noqa: E402
from assistant.knowledge.chunking import Chunk, embedding_input  # noqa: E402
from assistant.knowledge.commit import PendingDocument, commit_generation  # noqa: E402
from assistant.knowledge.index import KnowledgeIndex  # noqa: E402
from assistant.knowledge.loaders import LoadedDocument, Section  # noqa: E402
from assistant.knowledge.retrieval import BM25Index  # noqa: E402
from assistant.packs.locate import DomainPack  # noqa: E402
from assistant.runtime.models import load_embedder  # noqa: E402
from assistant.settings import load_settings  # noqa: E402

CORPUS = Path("/work/shared/corpora/diabetes")
CHUNKS_PER_DOC = 100


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def bench_ingestion(loaded, embedder, work: Path, n_docs: int) -> dict[str, float]:
    files = sorted((CORPUS / "docs").glob("*.md"))[:n_docs]
    pack = DomainPack("ingest", work / "packs" / "ingest")
    pack.docs_dir.mkdir(parents=True)
    embedder.encode(["warm up the model"] * 8, normalize_embeddings=True)
    # A dry run gives the exact embedding inputs for the anchor.
    dry = DomainPack("dry", work / "packs" / "dry")
    dry.docs_dir.mkdir(parents=True)
    state = open_index(dry, loaded, embedder=embedder)
    state.add_docs(files)
    rows = store.embedding_rows(state.reader.current().db)
    inputs = [embedding_input(text, title, section) for _, text, title, section in rows]

    def raw_encode() -> float:
        start = time.perf_counter()
        embedder.encode(inputs, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
        return time.perf_counter() - start

    # anchor, measured run, anchor again: load from other processes drifts over a minute
    before = raw_encode()
    idx = open_index(pack, loaded, embedder=embedder)
    start = time.perf_counter()
    report = idx.add_docs(files)
    ingest_s = time.perf_counter() - start
    raw_s = (before + raw_encode()) / 2
    chunks = report.chunks_embedded
    return {
        "docs": len(files),
        "chunks": chunks,
        "ingest_chunks_per_s": chunks / ingest_s,
        "raw_encode_chunks_per_s": chunks / raw_s,
        "ratio": raw_s / ingest_s,
    }


def synthetic_index(loaded, embedder, work: Path, size: int, vocab: list[str]) -> KnowledgeIndex:
    """An index of `size` chunks of random corpus words with random unit vectors."""
    rng = np.random.default_rng(size)
    pyrng = random.Random(size)
    pack = DomainPack(f"syn{size}", work / "packs" / f"syn{size}")
    pack.docs_dir.mkdir(parents=True)
    idx = open_index(pack, loaded, embedder=embedder)
    dim = idx.dimension()
    pending = []
    for d in range(0, size, CHUNKS_PER_DOC):
        n = min(CHUNKS_PER_DOC, size - d)
        texts = [" ".join(pyrng.choices(vocab, k=120)) for _ in range(n)]
        chunks, pos = [], 0
        for text in texts:
            chunks.append(Chunk(text, pos, pos + len(text), f"section {len(chunks)}", None))
            pos += len(text) + 2
        doc = LoadedDocument("\n\n".join(texts), f"doc {d}", [Section(0, pos)], "text", {})
        vectors = rng.standard_normal((n, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        pending.append(
            PendingDocument(f"docs/doc{d}.txt", "added", "0" * 64, pos, doc, chunks, vectors)
        )
    idx.index_dir.mkdir(parents=True, exist_ok=True)
    commit_generation(idx.config, idx.embedding, None, pending, [], fresh=True)
    return idx


def bench_queries(loaded, embedder, work: Path, size: int, questions, vocab) -> dict:
    import faiss

    start = time.perf_counter()
    synthetic_index(loaded, embedder, work, size, vocab)
    build_s = time.perf_counter() - start
    pack = DomainPack(f"syn{size}", work / "packs" / f"syn{size}")
    idx = open_index(pack, loaded, embedder=embedder)
    start = time.perf_counter()
    state = idx.reader.current()
    open_s = time.perf_counter() - start
    raw = faiss.IndexFlatIP(state.vectors.dimension)
    flat = faiss.downcast_index(state.vectors.index.index)
    raw.add(faiss.vector_to_array(flat.codes).view(np.float32).reshape(-1, raw.d))
    rows = store.chunk_texts(state.db)
    start = time.perf_counter()
    BM25Index.build([r[0] for r in rows], [r[1] for r in rows])
    bm25_s = time.perf_counter() - start
    del rows
    for q in questions[:5]:  # warm up both paths
        idx.search(q, k=5)
    ours, anchor = [], []
    for q in questions:
        start = time.perf_counter()
        hits = idx.search(q, k=5)
        ours.append((time.perf_counter() - start) * 1000)
        assert len(hits) == 5 and all(h.text for h in hits)
        start = time.perf_counter()
        vec = embedder.encode([q], normalize_embeddings=True, show_progress_bar=False)
        raw.search(np.asarray(vec, dtype=np.float32), 5)
        anchor.append((time.perf_counter() - start) * 1000)
    return {
        "chunks": size,
        "build_s": build_s,
        "open_s": open_s,
        "bm25_rebuild_s": bm25_s,
        "p50_ms": percentile(ours, 50),
        "p95_ms": percentile(ours, 95),
        "anchor_p50_ms": percentile(anchor, 50),
        "anchor_p95_ms": percentile(anchor, 95),
        "p50_ratio": percentile(ours, 50) / percentile(anchor, 50),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=25)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: settings)")
    args = parser.parse_args()
    loaded = load_settings()
    embedder = load_embedder(loaded)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    load = os.getloadavg()
    print(f"load average before the run: {load[0]:.2f} (other processes slow both sides)")
    questions = [
        json.loads(line)["question"]
        for name in ("qa_dev.jsonl", "qa_train.jsonl")
        for line in (CORPUS / name).open()
    ][: args.queries]
    words = {
        w.strip(".,;:()").lower()
        for f in (CORPUS / "docs").glob("*.md")
        for w in f.read_text().split()
    }
    vocab = sorted(words - {""})
    results: dict = {"date": time.strftime("%Y-%m-%d"), "threads": args.threads, "load": load[0]}
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        work = Path(tmp)
        ing = bench_ingestion(loaded, embedder, work, args.docs)
        results["ingestion"] = ing
        print(
            f"ingestion: {ing['chunks']} chunks from {ing['docs']} docs:"
            f" {ing['ingest_chunks_per_s']:.1f} chunks/s vs raw encode"
            f" {ing['raw_encode_chunks_per_s']:.1f} chunks/s -> ratio {ing['ratio']:.2f}"
            " (goal >= 0.9)",
            flush=True,
        )
        results["queries"] = []
        for size in (int(s) for s in args.sizes.split(",")):
            q = bench_queries(loaded, embedder, work, size, questions, vocab)
            results["queries"].append(q)
            print(
                f"query @ {size:>6} chunks: p50 {q['p50_ms']:.1f} ms, p95 {q['p95_ms']:.1f} ms vs"
                f" raw encode+FAISS p50 {q['anchor_p50_ms']:.1f} ms, p95"
                f" {q['anchor_p95_ms']:.1f} ms -> p50 ratio {q['p50_ratio']:.2f} (goal <= 1.5);"
                f" build {q['build_s']:.1f} s (of which BM25 {q['bm25_rebuild_s']:.1f} s),"
                f" open {q['open_s']:.2f} s",
                flush=True,
            )
            rss = psutil.Process().memory_info().rss / 2**20
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            q["rss_mib"], q["peak_rss_mib"] = rss, peak
            print(
                f"  RSS after the searches {rss:.0f} MiB; peak so far (incl. build) {peak:.0f} MiB"
            )
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "index.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
