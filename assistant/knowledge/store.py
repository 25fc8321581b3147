"""The on-disk index: immutable generations switched by an atomic pointer file.

    indexes/<pack>/
      CURRENT            name of the live generation, replaced atomically (temp, fsync, rename)
      .lock              writers hold it (filelock); readers never need it
      g000007/           one complete, never-modified generation:
        manifest.json    format version, embedder name and dimension, chunking, counts, times
        docstore.sqlite  documents (path, content hash, extracted text, metadata) and chunks
        vectors.faiss    IndexIDMap2(IndexFlatIP) of normalized vectors, ids = chunk ids (with
                         [retrieval] store = "milvus" a Milvus collection instead, which the
                         manifest names: vectors/milvus_store.py)
        bm25/            the bm25s index over chunk texts (numpy + JSON, no pickle)

A writer builds the next generation in a temporary folder beside the others, fsyncs every file,
renames the folder into place and only then rewrites CURRENT. A process killed at any moment
leaves CURRENT naming the previous complete generation; leftovers are swept by the next writer
as soon as it holds the lock.
Readers open whatever CURRENT names, so they never see a half-written index.

The manifest, written last, records the size and SHA-256 of every other file of its generation;
`verify_generation` checks them when the index is opened, so a truncated or damaged file is
reported (with the file's name) instead of being read. Manifests written before this check was
added carry no "files" and are trusted.

Every SQL statement of the knowledge layer is here, at the end: the reads a search makes and the
writes that fill the next generation's docstore.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

from assistant.errors import AssistantError
from assistant.fsio import atomic_write_bytes, fsync_path
from assistant.knowledge.vectors import VectorsBuilder
from assistant.knowledge.vectors.faiss_store import VECTORS as VECTORS  # the FAISS file

if TYPE_CHECKING:
    from assistant.knowledge.loaders import LoadedDocument

FORMAT_VERSION = 1
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
DOCSTORE = "docstore.sqlite"
BM25_DIR = "bm25"
LOCK_TIMEOUT = 30.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    path TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    meta TEXT NOT NULL,
    text TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL REFERENCES documents(path),
    ord INTEGER NOT NULL,
    text TEXT NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    section TEXT,
    page INTEGER
);
CREATE INDEX IF NOT EXISTS chunks_path ON chunks(path);
"""


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def current_generation(index_dir: Path) -> Path | None:
    """The live generation folder, or None when the pack has no index yet."""
    try:
        name = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    folder = index_dir / name
    return folder if name and (folder / MANIFEST).is_file() else None


def read_manifest(generation: Path) -> dict[str, Any]:
    """The generation's manifest; ValueError when it is not valid JSON of the expected shape."""
    manifest = json.loads((generation / MANIFEST).read_text(encoding="utf-8"))
    if not isinstance(manifest, dict) or not all(
        isinstance(manifest.get(key), dict) for key in ("embedder", "chunking")
    ):
        raise ValueError("not an index manifest")
    return manifest


def file_digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def describe_files(generation: Path) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of every file of a generation, by path relative to it."""
    return {
        path.relative_to(generation).as_posix(): {
            "bytes": path.stat().st_size,
            "sha256": file_digest(path),
        }
        for path in sorted(generation.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }


def verify_generation(generation: Path, manifest: dict[str, Any]) -> tuple[Path, str] | None:
    """The first file that differs from what the manifest recorded, and how; None when all
    match (or the manifest predates the check). Raises OSError when a file cannot be read."""
    files = manifest.get("files")
    if files is None:
        return None
    if not isinstance(files, dict):
        return generation / MANIFEST, "has no valid file list"
    for name, expected in sorted(files.items()):
        path = generation / name
        if not isinstance(expected, dict):
            return path, "has no valid entry in the manifest"
        size = path.stat().st_size
        if size != expected.get("bytes"):
            return path, f"has {size} bytes where {expected.get('bytes')} were written"
        if file_digest(path) != expected.get("sha256"):
            return path, "does not match the checksum recorded when it was written"
    return None


def connect_readonly(generation: Path) -> sqlite3.Connection:
    # immutable=1: published generations never change, so SQLite needs no locks or journal.
    uri = f"file:{(generation / DOCSTORE).as_posix()}?mode=ro&immutable=1"
    return sqlite3.connect(uri, uri=True, check_same_thread=False)


@contextmanager
def write_lock(index_dir: Path, pack: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the pack's writer lock; a second writer waits up to `timeout` seconds, then fails."""
    index_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(index_dir / ".lock"), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise AssistantError(
            f"the index of pack {pack!r} is being written by another process (lock"
            f" {index_dir / '.lock'} held for over {timeout:.0f} s); wait for it to finish,"
            " then run the command again"
        ) from None
    try:
        sweep_temporary(index_dir)  # a write that publishes nothing still cleans up after crashes
        yield
    finally:
        lock.release()


