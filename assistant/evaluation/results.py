"""What an eval run produces: one scored `EvalItem` per question, and the `EvalReport` of a
configuration (its metrics, in the order of METRIC_NAMES, and its JSON form)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from assistant.evaluation.cases import LineProblem

METRIC_NAMES = [
    "hit_at_k", "mrr", "context_fact_recall", "answer_fact_recall", "own_words_fact_recall",
    "evidence_fact_recall", "unsupported_number_rate", "unsupported_sentence_rate", "token_f1",
    "rouge_l",
    "citation_precision", "uncited_answer_rate", "source_cited_rate", "style_rate",
    "oos_decline_rate", "in_scope_answer_rate", "routing_accuracy", "latency_p50_ms",
    "latency_p95_ms", "first_token_p50_ms", "tokens_per_s",
]  # fmt: skip


@dataclass
class EvalItem:
    """One question's outcome: the answer, what was retrieved and its scores."""

    line: int
    question: str
    expected_pack: str | None
    out_of_scope: bool
    answer: str
    declined: bool
    pack: str | None
    reference: str | None = None
    source: str | None = None
    facts: list[str] = field(default_factory=list)
    facts_found: list[str] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    scores: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class EvalReport:
    pack: str | None  # None: --auto (the router picked)
    config: str
    n: int
    metrics: dict[str, float | None]
    items: list[EvalItem]
    problems: list[LineProblem] = field(default_factory=list)
    confusion: dict[str, dict[str, int]] | None = None
    interrupted: bool = False
    split: str = "all"  # the eval file's questions scored: "dev", "test" or "all"

    def to_dict(self) -> dict[str, Any]:
        return {
            "pack": self.pack if self.pack is not None else "auto",
            "config": self.config,
            "split": self.split,
            "n": self.n,
            "metrics": self.metrics,
            "confusion": self.confusion,
            "interrupted": self.interrupted,
            "problems": [asdict(p) for p in self.problems],
            "items": [asdict(i) for i in self.items],
        }
