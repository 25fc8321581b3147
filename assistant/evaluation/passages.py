"""What the evaluation reads from a pack's index, without generating: the passages a question
retrieves (with the pack's own k), which the retrieval metrics and the calibration score."""

from __future__ import annotations

from typing import Any

from assistant.answering.answers import Answer
from assistant.evaluation.cases import EvalCase
from assistant.evaluation.scoring import source_dict


def search_pack(router: Any, pack: str, question: str) -> list[Any]:
    """The pack's top-k hits for the question (k: the pack's retrieval.k)."""
    handle = router.handle(pack)
    return handle.index.search(question, k=handle.config.retrieval.k)


def retrieved_passages(router: Any, case: EvalCase, expected: str, answer: Answer) -> list[dict]:
    """The passages the retrieval metrics see: the answer's own when it answered from the
    expected pack, else a search of the expected pack's index (e.g. after a decline)."""
    if answer.pack == expected and answer.sources:
        return [source_dict(s) for s in answer.sources]
    hits = search_pack(router, expected, case.question)
    return [{"pack": expected, "path": h.path, "text": h.text} for h in hits]


def best_dense(router: Any, pack: str, question: str) -> float:
    """The score the router declines on: the best cosine among the retrieved passages."""
    hits = search_pack(router, pack, question)
    return max((h.dense_score or 0.0 for h in hits), default=0.0)
