"""Retrieval quality on a real corpus: hit@5 on the shipped diabetes pack's dev questions."""

from __future__ import annotations

import json

from index_helpers import DIABETES, make_pack

from assistant.knowledge import open_index


def test_diabetes_dev_hit_at_5(settings, embedder) -> None:
    pack = make_pack("diabetes-test")
    idx = open_index(pack, settings, embedder=embedder)
    report = idx.add_docs([DIABETES / "docs"])
    assert len(report.added) == 51 and not report.skipped
    lines = [json.loads(line) for line in (DIABETES / "eval" / "qa.jsonl").open()]
    questions = [q for q in lines if q.get("split") == "dev" and q.get("source")]
    assert len(questions) >= 20
    hits = sum(q["source"] in {h.path for h in idx.search(q["question"], k=5)} for q in questions)
    assert hits / len(questions) >= 0.9, f"hit@5 {hits}/{len(questions)}"
