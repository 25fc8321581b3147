"""A pack's knowledge index as one handle, and `open_index`, the one way to open it.

`open_index(pack, loaded)` is cheap: nothing is read until the first search or write. The handle
joins the read side (search.py: follows the generation CURRENT names, dense/BM25/hybrid search,
documents, statistics) and the write side (ingest.py: add, update, remove, rebuild under the
pack's lock); store.py describes the files on disk.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import AssistantError
from assistant.knowledge import store
from assistant.knowledge.config import COMMIT_CHUNKS, IndexConfig, pack_retrieval
from assistant.knowledge.embedding import Embedding
from assistant.knowledge.ingest import IndexWriter
from assistant.knowledge.pipeline import Progress
from assistant.knowledge.search import IndexReader
from assistant.knowledge.types import (
    DocumentRecord,
    Hit,
    IndexReport,
    IndexStats,
    MigrateReport,
)
from assistant.packs.locate import DomainPack
from assistant.settings import LoadedSettings


class KnowledgeIndex:
    """The index of one pack. Thread-safe for searches; writes are serialized by a file lock."""

    def __init__(self, config: IndexConfig, embedder: Any = None) -> None:
        self.config = config
        self.embedding = Embedding(config.loaded, embedder)
        self.reader = IndexReader(config, self.embedding)
        self.writer = IndexWriter(config, self.embedding, self.reader)

    # ----- what it is built with -----------------------------------------------------------

    @property
    def pack(self) -> DomainPack:
        return self.config.pack

    @property
    def loaded(self) -> LoadedSettings:
        return self.config.loaded

    @property
    def chunk_tokens(self) -> int:
        return self.config.chunk_tokens

    @property
    def chunk_overlap(self) -> int:
        return self.config.chunk_overlap

    @property
    def embedder_name(self) -> str:
        return self.config.embedder_name

    @property
    def index_dir(self) -> Path:
        return self.config.index_dir

    @property
    def embedder(self) -> Any:
        return self.embedding.model

    def dimension(self) -> int:
        return self.embedding.dimension()

    def embed_query(self, query: str) -> np.ndarray:
        """The question's normalised vector, for `search`/`dense_search(query_vector=...)` when
        one question searches several packs (they share the embedder)."""
        return self.embedding.query_vector(query)

    # ----- reading -------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.reader.exists()

    def search(self, query: str, k: int = 5, *, query_vector: Any = None) -> list[Hit]:
        """Hybrid search: dense cosine and BM25 rankings fused by reciprocal rank fusion.
        `query_vector`: the question already embedded (`embed_query`); the same hits."""
        return self.reader.search(query, k, query_vector=query_vector)

    def dense_search(self, query: str, k: int = 5, *, query_vector: Any = None) -> list[Hit]:
        return self.reader.dense_search(query, k, query_vector=query_vector)

    def search_document(
        self, query: str, path: str, k: int = 5, *, query_vector: Any = None
    ) -> list[Hit]:
        """Hybrid search among one document's chunks (`path` as in its hits)."""
        return self.reader.search_document(query, path, k, query_vector=query_vector)

    def bm25_search(self, query: str, k: int = 5) -> list[Hit]:
        return self.reader.bm25_search(query, k)

    def chunk(self, chunk_id: int) -> Hit:
        """One chunk by id, as a Hit without scores; NotFoundError when there is none."""
        return self.reader.chunk(chunk_id)

    def document_text(self, path: str | Path) -> str:
        """The extracted text of a document that chunk offsets refer to; NotFoundError when it
        is not indexed."""
        return self.reader.document_text(path)

    def documents(self) -> list[DocumentRecord]:
        return self.reader.documents()

    def stats(self) -> IndexStats:
        """Size and make of the index, read from the manifest (works on a mismatched index)."""
        return self.reader.stats()

    def retriever(self, k: int = 4) -> Any:
        """This index as a langchain-core BaseRetriever returning Documents."""
        from assistant.knowledge.retriever import PackRetriever

        return PackRetriever(index=self, k=k)

    # ----- writing -------------------------------------------------------------------------

    def add_docs(
        self,
        paths: Iterable[str | Path],
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> IndexReport:
        """Copy files (or folders, keeping their layout) into the pack's docs/ and index them.
        Files already under docs/ are indexed in place; unchanged content is not re-embedded."""
        return self.writer.add_docs(paths, include, exclude, progress)

    def rebuild(self, progress: Progress | None = None) -> IndexReport:
        """Index every file under docs/ from scratch and switch to the new index in one step."""
        return self.writer.rebuild(progress)

    def remove(self, paths: Iterable[str | Path], delete_files: bool = True) -> IndexReport:
        """Drop documents (or every document under a folder) from the index, and by default
        delete their copies from the pack's docs/."""
        return self.writer.remove(paths, delete_files)

    def migrate(self, to: str) -> MigrateReport:
        """Move the built index's vectors to the store `to` ("faiss" or "milvus", which the
        pack's [retrieval] store must name) without embedding anything."""
        return self.writer.migrate(to)


def open_index(
    pack: DomainPack,
    loaded: LoadedSettings,
    *,
    embedder: Any = None,
    chunk_tokens: int | None = None,
    chunk_overlap: int | None = None,
    lock_timeout: float = store.LOCK_TIMEOUT,
    commit_chunks: int = COMMIT_CHUNKS,
) -> KnowledgeIndex:
    """The knowledge index of `pack`, chunked as its pack.toml says (the global [retrieval]
    settings for what it does not say). Nothing is read until the first search or write.

    `embedder` replaces the shared one (the router's, tests, benchmarks); `chunk_tokens` and
    `chunk_overlap` override the pack's chunking (tests, benchmarks)."""
    tokens, overlap, vectors = pack_retrieval(pack, loaded)
    config = IndexConfig(
        pack,
        loaded,
        chunk_tokens=tokens if chunk_tokens is None else chunk_tokens,
        chunk_overlap=overlap if chunk_overlap is None else chunk_overlap,
        lock_timeout=lock_timeout,
        commit_chunks=commit_chunks,
        store=vectors,
    )
    return KnowledgeIndex(config, embedder)


def index_stats(pack: DomainPack, loaded: LoadedSettings) -> dict[str, int] | None:
    """{"documents", "chunks"} of the pack's built index, or None when it is not built (or
    cannot be read): for listings that must not fail on one broken pack."""
    if not pack.index_dir.exists():
        return None
    try:
        stats = open_index(pack, loaded).stats()
    except (AssistantError, OSError):
        return None
    if not stats.exists:
        return None
    return {"documents": int(stats.documents), "chunks": int(stats.chunks)}


def forget_index(pack: DomainPack) -> None:
    """Drop the pack's built index (its documents were replaced, as by `pack import --force`):
    nothing of the old text is served, and `setup` sees an index to build."""
    store.forget(pack.index_dir, pack.name)
