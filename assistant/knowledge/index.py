"""A pack's knowledge index: add, update, remove and rebuild documents; hybrid search.

`open_index(pack, loaded)` is cheap: nothing is read until the first search or write. Reads
follow the generation named by CURRENT (see store.py) and reload when a writer switched it.
Writes take the pack's lock, build the next generation beside the live one and switch to it.

A damaged index (a truncated or altered file, an unreadable manifest, a missing docstore row) is
refused with one AssistantError naming the file and `assistant index rebuild PACK`; a write
that fails (a full disk, a read-only folder) is one AssistantError too, and the live index keeps
its last complete generation.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import AssistantError
from assistant.fsio import copy_atomic
from assistant.knowledge import store
from assistant.knowledge.chunking import CHUNKER_VERSION, Chunk, Chunker, embedding_input
from assistant.knowledge.loaders import LoadedDocument, SkipFile, load_document
from assistant.knowledge.retrieval import BM25Index, rrf
from assistant.knowledge.types import DocumentRecord, Hit, IndexReport, IndexStats
from assistant.knowledge.walk import Skipped, expand
from assistant.packs.locate import DomainPack
from assistant.runtime.models import embedder_id
from assistant.settings import LoadedSettings

Progress = Callable[[int, int, str], None]
CANDIDATES = 50  # per retriever, before fusion
EMBED_BATCH = 256  # chunks embedded per encode call
COMMIT_CHUNKS = 2048  # add-docs publishes a generation after this many new chunks


@dataclass
class _Pending:
    rel: str
    outcome: str  # "added" or "updated"
    sha256: str
    size: int
    doc: LoadedDocument
    chunks: list[Chunk]
    vectors: np.ndarray | None = None


@dataclass
class _Loaded:
    generation: Path
    manifest: dict[str, Any]
    db: sqlite3.Connection
    vectors: Any
    bm25: BM25Index


class _Unreadable(Exception):
    """A file of a generation that cannot be used: its path and why."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} {reason}")
        self.path = path
        self.reason = reason


def file_sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


