"""Dense and hybrid search with the question embedded once by the caller (the router embeds it
once per answer and searches several packs with it): the same hits, scores and ranks."""

from __future__ import annotations

import numpy as np
import pytest
from index_helpers import FIXTURES, CountingEmbedder, make_pack

from assistant.knowledge import open_index

QUERIES = [
    "how much herring do penguins eat",
    "volcanic ash",
    "enclosure below four degrees with a deep saltwater pool",
]


@pytest.fixture
def index(settings, embedder):
    index = open_index(make_pack(), settings, embedder=CountingEmbedder(embedder))
    index.add_docs([FIXTURES])
    return index


@pytest.mark.parametrize("query", QUERIES)
def test_a_precomputed_vector_gives_the_same_hits(index, embedder, query: str) -> None:
    plain_hybrid = index.search(query, k=8)
    plain_dense = index.dense_search(query, k=3)
    router_style = embedder.encode([query], normalize_embeddings=True, convert_to_numpy=True)[0]
    calls = index.embedder.calls
    for vector in (index.embed_query(query), router_style, router_style.tolist()):
        assert index.search(query, k=8, query_vector=vector) == plain_hybrid
        assert index.dense_search(query, k=3, query_vector=vector) == plain_dense
    assert index.embedder.calls == calls + 1  # only embed_query embedded; searches did not
    assert plain_hybrid and plain_dense


def test_a_vector_of_another_dimension_is_refused(index) -> None:
    with pytest.raises(ValueError, match="dimensions"):
        index.search("penguins", query_vector=np.ones(7, dtype=np.float32))