class GenerationWriter:
    """Builds the next generation in a temporary folder; `publish` makes it live atomically.

    Must be used under `write_lock`."""

    def __init__(self, index_dir: Path, base: Path | None) -> None:
        self.index_dir = index_dir
        self.base = base
        self.number = next_generation_number(index_dir)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".tmp-g{self.number:06d}-", dir=index_dir))
        self.final = index_dir / f"g{self.number:06d}"
        try:
            if base is not None:
                shutil.copyfile(base / DOCSTORE, self.tmp / DOCSTORE)
            self.db = sqlite3.connect(self.tmp / DOCSTORE)
            # The folder is thrown away on a crash, so no journal is needed while building it.
            self.db.execute("PRAGMA journal_mode=OFF")
            self.db.execute("PRAGMA synchronous=OFF")
            self.db.executescript(SCHEMA)
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise

    def discard(self) -> None:
        """Throw the new generation away after a failure, unless CURRENT names it already."""
        self.db.close()
        live = current_generation(self.index_dir)
        for folder in (self.tmp, self.final):
            if folder != live:
                shutil.rmtree(folder, ignore_errors=True)

    def publish(self, vectors: VectorsBuilder, bm25: Any, manifest: dict[str, Any]) -> Path:
        """Save the vectors (in their store, which makes them durable), write BM25 and the
        manifest, fsync everything, rename into place and point CURRENT at it. Returns the live
        generation folder."""
        self.db.commit()
        self.db.close()
        manifest["vectors"] = vectors.save(self.tmp)
        bm25.save(self.tmp / BM25_DIR)
        manifest["files"] = describe_files(self.tmp)
        (self.tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        for path in sorted(self.tmp.rglob("*"), reverse=True):
            fsync_path(path)
        fsync_path(self.tmp)
        final = self.final
        os.rename(self.tmp, final)
        fsync_path(self.index_dir)
        atomic_write_bytes(self.index_dir / CURRENT, f"{final.name}\n".encode())
        sweep(self.index_dir, keep=self.kept())
        return final

    def kept(self) -> set[str]:
        """The generations a publish keeps: the new one and the one it was built on."""
        return {self.final.name, self.base.name if self.base else ""}


def forget(index_dir: Path, pack: str) -> None:
    """Make the pack's index unbuilt, under the writer lock: CURRENT goes first (no reader
    opens it again; one that has it open keeps its files until it closes them), then every
    generation. The next `rebuild` (or `setup`) builds it afresh."""
    if not index_dir.is_dir():
        return
    with write_lock(index_dir, pack):
        (index_dir / CURRENT).unlink(missing_ok=True)
        fsync_path(index_dir)
        sweep(index_dir, keep=set())


def next_generation_number(index_dir: Path) -> int:
    numbers = [int(p.name[1:]) for p in index_dir.glob("g[0-9]*") if p.name[1:].isdigit()]
    return max(numbers, default=0) + 1


def sweep_temporary(index_dir: Path) -> None:
    """Remove the temporary folders and files of writers that were killed (under the lock)."""
    for path in index_dir.iterdir():
        if path.name.startswith(".tmp-g") and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.startswith(f".{CURRENT}.") and path.is_file():
            path.unlink(missing_ok=True)


def sweep(index_dir: Path, keep: set[str]) -> None:
    """Remove older generations and leftovers of killed writers (under the lock). The previous
    generation is kept so a reader that is opening it right now can finish."""
    sweep_temporary(index_dir)
    for path in index_dir.iterdir():
        if path.is_dir() and path.name not in keep and path.name.startswith("g"):
            shutil.rmtree(path, ignore_errors=True)


# ----- the docstore: reads --------------------------------------------------------------------

HitRow = tuple[int, str, str, str, str | None, int | None, int, int]


def count_chunks(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])


