"""The knowledge layer: documents -> chunks -> embeddings -> FAISS + BM25 + SQLite docstore.

from assistant.knowledge import open_index
idx = open_index(pack, loaded)          # chunked as the pack's pack.toml says
report = idx.add_docs([Path("notes/")])
hits = idx.search("how do I ...", k=5)
"""

from assistant.knowledge.index import KnowledgeIndex, index_stats, open_index
from assistant.knowledge.loaders import LoadedDocument, SkipFile, load_document
from assistant.knowledge.types import DocumentRecord, Hit, IndexReport, IndexStats
from assistant.knowledge.walk import Skipped

__all__ = [
    "DocumentRecord",
    "Hit",
    "IndexReport",
    "IndexStats",
    "KnowledgeIndex",
    "LoadedDocument",
    "SkipFile",
    "Skipped",
    "index_stats",
    "load_document",
    "open_index",
]
