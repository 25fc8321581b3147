"""The records the knowledge layer hands out: hits, reports of writes, statistics."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from assistant.knowledge.walk import Skipped


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk. `start`/`end` are character offsets into the document's extracted
    text (`KnowledgeIndex.document_text(path)`); `path` is relative to the pack folder."""

    chunk_id: int
    text: str
    path: str
    title: str
    section: str | None
    page: int | None
    start: int
    end: int
    score: float = 0.0
    dense_score: float | None = None
    bm25_score: float | None = None
    rank: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def metadata(self) -> dict[str, Any]:
        """Everything but the text: the metadata of a langchain Document."""
        data = asdict(self)
        del data["text"]
        return data


@dataclass(frozen=True)
class DocumentRecord:
    """A document in the index."""

    path: str
    sha256: str
    bytes: int
    kind: str
    title: str
    meta: dict[str, str]
    chunks: int
    updated: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IndexReport:
    """What a write did: paths (relative to the pack) per outcome, and skipped files."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    chunks_embedded: int = 0
    chunks_total: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"added {len(self.added)}, updated {len(self.updated)},"
            f" unchanged {len(self.unchanged)}, skipped {len(self.skipped)}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "removed": len(self.removed),
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "chunks_embedded": self.chunks_embedded,
            "chunks": self.chunks_total,
            "seconds": round(self.seconds, 3),
            "paths": {
                "added": self.added,
                "updated": self.updated,
                "unchanged": self.unchanged,
                "removed": self.removed,
            },
        }


@dataclass(frozen=True)
class IndexStats:
    """The size and make of a pack's index."""

    pack: str
    exists: bool
    documents: int = 0
    chunks: int = 0
    bytes: int = 0
    embedder: str | None = None
    dimension: int | None = None
    chunk_tokens: int | None = None
    chunk_overlap: int | None = None
    updated: str | None = None
    generation: str | None = None
    path: str = ""
    problem: str | None = None
    store: str | None = None  # where the vectors are: "faiss", or "milvus" with its collection

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MigrateReport:
    """What `migrate` did: the store the vectors came from and went to (the same: nothing to
    do), how many, the generation that holds them now and its manifest's record of them."""

    pack: str
    source: str
    target: str
    vectors: int
    generation: str
    where: dict[str, Any]
    seconds: float = 0.0

    @property
    def moved(self) -> bool:
        return self.source != self.target

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