def count_documents(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])


def hit_rows(db: sqlite3.Connection, ids: Sequence[int]) -> dict[int, HitRow]:
    """(id, text, path, title, section, page, start, end) of the chunks `ids`, by id."""
    marks = ",".join("?" * len(ids))
    rows = db.execute(
        "SELECT c.id, c.text, c.path, d.title, c.section, c.page, c.start, c.end"
        f" FROM chunks c JOIN documents d ON d.path = c.path WHERE c.id IN ({marks})",
        list(ids),
    ).fetchall()
    return {row[0]: row for row in rows}


def document_text(db: sqlite3.Connection, path: str) -> str | None:
    row = db.execute("SELECT text FROM documents WHERE path = ?", (path,)).fetchone()
    return None if row is None else row[0]


def document_rows(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """(path, sha256, bytes, kind, title, meta JSON, updated, chunk count) by path."""
    return db.execute(
        "SELECT d.path, d.sha256, d.bytes, d.kind, d.title, d.meta, d.updated,"
        " (SELECT COUNT(*) FROM chunks c WHERE c.path = d.path)"
        " FROM documents d ORDER BY d.path"
    ).fetchall()


def document_paths(db: sqlite3.Connection) -> list[str]:
    return [row[0] for row in db.execute("SELECT path FROM documents")]


def document_hashes(db: sqlite3.Connection) -> dict[str, str]:
    """The SHA-256 of every indexed document's file, by path."""
    return dict(db.execute("SELECT path, sha256 FROM documents").fetchall())


def chunk_texts(db: sqlite3.Connection) -> list[tuple[int, str]]:
    """(id, text) of every chunk, by id: the input of the BM25 index."""
    return db.execute("SELECT id, text FROM chunks ORDER BY id").fetchall()


def embedding_rows(db: sqlite3.Connection) -> list[tuple[int, str, str, str | None]]:
    """(id, text, document title, section) of every chunk, by id: what its vector was made of
    (benchmarks re-embed them)."""
    return db.execute(
        "SELECT c.id, c.text, d.title, c.section FROM chunks c"
        " JOIN documents d ON d.path = c.path ORDER BY c.id"
    ).fetchall()


# ----- the docstore: writes (on a GenerationWriter's db) -----------------------------------

ChunkRow = tuple[int, str, int, str, int, int, str | None, int | None]


def chunk_ids(db: sqlite3.Connection, paths: Sequence[str]) -> list[int]:
    marks = ",".join("?" * len(paths))
    return [row[0] for row in db.execute(f"SELECT id FROM chunks WHERE path IN ({marks})", paths)]


def delete_documents(db: sqlite3.Connection, paths: Sequence[str]) -> None:
    """Drop the documents `paths` and their chunks."""
    marks = ",".join("?" * len(paths))
    db.execute(f"DELETE FROM chunks WHERE path IN ({marks})", paths)
    db.execute(f"DELETE FROM documents WHERE path IN ({marks})", paths)


def insert_document(
    db: sqlite3.Connection,
    path: str,
    sha256: str,
    size: int,
    document: LoadedDocument,
    updated: str,
) -> None:
    db.execute(
        "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            path,
            sha256,
            size,
            document.kind,
            document.title,
            json.dumps(document.meta),
            document.text,
            updated,
        ),
    )


def insert_chunks(db: sqlite3.Connection, rows: Iterable[ChunkRow]) -> None:
    """Rows of (id, document path, position in the document, text, start, end, section,
    page)."""
    db.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
