"""Retrieval quality on a real corpus: hit@5 on the shipped diabetes pack's dev questions."""

from __future__ import annotations

from index_helpers import DIABETES, eval_questions, hit_at_k, make_pack

from assistant.knowledge import open_index


def test_diabetes_dev_hit_at_5(settings, embedder) -> None:
    pack = make_pack("diabetes-test")
    idx = open_index(pack, settings, embedder=embedder)
    report = idx.add_docs([DIABETES / "docs"])
    assert len(report.added) == 51 and not report.skipped
    questions = eval_questions(DIABETES)
    assert len(questions) >= 20
    assert hit_at_k(idx, questions, k=5) >= 0.9
