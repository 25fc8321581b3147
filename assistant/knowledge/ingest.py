"""The write side of an index: add documents (copied into the pack's docs/), rebuild from docs/,
remove documents, migrate the vectors to another store. Each write holds the pack's lock, builds
the next generation beside the live one and switches to it (pipeline.py, commit.py); a write
that fails (a full disk, a read-only folder) is one AssistantError, and the live index keeps its
last complete generation.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from assistant.errors import AssistantError
from assistant.knowledge import store
from assistant.knowledge.commit import commit_generation
from assistant.knowledge.config import IndexConfig, doc_path
from assistant.knowledge.embedding import Embedding
from assistant.knowledge.pipeline import Items, Progress, WriteRun
from assistant.knowledge.search import IndexReader
from assistant.knowledge.types import IndexReport, MigrateReport
from assistant.knowledge.vectors import recorded_store
from assistant.knowledge.walk import Found, Skipped, expand


class IndexWriter:
    """Writes one pack's index; a second writer (in any process) waits for the lock."""

    def __init__(self, config: IndexConfig, embedding: Embedding, reader: IndexReader) -> None:
        self.config = config
        self.embedding = embedding
        self.reader = reader
        self.pack = config.pack

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
        items = self._destinations(found, docs, report)
        with self._writing():
            self._run(items, report, progress, fresh=False)
        report.seconds = time.perf_counter() - started
        return report

    def _destinations(self, found: list[Found], docs: Path, report: IndexReport) -> Items:
        """Where each file goes under docs/ (a file already there stays); a second file bound
        for the same place is skipped."""
        items: Items = {}
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
        return items

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
        items: Items = {"docs/" + f.relative: (f.path, None) for f in found}
        with self._writing():
            self._run(items, report, progress, fresh=True)
        report.seconds = time.perf_counter() - started
        return report

    def _run(
        self, items: Items, report: IndexReport, progress: Progress | None, *, fresh: bool
    ) -> None:
        WriteRun(self.config, self.embedding, self.reader, report, progress, fresh=fresh).run(items)

    def remove(self, paths: Iterable[str | Path], delete_files: bool = True) -> IndexReport:
        """Drop documents (or every document under a folder) from the index, and by default
        delete their copies from the pack's docs/."""
        started = time.perf_counter()
        report = IndexReport()
        with self._writing():
            state = self.reader.current()
            known = self.reader.query(state, store.document_paths)
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
                published = commit_generation(
                    self.config, self.embedding, state, [], doomed, fresh=False
                )
                self.reader.adopt(published)
                report.removed.extend(doomed)
            if delete_files:
                for rel in doomed + leftovers:
                    (self.pack.root / rel).unlink(missing_ok=True)
                report.removed.extend(leftovers)
            report.chunks_total = self.reader.chunks_total()
        report.seconds = time.perf_counter() - started
        return report

    def migrate(self, to: str) -> MigrateReport:
        """Copy the live generation's vectors, as stored, into the store `to` as the next
        generation (the docstore and BM25 copied along); nothing is embedded. The pack's
        settings must name `to` already, since new generations go where they say."""
        started = time.perf_counter()
        name = self.pack.name
        setting = self.config.store.name
        if to != setting:
            raise AssistantError(
                f"pack {name!r} writes its vectors to the {setting!r} store ([retrieval] store in"
                f" {self.pack.pack_toml}); set store = {to!r} there first, then run"
                f" `assistant index migrate {name} --to {to}` again"
            )
        with self._writing():
            state = self.reader.current()
            source = recorded_store(state.manifest)[0]
            if source != to:
                state = commit_generation(self.config, self.embedding, state, [], [], fresh=False)
                self.reader.adopt(state)
        return MigrateReport(
            pack=name,
            source=source,
            target=to,
            vectors=state.vectors.count,
            generation=state.generation.name,
            where=state.manifest.get("vectors", {}),
            seconds=time.perf_counter() - started,
        )

    # ----- paths in the pack -----------------------------------------------------------------

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

    def _is_doc_file(self, rel: str) -> bool:
        path = self.pack.root / rel
        return path.is_file() and path.resolve().is_relative_to(self.pack.docs_dir.resolve())

    def _to_rel(self, given: str | Path) -> str:
        """A path as the index names it: a file under docs/ (absolute, or relative to the
        current folder), else a pack-relative path ("docs/a.md") or a docs-relative one."""
        path = Path(given)
        if path.is_absolute() or path.exists():
            try:
                return "docs/" + path.resolve().relative_to(self.pack.docs_dir.resolve()).as_posix()
            except ValueError:
                pass
        return doc_path(path)

    # ----- the lock --------------------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the pack's write lock; a write that fails (a full disk, a read-only folder)
        becomes one AssistantError, and the live index keeps its last complete generation."""
        index_dir = self.config.index_dir
        try:
            with store.write_lock(index_dir, self.pack.name, self.config.lock_timeout):
                yield
        except (OSError, sqlite3.Error) as exc:
            raise AssistantError(
                f"cannot write the index of pack {self.pack.name!r} in {index_dir}"
                f" ({_free_space(index_dir)}): {_reason(exc)}; the index still holds its last"
                " complete version; free some disk space (or fix the folder's permissions) and"
                " run the command again"
            ) from None


def _reason(exc: OSError | sqlite3.Error) -> str:
    """Why a write failed, on one line, with the file when the system named one."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        reason = f"{exc.strerror}{where}"
    else:
        reason = str(exc) or type(exc).__name__
    return " ".join(reason.split())


def _free_space(folder: Path) -> str:
    try:
        return f"{shutil.disk_usage(folder).free / 2**20:.1f} MiB free there"
    except OSError:
        return "free space unknown"
