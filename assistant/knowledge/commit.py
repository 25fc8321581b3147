"""Write the next generation of an index: the live one's vectors and docstore, with documents
replaced, added or removed, a BM25 index over every chunk, and the manifest; then publish it
(store.GenerationWriter). Runs under the pack's write lock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.knowledge import store
from assistant.knowledge.chunking import Chunk
from assistant.knowledge.config import IndexConfig
from assistant.knowledge.embedding import Embedding
from assistant.knowledge.generation import LoadedGeneration
from assistant.knowledge.loaders import LoadedDocument
from assistant.knowledge.retrieval import BM25Index


@dataclass
class PendingDocument:
    """A document read, chunked and (once embedded) carrying one vector per chunk."""

    rel: str
    outcome: str  # "added" or "updated"
    sha256: str
    size: int
    doc: LoadedDocument
    chunks: list[Chunk]
    vectors: np.ndarray | None = None


def commit_generation(
    config: IndexConfig,
    embedding: Embedding,
    state: LoadedGeneration | None,
    docs: Sequence[PendingDocument],
    removed: Sequence[str],
    *,
    fresh: bool,
) -> LoadedGeneration:
    """Write and publish the next generation: `docs` replace their previous versions, `removed`
    go. `fresh` (or no live `state`) starts from an empty index."""
    base = None if fresh or state is None else state
    # A removal needs no embedder: the dimension comes from the live index.
    dim = embedding.dimension() if base is None else int(base.vectors.d)
    vectors, next_id, created = _start_vectors(base, dim)
    writer = store.GenerationWriter(config.index_dir, base.generation if base else None)
    try:
        db = writer.db
        stale = [*removed, *(d.rel for d in docs if d.outcome == "updated")]
        if stale:
            _drop(db, vectors, stale)
        now = store.now_iso()
        next_id = _insert(db, vectors, docs, next_id, now)
        rows = store.chunk_texts(db)
        bm25 = BM25Index.build([r[0] for r in rows], [r[1] for r in rows])
        manifest = {
            "format_version": store.FORMAT_VERSION,
            "pack": config.pack.name,
            "embedder": {"name": config.embedder_name, "dimension": dim},
            "chunking": config.chunking(),
            "documents": store.count_documents(db),
            "chunks": len(rows),
            "next_id": next_id,
            "created": created,
            "updated": now,
        }
        generation = writer.publish(vectors, bm25, manifest)
    except BaseException:
        writer.discard()
        raise
    return _opened(generation, manifest, vectors, bm25)


def _start_vectors(base: LoadedGeneration | None, dim: int) -> tuple[Any, int, str]:
    """The vectors to build on (a copy of the live ones, or none), the next chunk id and when
    the index was first created."""
    import faiss

    if base is None:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), 1, store.now_iso()
    vectors = faiss.clone_index(base.vectors)
    return vectors, int(base.manifest["next_id"]), base.manifest.get("created", store.now_iso())


def _drop(db: Any, vectors: Any, paths: Sequence[str]) -> None:
    """Remove the documents `paths`, their chunks and their vectors."""
    old = store.chunk_ids(db, paths)
    if old:
        vectors.remove_ids(np.asarray(old, dtype=np.int64))
    store.delete_documents(db, paths)


def _insert(db: Any, vectors: Any, docs: Sequence[PendingDocument], next_id: int, now: str) -> int:
    """Add the documents, their chunks (numbered from `next_id`) and vectors; the next id."""
    for item in docs:
        store.insert_document(db, item.rel, item.sha256, item.size, item.doc, now)
        ids = np.arange(next_id, next_id + len(item.chunks), dtype=np.int64)
        next_id += len(item.chunks)
        store.insert_chunks(
            db,
            [
                (int(i), item.rel, n, c.text, c.start, c.end, c.section, c.page)
                for n, (i, c) in enumerate(zip(ids, item.chunks, strict=True))
            ],
        )
        assert item.vectors is not None
        vectors.add_with_ids(item.vectors, ids)
    return next_id


def _opened(
    generation: Path, manifest: dict[str, Any], vectors: Any, bm25: BM25Index
) -> LoadedGeneration:
    """The generation just published, ready to search without reading it back."""
    return LoadedGeneration(generation, manifest, store.connect_readonly(generation), vectors, bm25)
