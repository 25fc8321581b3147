"""The read side of an index: the live generation (reloaded when another process published a new
one), dense, BM25 and hybrid search, single chunks and documents, and statistics.

Reads follow the generation named by CURRENT and never take the writers' lock. A damaged
generation (a truncated or altered file, an unreadable manifest, a missing docstore row) is one
DamagedDataError naming the file and `assistant index rebuild PACK`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from assistant.errors import AssistantError, NotFoundError
from assistant.fsio import folder_size
from assistant.knowledge import store
from assistant.knowledge.config import IndexConfig, doc_path
from assistant.knowledge.embedding import Embedding, query_matrix
from assistant.knowledge.generation import LoadedGeneration, Unreadable, load_generation
from assistant.knowledge.retrieval import rrf
from assistant.knowledge.types import DocumentRecord, Hit, IndexStats

CANDIDATES = 50  # per retriever, before fusion
OPEN_ATTEMPTS = 5  # a generation swept while it was being opened is retried with the next one

T = TypeVar("T")
# (chunk id, fused score, cosine, BM25 score) of one hit, best first
ScoredRow = tuple[int, float, float | None, float | None]


class IndexReader:
    """Searches one pack's index; thread-safe."""

    def __init__(self, config: IndexConfig, embedding: Embedding) -> None:
        self.config = config
        self.embedding = embedding
        self._state: LoadedGeneration | None = None
        self._mutex = threading.RLock()

    # ----- the live generation ---------------------------------------------------------------

    def exists(self) -> bool:
        return store.current_generation(self.config.index_dir) is not None

    def current(self) -> LoadedGeneration:
        """The live generation, (re)loaded when CURRENT names a new one."""
        index_dir = self.config.index_dir
        with self._mutex:
            for _attempt in range(OPEN_ATTEMPTS):
                generation = store.current_generation(index_dir)
                if generation is None:
                    raise self.config.missing()
                if self._state is not None and self._state.generation == generation:
                    return self._state
                try:
                    state = load_generation(generation, self.config)
                except Unreadable as exc:
                    if store.current_generation(index_dir) == generation:
                        raise self.config.damaged(exc.path, exc.reason) from None
                    # A writer switched CURRENT and swept this generation while it was opened.
                    time.sleep(0.05)
                    continue
                # The old connection is left to the garbage collector: another thread may still
                # be fetching hits through it.
                self._state = state
                return self._state
            raise AssistantError(
                f"the index of pack {self.config.pack.name!r} changed while it was being opened;"
                " try again"
            )

    def adopt(self, state: LoadedGeneration) -> None:
        """Read from now on the generation this process has just published."""
        with self._mutex:
            self._state = state

    def chunks_total(self) -> int:
        """Chunks in the generation last opened or published (0 before any)."""
        return self._state.manifest["chunks"] if self._state else 0

    def query(self, state: LoadedGeneration, read: Callable[..., T], *args: Any) -> T:
        """`read(db, *args)` on the docstore (a store.py function); a damaged docstore is a
        DamagedDataError naming it."""
        with self._mutex:
            try:
                return read(state.db, *args)
            except sqlite3.DatabaseError as exc:
                raise self.config.damaged(state.generation / store.DOCSTORE, f"({exc})") from None

    # ----- search ----------------------------------------------------------------------------

    def _query_matrix(self, state: LoadedGeneration, query: str, vector: Any) -> np.ndarray:
        if vector is None:
            return self.embedding.embed([query])
        return query_matrix(vector, state.vectors.dimension)

    def dense_search(self, query: str, k: int = 5, *, query_vector: Any = None) -> list[Hit]:
        """The `k` chunks nearest the question by cosine. `query_vector`: the question's
        normalised vector when the caller has embedded it already (the same hits)."""
        state = self.current()
        qvec = self._query_matrix(state, query, query_vector)
        pairs = state.vectors.search(qvec, k)
        return self._hits(state, [(i, s, s, None) for i, s in pairs])

    def bm25_search(self, query: str, k: int = 5) -> list[Hit]:
        state = self.current()
        top = state.bm25.top(state.bm25.scores(query), k)
        return self._hits(state, [(i, s, None, s) for i, s in top])

    def search(self, query: str, k: int = 5, *, query_vector: Any = None) -> list[Hit]:
        """Hybrid search: dense cosine and BM25 rankings fused by reciprocal rank fusion.
        `query_vector` as in `dense_search`."""
        if not query.strip():
            return []
        state = self.current()
        qvec = self._query_matrix(state, query, query_vector)
        return self._hits(state, _fused(state, query, qvec, k))

    def search_document(
        self, query: str, path: str, k: int = 5, *, query_vector: Any = None
    ) -> list[Hit]:
        """Hybrid search among the chunks of one document (every one of them is scored, so a
        clause that many documents share is found in this one)."""
        if not query.strip():
            return []
        state = self.current()
        ids = self.query(state, store.chunk_ids, [doc_path(path)])
        qvec = self._query_matrix(state, query, query_vector)
        return self._hits(state, _fused_among(state, query, qvec, k, ids))

    def _hits(self, state: LoadedGeneration, rows: list[ScoredRow]) -> list[Hit]:
        if not rows:
            return []
        found = self.query(state, store.hit_rows, [r[0] for r in rows])
        hits = []
        for rank, (chunk_id, score, dense, bm25) in enumerate(rows, start=1):
            row = found.get(chunk_id)
            if row is None:
                path = state.generation / store.DOCSTORE
                raise self.config.damaged(path, f"has no row for chunk {chunk_id} of the vectors")
            hits.append(Hit(*row, score=score, dense_score=dense, bm25_score=bm25, rank=rank))
        return hits

    # ----- chunks and documents --------------------------------------------------------------

    def chunk(self, chunk_id: int) -> Hit:
        """One chunk by id, as a Hit without scores (rank 1)."""
        state = self.current()
        if chunk_id < 0 or chunk_id not in self.query(state, store.hit_rows, [chunk_id]):
            name = self.config.pack.name
            raise NotFoundError(f"no chunk {chunk_id} in the index of pack {name!r}")
        return self._hits(state, [(chunk_id, 0.0, None, None)])[0]

    def document_text(self, path: str | Path) -> str:
        """The extracted text of a document that chunk offsets refer to."""
        text = self.query(self.current(), store.document_text, doc_path(path))
        if text is None:
            name = self.config.pack.name
            raise NotFoundError(f"{path} is not in the index of pack {name!r}")
        return text

    def documents(self) -> list[DocumentRecord]:
        rows = self.query(self.current(), store.document_rows)
        return [
            DocumentRecord(p, sha, size, kind, title, json.loads(meta), n, updated)
            for p, sha, size, kind, title, meta, updated, n in rows
        ]

    def stats(self) -> IndexStats:
        """Size and make of the index, read from the manifest (works on a mismatched index)."""
        pack, index_dir = self.config.pack.name, self.config.index_dir
        generation = store.current_generation(index_dir)
        if generation is None:
            return IndexStats(pack, False, path=str(index_dir))
        try:
            manifest = store.read_manifest(generation)
        except (OSError, ValueError) as exc:
            problem = f"damaged: {generation / store.MANIFEST} cannot be read ({exc})"
            return IndexStats(pack, True, path=str(index_dir), problem=problem)
        chunking = manifest.get("chunking", {})
        embedder = manifest.get("embedder", {})
        return IndexStats(
            pack=pack,
            exists=True,
            documents=manifest.get("documents", 0),
            chunks=manifest.get("chunks", 0),
            bytes=folder_size(generation),
            embedder=embedder.get("name"),
            dimension=embedder.get("dimension"),
            chunk_tokens=chunking.get("chunk_tokens"),
            chunk_overlap=chunking.get("chunk_overlap"),
            updated=manifest.get("updated"),
            generation=generation.name,
            path=str(index_dir),
            problem=self.config.problem(manifest),
            store=_store_label(manifest),
        )


