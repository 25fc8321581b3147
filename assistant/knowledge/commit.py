"""Write the next generation of an index: the live one's vectors and docstore, with documents
replaced, added or removed, a BM25 index over every chunk, and the manifest; then publish it
(store.GenerationWriter) and sweep what older generations left in the vector store. The vectors
go to the pack's store (vectors/), whichever store the live generation's are in. Runs under the
pack's write lock."""

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
from assistant.knowledge.vectors import Vectors, VectorsBuilder, open_store, recorded_store


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
    go. `fresh` (or no live `state`) starts from an empty index. With neither docs nor removals
    it copies the live generation into the pack's store (a migration, nothing embedded)."""
    base = None if fresh or state is None else state
    # A removal needs no embedder: the dimension comes from the live index.
    dim = embedding.dimension() if base is None else base.vectors.dimension
    created = base.manifest.get("created", store.now_iso()) if base else store.now_iso()
    next_id = int(base.manifest["next_id"]) if base else 1
    vector_store = open_store(config.place)
    # Generations about to be swept may keep their vectors in another store (after a migration).
    used = {vector_store.name, *_stores_in_use(config.index_dir)}
    writer = store.GenerationWriter(config.index_dir, base.generation if base else None)
    vectors: VectorsBuilder | None = None
    try:
        db = writer.db
        stale = [*removed, *(d.rel for d in docs if d.outcome == "updated")]
        dropped = store.chunk_ids(db, stale) if stale else []
        vectors = vector_store.builder(
            writer.final.name, dim, base.vectors if base else None, dropped
        )
        if stale:
            store.delete_documents(db, stale)
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
        if vectors is not None and store.current_generation(config.index_dir) != writer.final:
            vectors.discard()
        raise
    for name in sorted(used):
        open_store(config.place, name).sweep(writer.kept())
    return _opened(generation, manifest, vectors.opened(), bm25)


def _stores_in_use(index_dir: Path) -> set[str]:
    """The stores the generations on disk keep their vectors in (unreadable manifests aside)."""
    names = set()
    for folder in index_dir.glob("g[0-9]*"):
        try:
            names.add(recorded_store(store.read_manifest(folder))[0])
        except (OSError, ValueError):
            continue
    return names


def _insert(
    db: Any, vectors: VectorsBuilder, docs: Sequence[PendingDocument], next_id: int, now: str
) -> int:
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
        vectors.add(ids, item.vectors)
    return next_id


def _opened(
    generation: Path, manifest: dict[str, Any], vectors: Vectors, bm25: BM25Index
) -> LoadedGeneration:
    """The generation just published, ready to search without reading it back."""
    return LoadedGeneration(generation, manifest, store.connect_readonly(generation), vectors, bm25)
