"""The index as a langchain-core retriever, so it plugs into LCEL chains."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict


class PackRetriever(BaseRetriever):
    """Hybrid search over one pack; each Document carries the Hit's fields as metadata."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Any
    k: int = 4

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [
            Document(page_content=hit.text, metadata=hit.metadata(), id=str(hit.chunk_id))
            for hit in self.index.search(query, k=self.k)
        ]
