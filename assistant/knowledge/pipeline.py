"""The write pipeline of add-docs and rebuild: each file is hashed (an unchanged one is passed
over), loaded, chunked and copied into docs/; chunks are embedded in batches of `EMBED_BATCH`,
and the embedded documents are published as a new generation every `commit_chunks` chunks (so a
crash loses only that batch), or once at the end of a rebuild. Runs under the pack's write lock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from assistant.fsio import copy_atomic
from assistant.knowledge import store
from assistant.knowledge.chunking import Chunker, embedding_input
from assistant.knowledge.commit import PendingDocument, commit_generation
from assistant.knowledge.config import IndexConfig
from assistant.knowledge.embedding import Embedding
from assistant.knowledge.loaders import SkipFile, load_document
from assistant.knowledge.search import IndexReader
from assistant.knowledge.types import IndexReport
from assistant.knowledge.walk import Skipped

Progress = Callable[[int, int, str], None]
# pack path ("docs/a.md") -> (the file to read, where to copy it in docs/ or None when it is there)
Items = dict[str, tuple[Path, Path | None]]
EMBED_BATCH = 256  # chunks embedded per encode call


def file_sha256(path: Path) -> tuple[str, int]:
    """The SHA-256 of a file's content and its size."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _same_file_content(path: Path, sha: str) -> bool:
    try:
        return file_sha256(path)[0] == sha
    except OSError:
        return False


def _chunk_count(docs: list[PendingDocument]) -> int:
    return sum(len(d.chunks) for d in docs)


class WriteRun:
    """One add-docs (`fresh=False`: on top of the live index) or rebuild (`fresh=True`: from
    an empty index), filling `report` as it goes."""

    def __init__(
        self,
        config: IndexConfig,
        embedding: Embedding,
        reader: IndexReader,
        report: IndexReport,
        progress: Progress | None,
        *,
        fresh: bool,
    ) -> None:
        self.config = config
        self.embedding = embedding
        self.reader = reader
        self.report = report
        self.progress = progress
        self.fresh = fresh
        self.state = None if fresh or not reader.exists() else reader.current()
        self.hashes = {} if self.state is None else reader.query(self.state, store.document_hashes)
        model = embedding.model
        self.chunker = Chunker(model.tokenizer, config.chunk_tokens, config.chunk_overlap)
        self.pending: list[PendingDocument] = []  # chunked, not embedded yet
        self.embedded: list[PendingDocument] = []  # embedded, not published yet
        self.total = 0
        self.done = 0

    def run(self, items: Items) -> None:
        """Index `items`; the report's chunks_total is the published index's afterwards."""
        self.total = len(items)
        for rel, (source, dest) in items.items():
            item = self._read(rel, source, dest)
            if item is None:
                self._tick(rel)
                continue
            self.pending.append(item)
            getattr(self.report, item.outcome).append(rel)
            if _chunk_count(self.pending) >= EMBED_BATCH:
                self._embed_pending()
            if not self.fresh and _chunk_count(self.embedded) >= self.config.commit_chunks:
                self._publish()
        self._embed_pending()
        if self.fresh and self.state is None and not self.embedded:
            self._commit([])  # an empty but valid index
        self._publish()
        self.report.chunks_total = self.reader.chunks_total()

    def _read(self, rel: str, source: Path, dest: Path | None) -> PendingDocument | None:
        """One file hashed, loaded, chunked and copied to `dest`; None (and in the report) when
        it is unchanged or skipped."""
        try:
            sha, size = file_sha256(source)
        except OSError as exc:
            self.report.skipped.append(Skipped(str(source), f"cannot read: {exc.strerror}"))
            return None
        if self.hashes.get(rel) == sha:
            if dest is not None and not _same_file_content(dest, sha):
                copy_atomic(source, dest)
            self.report.unchanged.append(rel)
            return None
        try:
            doc = load_document(source)
        except SkipFile as exc:
            self.report.skipped.append(Skipped(str(source), str(exc)))
            return None
        chunks = self.chunker.chunk(doc)
        if not chunks:
            self.report.skipped.append(Skipped(str(source), "no text to index"))
            return None
        if dest is not None:
            copy_atomic(source, dest)
        outcome = "updated" if rel in self.hashes else "added"
        return PendingDocument(rel, outcome, sha, size, doc, chunks)

    def _tick(self, label: str) -> None:
        self.done += 1
        if self.progress:
            self.progress(self.done, self.total, label)

    def _embed_pending(self) -> None:
        """Embed the chunks of every pending document in one batch."""
        inputs = [
            embedding_input(c.text, p.doc.title, c.section) for p in self.pending for c in p.chunks
        ]
        vectors = self.embedding.embed(inputs) if inputs else np.zeros((0, 1), np.float32)
        offset = 0
        for item in self.pending:
            item.vectors = vectors[offset : offset + len(item.chunks)]
            offset += len(item.chunks)
            self._tick(item.rel)
        self.report.chunks_embedded += len(inputs)
        self.embedded.extend(self.pending)
        self.pending.clear()

    def _publish(self) -> None:
        """Publish the embedded documents as the next generation."""
        if self.embedded:
            self._commit(self.embedded)
            self.embedded.clear()

    def _commit(self, docs: list[PendingDocument]) -> None:
        fresh = self.fresh and self.state is None
        self.state = commit_generation(
            self.config, self.embedding, self.state, docs, [], fresh=fresh
        )
        self.reader.adopt(self.state)
