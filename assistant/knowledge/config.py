"""What one pack's index is built with (its chunking and embedder), how the pack's own settings
become that, and the errors that name the pack and the command that helps.

The chunking comes from the pack's pack.toml [retrieval] section, whose missing keys take the
global [retrieval] settings; a pack without a pack.toml uses the global settings. The vector
store (and its Milvus place) is a pack-only key of that section: FAISS when the pack says none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError, DamagedDataError, NotFoundError
from assistant.knowledge import store
from assistant.knowledge.chunking import CHUNKER_VERSION
from assistant.knowledge.vectors import StorePlace, StoreSettings
from assistant.packs.locate import DomainPack
from assistant.runtime.models import embedder_id
from assistant.settings import LoadedSettings

COMMIT_CHUNKS = 2048  # add-docs publishes a generation after this many new chunks


def pack_retrieval(pack: DomainPack, loaded: LoadedSettings) -> tuple[int, int, StoreSettings]:
    """(chunk_tokens, chunk_overlap, vector store) as the pack's pack.toml says, else the global
    settings and FAISS."""
    if not pack.pack_toml.is_file():
        retrieval = loaded.settings.retrieval
        return retrieval.chunk_tokens, retrieval.chunk_overlap, StoreSettings()
    from assistant.packs.format import load_pack_config

    own: Any = load_pack_config(pack, loaded).retrieval
    vectors = StoreSettings(own.store, own.milvus_uri, own.milvus_token_env, own.milvus_collection)
    return own.chunk_tokens, own.chunk_overlap, vectors


def doc_path(path: str | Path) -> str:
    """A document's path as the index names it: relative to the pack, under docs/."""
    text = Path(path).as_posix()
    return text if text.startswith("docs/") else f"docs/{text}"


@dataclass(frozen=True)
class IndexConfig:
    """The settings one pack's index is read and written with."""

    pack: DomainPack
    loaded: LoadedSettings
    chunk_tokens: int
    chunk_overlap: int
    lock_timeout: float = store.LOCK_TIMEOUT
    commit_chunks: int = COMMIT_CHUNKS
    store: StoreSettings = StoreSettings()
    embedder_name: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "embedder_name", embedder_id(self.loaded))
        if self.chunk_overlap >= self.chunk_tokens:
            raise AssistantError(
                f"chunk overlap ({self.chunk_overlap}) must be smaller than the chunk size"
                f" ({self.chunk_tokens} tokens); lower chunk_overlap"
            )

    @property
    def index_dir(self) -> Path:
        return self.pack.index_dir

    @property
    def place(self) -> StorePlace:
        """Where the pack's vector store keeps its vectors."""
        return StorePlace(self.store, self.pack.name, self.index_dir)

    def chunking(self) -> dict[str, int]:
        """The chunking as a manifest records it."""
        return {
            "chunk_tokens": self.chunk_tokens,
            "chunk_overlap": self.chunk_overlap,
            "chunker_version": CHUNKER_VERSION,
        }

    def problem(self, manifest: dict[str, Any]) -> str | None:
        """Why an index on disk cannot be used with these settings, or None."""
        if manifest.get("format_version") != store.FORMAT_VERSION:
            found = manifest.get("format_version")
            return f"index format {found} (this version reads {store.FORMAT_VERSION})"
        built = manifest.get("embedder", {}).get("name")
        if built != self.embedder_name:
            return f"embedder {built!r} (the settings say {self.embedder_name!r})"
        chunking = manifest.get("chunking", {})
        if chunking != self.chunking():
            return (
                f"chunking {chunking.get('chunk_tokens')}/{chunking.get('chunk_overlap')} tokens"
                f" v{chunking.get('chunker_version')} (the settings say"
                f" {self.chunk_tokens}/{self.chunk_overlap} v{CHUNKER_VERSION})"
            )
        return None

    # ----- errors that name this pack ------------------------------------------------------

    def mismatch(self, problem: str, generation: Path) -> DamagedDataError:
        """The index was built with other settings (or by another version): its data does not
        fit this installation until it is rebuilt."""
        name = self.pack.name
        return DamagedDataError(
            f"the index of pack {name!r} was built with {problem} ({generation / store.MANIFEST});"
            f" run `assistant index rebuild {name}` to rebuild it with the current settings"
        )

    def damaged(self, path: Path, reason: str) -> DamagedDataError:
        name = self.pack.name
        return DamagedDataError(
            f"the index of pack {name!r} is damaged: {path} {reason}; run `assistant index"
            f" rebuild {name}` to rebuild it from {self.pack.docs_dir}"
        )

    def missing(self) -> NotFoundError:
        name = self.pack.name
        return NotFoundError(
            f"pack {name!r} has no index yet: run `assistant index rebuild {name}` (indexes"
            f" {self.pack.docs_dir}) or `assistant index add-docs {name} PATH`"
        )
