"""Scoring (pure: no models): one answer against its eval case (`score_item`), a run's metrics
from its scored items (`aggregate`) and the routing table of an --auto run (`confusion`).
Metric definitions: docs/eval/METRICS.md; the text rules behind them are in `metrics`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assistant.answering.answers import Answer
from assistant.answering.evidence import own_words, quoted_evidence
from assistant.evaluation import metrics as m
from assistant.evaluation.cases import EvalCase
from assistant.evaluation.results import EvalItem
from assistant.packs.style import style_applies

Style = tuple[str, str, Sequence[str]]  # the answering pack's (kind, marker, triggers)
NO_STYLE: Style = ("none", "", ())


def _is_source(src: dict[str, Any], case: EvalCase, expected: str | None) -> bool:
    return bool(case.source) and src.get("path") == case.source and src.get("pack") == expected


def source_dict(source: Any) -> dict[str, Any]:
    """The fields of a source (a `Source` or a dict) that an eval item keeps."""
    d = source.to_dict() if hasattr(source, "to_dict") else dict(source)
    keep = ("number", "pack", "path", "section", "dense_score", "cited", "text")
    return {k: d.get(k) for k in keep}


def score_item(
    case: EvalCase,
    answer: Answer,
    retrieved: list[dict[str, Any]] | None,
    style: Style = NO_STYLE,
    expected_pack: str | None = None,
) -> EvalItem:
    """Score one answer. `retrieved`: the passages (dicts with pack, path, text) the retrieval
    metrics use, None without retrieval; `style`: the answering pack's (kind, marker, triggers);
    `expected_pack`: the pack evaluated, None for --auto (then the case's domain is expected)."""
    expected = case.domain if expected_pack is None else expected_pack
    in_scope = not case.out_of_scope
    text = answer.answer or ""
    # Key order matters: it is the order of "scores" in the JSON output.
    scores: dict[str, Any] = {}
    found = m.facts_found(case.facts, text) if in_scope else []
    if in_scope:
        scores.update(_retrieval_scores(case, retrieved, expected))
        scores.update(_answer_scores(case, text, found))
        if not answer.declined:
            scores.update(_own_words_scores(case, text, answer))
            scores.update(_citation_scores(case, answer, expected))
            scores.update(_style_score(case, text, retrieved, style))
    if expected_pack is None:  # --auto: was the question routed to the expected pack?
        scores["routed_ok"] = float(answer.pack == case.domain if in_scope else answer.declined)
    t = answer.timings
    return EvalItem(
        line=case.line,
        question=case.question,
        expected_pack=expected,
        out_of_scope=case.out_of_scope,
        answer=text,
        declined=answer.declined,
        pack=answer.pack,
        reference=case.reference,
        source=case.source,
        facts=case.facts,
        facts_found=found,
        sources=[source_dict(s) for s in answer.sources],
        scores=scores,
        timings={
            "total_ms": round(t.total_ms, 1),
            "first_token_ms": round(t.first_token_ms, 1),
            "tokens_per_s": t.tokens_per_s,
        },
    )


def _retrieval_scores(
    case: EvalCase, retrieved: list[dict[str, Any]] | None, expected: str | None
) -> dict[str, float]:
    """hit and reciprocal rank of the expected source, and the facts found in the passages."""
    scores: dict[str, float] = {}
    if retrieved is not None and case.source:
        ranks = [i for i, s in enumerate(retrieved, 1) if _is_source(s, case, expected)]
        scores["hit"] = 1.0 if ranks else 0.0
        scores["rr"] = 1.0 / ranks[0] if ranks else 0.0
    if retrieved is not None and case.facts:
        context = "\n".join(s.get("text", "") for s in retrieved)
        scores["context_fact_recall"] = m.fact_recall(case.facts, context)
    return scores


def _answer_scores(case: EvalCase, text: str, found: list[str]) -> dict[str, float]:
    """The answer's fact recall and its overlap with the reference answer."""
    scores: dict[str, float] = {}
    if case.facts:
        scores["answer_fact_recall"] = len(found) / len(case.facts)
        generated = m.facts_found(case.facts, own_words(text))
        scores["own_words_fact_recall"] = len(generated) / len(case.facts)
        quoted = m.facts_found(case.facts, quoted_evidence(text))
        scores["evidence_fact_recall"] = len(quoted) / len(case.facts)
    if case.reference:
        scores["token_f1"] = m.token_f1(text, case.reference)
        scores["rouge_l"] = m.rouge_l(text, case.reference)
    return scores


def _own_words_scores(case: EvalCase, text: str, answer: Answer) -> dict[str, float]:
    """The numbers shown in the model's own words (a hybrid answer before its quoted
    evidence) and those of them that neither the passages nor the question state; the
    sentences the model wrote and those the claim check did not support (shown or not)."""
    words = own_words(text)
    scores: dict[str, float] = {}
    supports = [case.question, *(source.text for source in answer.sources)]
    written, unsupported = m.unsupported_numbers(words, supports)
    scores["numbers_written"] = len(written)
    scores["numbers_unsupported"] = len(unsupported)
    scores["sentences"] = len(answer.claims)
    scores["sentences_unsupported"] = sum(not claim["supported"] for claim in answer.claims)
    return scores


def _citation_scores(case: EvalCase, answer: Answer, expected: str | None) -> dict[str, float]:
    """Whether the answer cites, whether it cites the expected source, and how many of its
    citations are good (the expected source, or a passage holding one of the facts)."""
    scores: dict[str, float] = {}
    cited = [s.to_dict() for s in answer.sources if s.cited]
    if answer.sources:
        scores["uncited"] = 0.0 if cited else 1.0
    scores["citations"] = len(cited)
    if case.source and answer.sources:
        scores["source_cited"] = float(any(_is_source(s, case, expected) for s in cited))
    scores["good_citations"] = sum(
        _is_source(s, case, expected) or bool(m.facts_found(case.facts, s["text"])) for s in cited
    )
    return scores


def _style_score(
    case: EvalCase, text: str, retrieved: list[dict[str, Any]] | None, style: Style
) -> dict[str, float]:
    """1/0: the answer keeps the pack's style, where the style applies to the question."""
    kind, marker, triggers = style
    if not style_applies(kind, marker, case.question, case.reference, triggers):
        return {}
    passages = None if retrieved is None else [s.get("text", "") for s in retrieved]
    return {"style": 1.0 if m.style_holds(kind, marker, text, passages) else 0.0}


def aggregate(items: Sequence[EvalItem], auto: bool = False) -> dict[str, float | None]:
    """The report's metrics from scored items (None where a metric does not apply)."""

    def col(key: str) -> list[float]:
        return [i.scores[key] for i in items if i.scores.get(key) is not None]

    inside = [i for i in items if not i.out_of_scope]
    outside = [i for i in items if i.out_of_scope]
    citations = sum(col("citations"))
    written = sum(col("numbers_written"))
    sentences = sum(col("sentences"))
    totals = [i.timings["total_ms"] for i in items if i.timings.get("total_ms")]
    first = [i.timings["first_token_ms"] for i in items if i.timings.get("first_token_ms")]
    speeds = [i.timings["tokens_per_s"] for i in items if i.timings.get("tokens_per_s")]
    metrics: dict[str, float | None] = {
        "hit_at_k": m.mean(col("hit")),
        "mrr": m.mean(col("rr")),
        "context_fact_recall": m.mean(col("context_fact_recall")),
        "answer_fact_recall": m.mean(col("answer_fact_recall")),
        "own_words_fact_recall": m.mean(col("own_words_fact_recall")),
        "evidence_fact_recall": m.mean(col("evidence_fact_recall")),
        "unsupported_number_rate": sum(col("numbers_unsupported")) / written if written else None,
        "unsupported_sentence_rate": (
            sum(col("sentences_unsupported")) / sentences if sentences else None
        ),
        "token_f1": m.mean(col("token_f1")),
        "rouge_l": m.mean(col("rouge_l")),
        "citation_precision": sum(col("good_citations")) / citations if citations else None,
        "uncited_answer_rate": m.mean(col("uncited")),
        "source_cited_rate": m.mean(col("source_cited")),
        "style_rate": m.mean(col("style")),
        "oos_decline_rate": m.mean([float(i.declined) for i in outside]),
        "in_scope_answer_rate": m.mean([float(not i.declined) for i in inside]),
        "routing_accuracy": m.mean(col("routed_ok")) if auto else None,
        "latency_p50_ms": m.percentile(totals, 50),
        "latency_p95_ms": m.percentile(totals, 95),
        "first_token_p50_ms": m.percentile(first, 50),
        "tokens_per_s": m.mean(speeds),
    }
    return {k: (None if v is None else round(v, 4)) for k, v in metrics.items()}


def confusion(items: Sequence[EvalItem]) -> dict[str, dict[str, int]]:
    """expected pack -> routed pack -> count ("none": declined by the router)."""
    table: dict[str, dict[str, int]] = {}
    for item in items:
        expected = item.expected_pack or "none"
        routed = item.pack or "none"
        table.setdefault(expected, {})
        table[expected][routed] = table[expected].get(routed, 0) + 1
    return table