def _store_label(manifest: dict[str, Any]) -> str:
    """ "faiss", or "milvus" with the collection and where it is, as the manifest records."""
    record = manifest.get("vectors") or {"store": "faiss"}
    if not isinstance(record, dict) or "collection" not in record:
        return str(record.get("store", "faiss")) if isinstance(record, dict) else "unknown"
    return f"{record['store']} (collection {record['collection']} at {record.get('uri')})"


def _fused(state: LoadedGeneration, query: str, qvec: np.ndarray, k: int) -> list[ScoredRow]:
    """The `k` best chunks of the dense and BM25 rankings fused by RRF, with the cosine and BM25
    score of each (computed for a chunk that only one ranking found)."""
    n = max(CANDIDATES, k)
    dense = dict(state.vectors.search(qvec, min(n, max(state.vectors.count, 1))))
    bm25_all = state.bm25.scores(query)
    lexical = dict(state.bm25.top(bm25_all, n))
    fused = rrf([list(dense), list(lexical)])
    best = sorted(fused, key=lambda i: (-fused[i], i))[:k]
    only_lexical = [i for i in best if i not in dense]
    for chunk_id, vector in zip(only_lexical, state.vectors.vectors(only_lexical), strict=True):
        dense[chunk_id] = float(vector @ qvec[0])
    rows = []
    for chunk_id in best:
        cosine = dense[chunk_id]
        bm25 = lexical.get(chunk_id)
        if bm25 is None and len(bm25_all):
            pos = int(np.searchsorted(state.bm25.ids, chunk_id))
            bm25 = float(bm25_all[pos])
        rows.append((chunk_id, fused[chunk_id], cosine, bm25 or 0.0))
    return rows


def _fused_among(
    state: LoadedGeneration, query: str, qvec: np.ndarray, k: int, ids: list[int]
) -> list[ScoredRow]:
    """`_fused` over the chunks `ids` alone, each scored by both retrievers."""
    dense = {i: float(v @ qvec[0]) for i, v in zip(ids, state.vectors.vectors(ids), strict=True)}
    bm25_all = state.bm25.scores(query)
    lexical: dict[int, float] = {}
    if len(bm25_all):
        positions = np.searchsorted(state.bm25.ids, ids)
        lexical = {i: float(bm25_all[p]) for i, p in zip(ids, positions, strict=True)}
    rankings = [
        sorted(dense, key=lambda i: (-dense[i], i)),
        sorted((i for i in lexical if lexical[i] > 0), key=lambda i: (-lexical[i], i)),
    ]
    fused = rrf(rankings)
    best = sorted(fused, key=lambda i: (-fused[i], i))[:k]
    return [(i, fused[i], dense[i], lexical.get(i, 0.0)) for i in best]