class KnowledgeIndex:
    """The index of one pack. Thread-safe for searches; writes are serialized by a file lock."""

    def __init__(
        self,
        pack: DomainPack,
        loaded: LoadedSettings,
        *,
        chunk_tokens: int | None = None,
        chunk_overlap: int | None = None,
        embedder: Any = None,
        lock_timeout: float = store.LOCK_TIMEOUT,
        commit_chunks: int = COMMIT_CHUNKS,
    ) -> None:
        retrieval = loaded.settings.retrieval
        self.pack = pack
        self.loaded = loaded
        self.embedder_name = embedder_id(loaded)
        self.chunk_tokens = chunk_tokens or retrieval.chunk_tokens
        self.chunk_overlap = retrieval.chunk_overlap if chunk_overlap is None else chunk_overlap
        if self.chunk_overlap >= self.chunk_tokens:
            raise AssistantError(
                f"chunk overlap ({self.chunk_overlap}) must be smaller than the chunk size"
                f" ({self.chunk_tokens} tokens); lower chunk_overlap"
            )
        self.lock_timeout = lock_timeout
        self.commit_chunks = commit_chunks
        self._embedder = embedder
        self._state: _Loaded | None = None
        self._mutex = threading.RLock()

    # ----- configuration -------------------------------------------------------------------

    @property
    def index_dir(self) -> Path:
        return self.pack.index_dir

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            from assistant.runtime.models import load_embedder

            self._embedder = load_embedder(self.loaded)
        return self._embedder

    def dimension(self) -> int:
        model = self.embedder
        getter = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        return int(getter())

    def _chunking(self) -> dict[str, int]:
        return {
            "chunk_tokens": self.chunk_tokens,
            "chunk_overlap": self.chunk_overlap,
            "chunker_version": CHUNKER_VERSION,
        }

    def _problem(self, manifest: dict[str, Any]) -> str | None:
        """Why an index on disk cannot be used with these settings, or None."""
        if manifest.get("format_version") != store.FORMAT_VERSION:
            found = manifest.get("format_version")
            return f"index format {found} (this version reads {store.FORMAT_VERSION})"
        built = manifest.get("embedder", {}).get("name")
        if built != self.embedder_name:
            return f"embedder {built!r} (the settings say {self.embedder_name!r})"
        chunking = manifest.get("chunking", {})
        if chunking != self._chunking():
            return (
                f"chunking {chunking.get('chunk_tokens')}/{chunking.get('chunk_overlap')} tokens"
                f" v{chunking.get('chunker_version')} (the settings say"
                f" {self.chunk_tokens}/{self.chunk_overlap} v{CHUNKER_VERSION})"
            )
        return None

    def _mismatch(self, problem: str, generation: Path) -> AssistantError:
        name = self.pack.name
        return AssistantError(
            f"the index of pack {name!r} was built with {problem} ({generation / store.MANIFEST});"
            f" run `assistant index rebuild {name}` to rebuild it with the current settings"
        )

    def _damaged(self, path: Path, reason: str) -> AssistantError:
        name = self.pack.name
        return AssistantError(
            f"the index of pack {name!r} is damaged: {path} {reason}; run `assistant index"
            f" rebuild {name}` to rebuild it from {self.pack.docs_dir}"
        )

    def _missing(self) -> AssistantError:
        name = self.pack.name
        return AssistantError(
            f"pack {name!r} has no index yet: run `assistant index rebuild {name}` (indexes"
            f" {self.pack.docs_dir}) or `assistant index add-docs {name} PATH`"
        )

    # ----- reading -------------------------------------------------------------------------

    def exists(self) -> bool:
        return store.current_generation(self.index_dir) is not None

    def _open(self) -> _Loaded:
        """The live generation, (re)loaded when CURRENT names a new one."""
        with self._mutex:
            for _attempt in range(5):
                generation = store.current_generation(self.index_dir)
                if generation is None:
                    raise self._missing()
                if self._state is not None and self._state.generation == generation:
                    return self._state
                try:
                    state = self._load(generation)
                except _Unreadable as exc:
                    if store.current_generation(self.index_dir) == generation:
                        raise self._damaged(exc.path, exc.reason) from None
                    # A writer switched CURRENT and swept this generation while it was opened.
                    time.sleep(0.05)
                    continue
                # The old connection is left to the garbage collector: another thread may still
                # be fetching hits through it.
                self._state = state
                return self._state
            raise AssistantError(
                f"the index of pack {self.pack.name!r} changed while it was being opened; try again"
            )

    def _load(self, generation: Path) -> _Loaded:
        """Read and check one generation; _Unreadable names the file that failed."""
        import faiss

        path = generation / store.MANIFEST
        try:
            manifest = store.read_manifest(generation)
            problem = self._problem(manifest)
            if problem:
                raise self._mismatch(problem, generation)
            damage = store.verify_generation(generation, manifest)
            if damage:
                raise _Unreadable(*damage)
            path = generation / store.VECTORS
            vectors = faiss.read_index(str(path))
            dimension, chunks = manifest["embedder"].get("dimension"), manifest.get("chunks")
            if (vectors.d, vectors.ntotal) != (dimension, chunks):
                raise _Unreadable(
                    path,
                    f"holds {vectors.ntotal} vectors of {vectors.d} dimensions, the"
                    f" manifest says {chunks} of {dimension}",
                )
            path = generation / store.BM25_DIR
            bm25 = BM25Index.load(path)
            path = generation / store.DOCSTORE
            db = store.connect_readonly(generation)
            db.execute("SELECT COUNT(*) FROM chunks").fetchone()
        except (OSError, RuntimeError, ValueError, KeyError, sqlite3.Error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise _Unreadable(path, f"cannot be read ({' '.join(reason.split())})") from None
        return _Loaded(generation, manifest, db, vectors, bm25)

    def _rows(self, state: _Loaded, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows from the docstore; a damaged docstore is an AssistantError naming it."""
        with self._mutex:
            try:
                return state.db.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                raise self._damaged(state.generation / store.DOCSTORE, f"({exc})") from None

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.embedder.encode(
            list(texts),
            batch_size=32,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def dense_search(self, query: str, k: int = 5) -> list[Hit]:
        state = self._open()
        qvec = self._embed([query])
        scores, ids = state.vectors.search(qvec, k)
        pairs = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
        return self._hits(state, [(i, s, s, None) for i, s in pairs])

    def bm25_search(self, query: str, k: int = 5) -> list[Hit]:
        state = self._open()
        top = state.bm25.top(state.bm25.scores(query), k)
        return self._hits(state, [(i, s, None, s) for i, s in top])

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """Hybrid search: FAISS cosine and BM25 rankings fused by reciprocal rank fusion."""
        if not query.strip():
            return []
        state = self._open()
        qvec = self._embed([query])
        n = max(CANDIDATES, k)
        scores, ids = state.vectors.search(qvec, min(n, max(state.vectors.ntotal, 1)))
        dense = {int(i): float(s) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0}
        bm25_all = state.bm25.scores(query)
        lexical = dict(state.bm25.top(bm25_all, n))
        fused = rrf([list(dense), list(lexical)])
        best = sorted(fused, key=lambda i: (-fused[i], i))[:k]
        rows = []
        for chunk_id in best:
            cosine = dense.get(chunk_id)
            if cosine is None:
                cosine = float(state.vectors.reconstruct(chunk_id) @ qvec[0])
            bm25 = lexical.get(chunk_id)
            if bm25 is None and len(bm25_all):
                pos = int(np.searchsorted(state.bm25.ids, chunk_id))
                bm25 = float(bm25_all[pos])
            rows.append((chunk_id, fused[chunk_id], cosine, bm25 or 0.0))
        return self._hits(state, rows)

    def _hits(
        self, state: _Loaded, rows: list[tuple[int, float, float | None, float | None]]
    ) -> list[Hit]:
        if not rows:
            return []
        ids = [r[0] for r in rows]
        marks = ",".join("?" * len(ids))
        found = {
            row[0]: row
            for row in self._rows(
                state,
                "SELECT c.id, c.text, c.path, d.title, c.section, c.page, c.start, c.end"
                f" FROM chunks c JOIN documents d ON d.path = c.path WHERE c.id IN ({marks})",
                ids,
            )
        }
        hits = []
        for rank, (chunk_id, score, dense, bm25) in enumerate(rows, start=1):
            row = found.get(chunk_id)
            if row is None:
                path = state.generation / store.DOCSTORE
                raise self._damaged(path, f"has no row for chunk {chunk_id} of the vectors")
            hits.append(Hit(*row, score=score, dense_score=dense, bm25_score=bm25, rank=rank))
        return hits

    def chunk(self, chunk_id: int) -> Hit:
        """One chunk by id, as a Hit without scores."""
        hits = self._hits(self._open(), [(chunk_id, 0.0, None, None)]) if chunk_id >= 0 else []
        if not hits:
            raise AssistantError(f"no chunk {chunk_id} in the index of pack {self.pack.name!r}")
        return hits[0]

    def _rel(self, path: str | Path) -> str:
        text = Path(path).as_posix()
        return text if text.startswith("docs/") else f"docs/{text}"

    def document_text(self, path: str | Path) -> str:
        """The extracted text of a document that chunk offsets refer to."""
        state = self._open()
        rows = self._rows(state, "SELECT text FROM documents WHERE path = ?", (self._rel(path),))
        if not rows:
            raise AssistantError(f"{path} is not in the index of pack {self.pack.name!r}")
        return rows[0][0]

    def documents(self) -> list[DocumentRecord]:
        rows = self._rows(
            self._open(),
            "SELECT d.path, d.sha256, d.bytes, d.kind, d.title, d.meta, d.updated,"
            " (SELECT COUNT(*) FROM chunks c WHERE c.path = d.path)"
            " FROM documents d ORDER BY d.path",
        )
        return [
            DocumentRecord(p, sha, size, kind, title, json.loads(meta), n, updated)
            for p, sha, size, kind, title, meta, updated, n in rows
        ]

    def stats(self) -> IndexStats:
        """Size and make of the index, read from the manifest (works on a mismatched index)."""
        generation = store.current_generation(self.index_dir)
        if generation is None:
            return IndexStats(self.pack.name, False, path=str(self.index_dir))
        try:
            manifest = store.read_manifest(generation)
        except (OSError, ValueError) as exc:
            problem = f"damaged: {generation / store.MANIFEST} cannot be read ({exc})"
            return IndexStats(self.pack.name, True, path=str(self.index_dir), problem=problem)
        chunking = manifest.get("chunking", {})
        embedder = manifest.get("embedder", {})
        return IndexStats(
            pack=self.pack.name,
            exists=True,
            documents=manifest.get("documents", 0),
            chunks=manifest.get("chunks", 0),
            bytes=store.folder_bytes(generation),
            embedder=embedder.get("name"),
            dimension=embedder.get("dimension"),
            chunk_tokens=chunking.get("chunk_tokens"),
            chunk_overlap=chunking.get("chunk_overlap"),
            updated=manifest.get("updated"),
            generation=generation.name,
            path=str(self.index_dir),
            problem=self._problem(manifest),
        )

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
        started = time.perf_counter()
        report = IndexReport()
        docs = self._docs_inside_pack()
        found, skipped = expand([Path(p) for p in paths], include, exclude)
        report.skipped.extend(skipped)
        items: dict[str, tuple[Path, Path | None]] = {}
        for entry in found:
            real = entry.path.resolve()
            dest: Path | None
            if real.is_relative_to(docs):
                dest = real
            elif entry.base is None:
                dest = docs / entry.path.name
            else:
                dest = docs / entry.relative
            rel = "docs/" + dest.relative_to(docs).as_posix()
            if rel in items:
                report.skipped.append(
                    Skipped(str(entry.path), f"{items[rel][0]} goes to {rel} as well")
                )
                continue
            items[rel] = (entry.path, None if dest == real else dest)
        with self._writing():
            self._write(items, report, progress, fresh=False)
        report.seconds = time.perf_counter() - started
        return report

    def _docs_inside_pack(self) -> Path:
        """The real docs/ folder; refused when a link takes it out of the pack (indexing it
        would read, and add-docs would write, wherever the link leads)."""
        docs = self.pack.docs_dir.resolve()
        if not docs.is_relative_to(self.pack.root.resolve()):
            raise AssistantError(
                f"{self.pack.docs_dir} links to {docs}, outside the pack; make docs/ a real"
                " folder inside the pack"
            )
        return docs

    def rebuild(self, progress: Progress | None = None) -> IndexReport:
        """Index every file under the pack's docs/ from scratch with the current settings, and
        switch to the new index in one step."""
        started = time.perf_counter()
        report = IndexReport()
        docs = self.pack.docs_dir
        if not docs.is_dir():
            raise AssistantError(
                f"pack {self.pack.name!r} has no docs folder {docs}; create it and put documents"
                f" in it, or run `assistant index add-docs {self.pack.name} PATH`"
            )
        self._docs_inside_pack()
        found, skipped = expand([docs])
        report.skipped.extend(skipped)
        items: dict[str, tuple[Path, Path | None]] = {
            "docs/" + f.relative: (f.path, None) for f in found
        }
        with self._writing():
            self._write(items, report, progress, fresh=True)
        report.seconds = time.perf_counter() - started
        return report

    def remove(self, paths: Iterable[str | Path], delete_files: bool = True) -> IndexReport:
        """Drop documents (or every document under a folder) from the index, and by default
        delete their copies from the pack's docs/."""
        started = time.perf_counter()
        report = IndexReport()
        with self._writing():
            state = self._open()
            known = [r[0] for r in self._rows(state, "SELECT path FROM documents")]
            doomed: list[str] = []
            leftovers: list[str] = []  # files a killed remove unindexed but did not delete
            for given in paths:
                rel = self._to_rel(given)
                matched = [p for p in known if p == rel or p.startswith(rel.rstrip("/") + "/")]
                if not matched and delete_files and self._is_doc_file(rel):
                    leftovers.append(rel)
                elif not matched:
                    report.skipped.append(Skipped(str(given), "not in the index"))
                doomed.extend(p for p in matched if p not in doomed)
            if doomed:
                self._commit(state, [], doomed, fresh=False)
                report.removed.extend(doomed)
            if delete_files:
                for rel in doomed + leftovers:
                    (self.pack.root / rel).unlink(missing_ok=True)
                report.removed.extend(leftovers)
            report.chunks_total = self._state.manifest["chunks"] if self._state else 0
        report.seconds = time.perf_counter() - started
        return report

    def _is_doc_file(self, rel: str) -> bool:
        path = self.pack.root / rel
        return path.is_file() and path.resolve().is_relative_to(self.pack.docs_dir.resolve())

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the pack's write lock; a write that fails (a full disk, a read-only folder)
        becomes one AssistantError, and the live index keeps its last complete generation."""
        try:
            with store.write_lock(self.index_dir, self.pack.name, self.lock_timeout):
                yield
        except (OSError, sqlite3.Error) as exc:
            if isinstance(exc, OSError) and exc.strerror:
                where = f" ({exc.filename})" if exc.filename else ""
                reason = f"{exc.strerror}{where}"
            else:
                reason = str(exc) or type(exc).__name__
            try:
                free = f"{shutil.disk_usage(self.index_dir).free / 2**20:.1f} MiB free there"
            except OSError:
                free = "free space unknown"
            name = self.pack.name
            raise AssistantError(
                f"cannot write the index of pack {name!r} in {self.index_dir} ({free}):"
                f" {' '.join(reason.split())}; the index still holds its last complete version;"
                f" free some disk space (or fix the folder's permissions) and run the command"
                f" again"
            ) from None

    def _to_rel(self, given: str | Path) -> str:
        """A path as the index names it: a file under docs/ (absolute, or relative to the
        current folder), else a pack-relative path ("docs/a.md") or a docs-relative one."""
        path = Path(given)
        if path.is_absolute() or path.exists():
            try:
                return "docs/" + path.resolve().relative_to(self.pack.docs_dir.resolve()).as_posix()
            except ValueError:
                pass
        return self._rel(path)

    def _write(
        self,
        items: dict[str, tuple[Path, Path | None]],
        report: IndexReport,
        progress: Progress | None,
        *,
        fresh: bool,
    ) -> None:
        """Index `items` (pack path -> (source file, copy destination or None when indexed in
        place)). `fresh` starts from an empty index and publishes once at the end; otherwise
        every `commit_chunks` new chunks are published, so a crash loses only that batch."""
        state = None if fresh or not self.exists() else self._open()
        hashes: dict[str, str] = {}
        if state is not None:
            hashes = dict(self._rows(state, "SELECT path, sha256 FROM documents"))
        chunker = Chunker(self.embedder.tokenizer, self.chunk_tokens, self.chunk_overlap)
        pending: list[_Pending] = []
        embedded: list[_Pending] = []
        total = len(items)
        done = 0

        def tick(label: str) -> None:
            nonlocal done
            done += 1
            if progress:
                progress(done, total, label)

        def embed_pending() -> None:
            inputs = [
                embedding_input(c.text, p.doc.title, c.section) for p in pending for c in p.chunks
            ]
            vectors = self._embed(inputs) if inputs else np.zeros((0, 1), np.float32)
            offset = 0
            for item in pending:
                item.vectors = vectors[offset : offset + len(item.chunks)]
                offset += len(item.chunks)
                tick(item.rel)
            report.chunks_embedded += len(inputs)
            embedded.extend(pending)
            pending.clear()

        def publish() -> None:
            nonlocal state
            if not embedded:
                return
            state = self._commit(state, embedded, [], fresh=fresh and state is None)
            embedded.clear()

        for rel, (source, dest) in items.items():
            try:
                sha, size = file_sha256(source)
            except OSError as exc:
                report.skipped.append(Skipped(str(source), f"cannot read: {exc.strerror}"))
                tick(rel)
                continue
            if hashes.get(rel) == sha:
                if dest is not None and not _same_file_content(dest, sha):
                    copy_atomic(source, dest)
                report.unchanged.append(rel)
                tick(rel)
                continue
            try:
                doc = load_document(source)
            except SkipFile as exc:
                report.skipped.append(Skipped(str(source), str(exc)))
                tick(rel)
                continue
            chunks = chunker.chunk(doc)
            if not chunks:
                report.skipped.append(Skipped(str(source), "no text to index"))
                tick(rel)
                continue
            if dest is not None:
                copy_atomic(source, dest)
            outcome = "updated" if rel in hashes else "added"
            pending.append(_Pending(rel, outcome, sha, size, doc, chunks))
            getattr(report, outcome).append(rel)
            if sum(len(p.chunks) for p in pending) >= EMBED_BATCH:
                embed_pending()
            if not fresh and sum(len(p.chunks) for p in embedded) >= self.commit_chunks:
                publish()
        embed_pending()
        if fresh and state is None and not embedded:
            state = self._commit(None, [], [], fresh=True)  # an empty but valid index
        publish()
        report.chunks_total = self._state.manifest["chunks"] if self._state else 0

    def _commit(
        self, state: _Loaded | None, docs: list[_Pending], removed: list[str], *, fresh: bool
    ) -> _Loaded:
        """Write the next generation: `docs` replace their previous versions, `removed` go."""
        import faiss

        base = None if fresh or state is None else state.generation
        # A removal needs no embedder: the dimension comes from the live index.
        dim = self.dimension() if base is None or state is None else int(state.vectors.d)
        if base is None:
            vectors = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
            next_id = 1
            created = store.now_iso()
        else:
            assert state is not None
            vectors = faiss.clone_index(state.vectors)
            next_id = int(state.manifest["next_id"])
            created = state.manifest.get("created", store.now_iso())
        writer = store.GenerationWriter(self.index_dir, base)
        try:
            db = writer.db
            stale = removed + [d.rel for d in docs if d.outcome == "updated"]
            if stale:
                marks = ",".join("?" * len(stale))
                old = [
                    r[0]
                    for r in db.execute(f"SELECT id FROM chunks WHERE path IN ({marks})", stale)
                ]
                if old:
                    vectors.remove_ids(np.asarray(old, dtype=np.int64))
                db.execute(f"DELETE FROM chunks WHERE path IN ({marks})", stale)
                db.execute(f"DELETE FROM documents WHERE path IN ({marks})", stale)
            now = store.now_iso()
            for item in docs:
                d = item.doc
                db.execute(
                    "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        item.rel,
                        item.sha256,
                        item.size,
                        d.kind,
                        d.title,
                        json.dumps(d.meta),
                        d.text,
                        now,
                    ),
                )
                ids = np.arange(next_id, next_id + len(item.chunks), dtype=np.int64)
                next_id += len(item.chunks)
                db.executemany(
                    "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (int(i), item.rel, n, c.text, c.start, c.end, c.section, c.page)
                        for n, (i, c) in enumerate(zip(ids, item.chunks, strict=True))
                    ],
                )
                assert item.vectors is not None
                vectors.add_with_ids(item.vectors, ids)
            rows = db.execute("SELECT id, text FROM chunks ORDER BY id").fetchall()
            bm25 = BM25Index.build([r[0] for r in rows], [r[1] for r in rows])
            documents = db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
            manifest = {
                "format_version": store.FORMAT_VERSION,
                "pack": self.pack.name,
                "embedder": {"name": self.embedder_name, "dimension": dim},
                "chunking": self._chunking(),
                "documents": documents,
                "chunks": len(rows),
                "next_id": next_id,
                "created": created,
                "updated": now,
            }
            generation = writer.publish(vectors, bm25, manifest)
        except BaseException:
            writer.discard()
            raise
        with self._mutex:
            db = store.connect_readonly(generation)
            self._state = _Loaded(generation, manifest, db, vectors, bm25)
        return self._state


def _same_file_content(path: Path, sha: str) -> bool:
    try:
        return file_sha256(path)[0] == sha
    except OSError:
        return False


def open_index(
    pack: DomainPack,
    loaded: LoadedSettings,
    *,
    chunk_tokens: int | None = None,
    chunk_overlap: int | None = None,
    embedder: Any = None,
    lock_timeout: float = store.LOCK_TIMEOUT,
) -> KnowledgeIndex:
    """The knowledge index of `pack`; chunking defaults to `settings.retrieval`. Nothing is read
    until the first search or write. `embedder` replaces the shared one (tests, benchmarks)."""
    return KnowledgeIndex(
        pack,
        loaded,
        chunk_tokens=chunk_tokens,
        chunk_overlap=chunk_overlap,
        embedder=embedder,
        lock_timeout=lock_timeout,
    )
