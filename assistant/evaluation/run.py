"""Scripted Q&A evaluation: run a pack (or the router, with `auto`) over eval questions and score
retrieval, answers, grounding, style, scope, routing and cost. Returns an `EvalReport`.

    from assistant.evaluation.run import load_cases, evaluate
    cases, problems = load_cases(pack.eval_file)
    report = evaluate(Router(load_settings()), cases, "penguin-wood", max_tokens=96)

Metric definitions: docs/eval/METRICS.md. The pure metric logic is in `eval_metrics`, Markdown
and charts in `eval_report`; threshold calibration (`calibrate`, `write_thresholds`) is below.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from assistant.answering.answers import Answer
from assistant.errors import AssistantError
from assistant.evaluation import metrics as m

# (name, rag, adapter): the four ablation configurations, the full system last.
CONFIGS = [
    ("base", False, False),
    ("base+rag", True, False),
    ("adapter", False, True),
    ("adapter+rag", True, True),
]
METRIC_NAMES = [
    "hit_at_k", "mrr", "context_fact_recall", "answer_fact_recall", "token_f1", "rouge_l",
    "citation_precision", "uncited_answer_rate", "source_cited_rate", "style_rate",
    "oos_decline_rate", "in_scope_answer_rate", "routing_accuracy", "latency_p50_ms",
    "latency_p95_ms", "first_token_p50_ms", "tokens_per_s",
]  # fmt: skip


@dataclass
class EvalCase:
    """One question of an eval file, with its line number."""

    line: int
    question: str
    reference: str | None = None
    source: str | None = None
    facts: list[str] = field(default_factory=list)
    out_of_scope: bool = False
    domain: str | None = None  # --auto: the pack that should answer (None: all should decline)


@dataclass
class LineProblem:
    line: int
    message: str


def _spread(items: list[EvalCase], count: int) -> list[EvalCase]:
    """`count` items evenly spaced over the list, the first one included."""
    if count >= len(items):
        return list(items)
    return [items[(i * len(items)) // count] for i in range(count)]


def sample_cases(cases: list[EvalCase], limit: int | None) -> list[EvalCase]:
    """`limit` cases spread evenly over the file (eval files group questions by document, so a
    plain head would test one document), keeping the file's share of out-of-scope questions.
    Order is preserved."""
    if not limit or limit >= len(cases):
        return list(cases)
    outside = [c for c in cases if c.out_of_scope]
    inside = [c for c in cases if not c.out_of_scope]
    share = len(outside) / len(cases)
    n_outside = min(len(outside), max(1 if outside and limit > 1 else 0, round(limit * share)))
    chosen = {id(c) for c in _spread(inside, limit - n_outside) + _spread(outside, n_outside)}
    return [c for c in cases if id(c) in chosen]


def load_cases(path: Path, auto: bool = False) -> tuple[list[EvalCase], list[LineProblem]]:
    """The valid lines of a JSONL eval file and a problem (with its line number) for each bad
    one; a bad line never stops the others. With `auto`, a line needs a `domain` (or
    out_of_scope: true)."""
    from pydantic import ValidationError

    from assistant.packs.format import EvalLine
    from assistant.packs.validation import iter_jsonl

    path = Path(path)
    if not path.is_file():
        raise AssistantError(f"cannot read the eval file {path}: no such file")
    cases: list[EvalCase] = []
    problems: list[LineProblem] = []
    # Lines end at "\n" only (as in validate_pack): json.dumps(ensure_ascii=False) writes
    # U+2028 and friends raw, and str.splitlines() would break a line there.
    try:
        parsed = list(iter_jsonl(path))
    except OSError as exc:
        raise AssistantError(f"cannot read the eval file {path}: {exc.strerror}") from None
    for number, data, error in parsed:
        if error is not None:
            problems.append(LineProblem(number, error))
            continue
        try:
            if not isinstance(data, dict):
                raise ValueError("a line must be a JSON object")
            if auto and "domain" not in data and not data.get("out_of_scope"):
                data["out_of_scope"] = True  # let validation run, then report below
                raise ValueError("--auto needs a 'domain' (a pack name, or null) on every line")
            if auto and data.get("domain") is None:
                data["out_of_scope"] = True
            line = EvalLine.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "line"
            problems.append(LineProblem(number, f"{where}: {first['msg']}"))
            continue
        except ValueError as exc:  # JSONDecodeError is a ValueError
            problems.append(LineProblem(number, _first_line(exc)))
            continue
        cases.append(
            EvalCase(
                number,
                line.question,
                line.answer,
                line.source,
                list(line.facts),
                line.out_of_scope,
                line.domain,
            )  # fmt: skip
        )
    return cases, problems


def _first_line(exc: ValueError) -> str:
    prefix = "invalid JSON: " if isinstance(exc, json.JSONDecodeError) else ""
    return prefix + str(exc).split("\n")[0]


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "pack": self.pack if self.pack is not None else "auto",
            "config": self.config,
            "n": self.n,
            "metrics": self.metrics,
            "confusion": self.confusion,
            "interrupted": self.interrupted,
            "problems": [asdict(p) for p in self.problems],
            "items": [asdict(i) for i in self.items],
        }


# ----- scoring one item (pure: no models) ---------------------------------------------------


def _is_source(src: dict[str, Any], case: EvalCase, expected: str | None) -> bool:
    return bool(case.source) and src.get("path") == case.source and src.get("pack") == expected


def score_item(
    case: EvalCase,
    answer: Answer,
    retrieved: list[dict[str, Any]] | None,
    style: tuple[str, str, Sequence[str]] = ("none", "", ()),
    expected_pack: str | None = None,
) -> EvalItem:
    """Score one answer. `retrieved`: the passages (dicts with pack, path, text) the retrieval
    metrics use, None without retrieval; `style`: the answering pack's (kind, marker, triggers);
    `expected_pack`: the pack evaluated, None for --auto (then the case's domain is expected)."""
    expected = case.domain if expected_pack is None else expected_pack
    in_scope = not case.out_of_scope
    text = answer.answer or ""
    scores: dict[str, Any] = {}
    found = m.facts_found(case.facts, text) if in_scope else []
    if in_scope:
        if retrieved is not None and case.source:
            ranks = [i for i, s in enumerate(retrieved, 1) if _is_source(s, case, expected)]
            scores["hit"] = 1.0 if ranks else 0.0
            scores["rr"] = 1.0 / ranks[0] if ranks else 0.0
        if retrieved is not None and case.facts:
            context = "\n".join(s.get("text", "") for s in retrieved)
            scores["context_fact_recall"] = m.fact_recall(case.facts, context)
        if case.facts:
            scores["answer_fact_recall"] = len(found) / len(case.facts)
        if case.reference:
            scores["token_f1"] = m.token_f1(text, case.reference)
            scores["rouge_l"] = m.rouge_l(text, case.reference)
        if not answer.declined:
            cited = [s.to_dict() for s in answer.sources if s.cited]
            if answer.sources:
                scores["uncited"] = 0.0 if cited else 1.0
            scores["citations"] = len(cited)
            if case.source and answer.sources:
                scores["source_cited"] = float(any(_is_source(s, case, expected) for s in cited))
            scores["good_citations"] = sum(
                _is_source(s, case, expected) or bool(m.facts_found(case.facts, s["text"]))
                for s in cited
            )
            kind, marker, triggers = style
            if m.style_applies(kind, marker, case.question, case.reference, triggers):
                passages = None if retrieved is None else [s.get("text", "") for s in retrieved]
                holds = m.style_holds(kind, marker, text, passages)
                scores["style"] = 1.0 if holds else 0.0
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
        sources=[_source_dict(s) for s in answer.sources],
        scores=scores,
        timings={
            "total_ms": round(t.total_ms, 1),
            "first_token_ms": round(t.first_token_ms, 1),
            "tokens_per_s": t.tokens_per_s,
        },
    )


def _source_dict(source: Any) -> dict[str, Any]:
    d = source.to_dict() if hasattr(source, "to_dict") else dict(source)
    keep = ("number", "pack", "path", "section", "dense_score", "cited", "text")
    return {k: d.get(k) for k in keep}


def aggregate(items: Sequence[EvalItem], auto: bool = False) -> dict[str, float | None]:
    """The report's metrics from scored items (None where a metric does not apply)."""

    def col(key: str) -> list[float]:
        return [i.scores[key] for i in items if i.scores.get(key) is not None]

    inside = [i for i in items if not i.out_of_scope]
    outside = [i for i in items if i.out_of_scope]
    citations = sum(col("citations"))
    totals = [i.timings["total_ms"] for i in items if i.timings.get("total_ms")]
    first = [i.timings["first_token_ms"] for i in items if i.timings.get("first_token_ms")]
    speeds = [i.timings["tokens_per_s"] for i in items if i.timings.get("tokens_per_s")]
    metrics: dict[str, float | None] = {
        "hit_at_k": m.mean(col("hit")),
        "mrr": m.mean(col("rr")),
        "context_fact_recall": m.mean(col("context_fact_recall")),
        "answer_fact_recall": m.mean(col("answer_fact_recall")),
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


# ----- running ------------------------------------------------------------------------------

Progress = Callable[[int, int, EvalItem], None]


def _retrieved(router: Any, case: EvalCase, expected: str, answer: Answer) -> list[dict]:
    """The passages the retrieval metrics see: the answer's own when it answered from the
    expected pack, else a search of the expected pack's index (e.g. after a decline)."""
    if answer.pack == expected and answer.sources:
        return [_source_dict(s) for s in answer.sources]
    handle = router.handle(expected)
    hits = handle.index.search(case.question, k=handle.config.retrieval.k)
    return [{"pack": expected, "path": h.path, "text": h.text} for h in hits]


def evaluate(
    router: Any,
    cases: Sequence[EvalCase],
    pack: str | None,
    *,
    rag: bool = True,
    adapter: bool = True,
    max_tokens: int | None = 96,
    mode: str | None = None,
    config: str = "adapter+rag",
    problems: Sequence[LineProblem] = (),
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> EvalReport:
    """Answer every case with `pack` (None: the router picks) and score it. Setting `stop`
    ends the run after the current question (that one is dropped); the report says so."""
    router.warm_up()  # load time must not count as the first answer's latency
    auto = pack is None
    items: list[EvalItem] = []
    interrupted = False
    for done, case in enumerate(cases, start=1):
        if stop is not None and stop.is_set():
            interrupted = True
            break
        answer = router.answer(
            case.question,
            pack,
            rag=rag,
            adapter=adapter,
            max_tokens=max_tokens,
            mode=mode,
            cancel=stop,
        )
        if answer.cancelled:
            interrupted = True
            break
        expected = case.domain if auto else pack
        retrieved = None
        if rag and expected and not case.out_of_scope:
            retrieved = _retrieved(router, case, expected, answer)
        style: tuple[str, str, Sequence[str]] = ("none", "", ())
        if answer.pack:
            s = router.handle(answer.pack).config.style
            style = (s.kind, s.marker, s.triggers)
        item = score_item(case, answer, retrieved, style, expected_pack=None if auto else pack)
        items.append(item)
        if progress is not None:
            progress(done, len(cases), item)
    return EvalReport(
        pack=pack,
        config=config,
        n=len(items),
        metrics=aggregate(items, auto=auto),
        items=items,
        problems=list(problems),
        confusion=confusion(items) if auto else None,
        interrupted=interrupted,
    )


def ablate(router: Any, cases: Sequence[EvalCase], pack: str | None, **options: Any):
    """The four configurations of CONFIGS, the full system last; stops early when interrupted."""
    reports = []
    for name, rag, adapter in CONFIGS:
        report = evaluate(router, cases, pack, rag=rag, adapter=adapter, config=name, **options)
        reports.append(report)
        if report.interrupted:
            break
    return reports


# ----- calibration --------------------------------------------------------------------------


@dataclass
class ThresholdChange:
    """A calibrated threshold of one pack: before/after and the balanced accuracy of each."""

    pack: str
    key: str  # "decline_threshold" or "route_threshold"
    before: float
    after: float
    accuracy_before: float
    accuracy_after: float
    n_in_scope: int
    n_out_of_scope: int
    written: bool = False


def _best_dense(router: Any, pack: str, question: str) -> float:
    """The score the router declines on: the best cosine among the retrieved passages."""
    handle = router.handle(pack)
    hits = handle.index.search(question, k=handle.config.retrieval.k)
    return max((h.dense_score or 0.0 for h in hits), default=0.0)


def _change(pack: str, key: str, current: float, inside: list, outside: list) -> ThresholdChange:
    after, acc_after = m.best_threshold(inside, outside, current)
    acc_before = m.balanced_accuracy(inside, outside, current)
    return ThresholdChange(
        pack, key, current, after, round(acc_before, 4), round(acc_after, 4),
        len(inside), len(outside),
    )  # fmt: skip


def calibrate(router: Any, cases: Sequence[EvalCase], pack: str | None) -> list[ThresholdChange]:
    """Thresholds maximizing balanced accuracy (answer in-scope, decline out-of-scope) on the
    cases, from retrieval scores alone (no generation). With a pack: its decline_threshold.
    With None (--auto): each pack's route_threshold, shifted by one common amount (a question is
    routed when some pack's route score reaches its threshold), and the decline_threshold of
    every pack named as a domain (its own questions against the out-of-scope ones)."""
    if pack is not None:
        current = router.handle(pack).config.retrieval.decline_threshold
        scores = [(c.out_of_scope, _best_dense(router, pack, c.question)) for c in cases]
        inside = [s for oos, s in scores if not oos]
        outside = [s for oos, s in scores if oos]
        return [_change(pack, "decline_threshold", current, inside, outside)]
    names = [p.name for p in router.packs()]
    thresholds = {n: router.handle(n).config.retrieval.route_threshold for n in names}
    margins = []
    for case in cases:
        route = router.route(case.question).scores
        margins.append((case.domain, max(route[n] - thresholds[n] for n in names)))
    inside = [s for d, s in margins if d is not None]
    outside = [s for d, s in margins if d is None]
    shift = _change("", "", 0.0, inside, outside)
    changes = [
        ThresholdChange(
            n,
            "route_threshold",
            t,
            round(max(-1.0, min(1.0, t + shift.after)), 3),
            shift.accuracy_before,
            shift.accuracy_after,
            len(inside),
            len(outside),
        )  # fmt: skip
        for n, t in thresholds.items()
    ]
    for name in names:
        own = [c for c in cases if c.domain == name]
        if not own:
            continue
        current = router.handle(name).config.retrieval.decline_threshold
        inside = [_best_dense(router, name, c.question) for c in own]
        outside = [_best_dense(router, name, c.question) for c in cases if c.domain is None]
        changes.append(_change(name, "decline_threshold", current, inside, outside))
    return changes


def set_toml_value(path: Path, section: str, key: str, value: float) -> None:
    """Set `key = value` in `[section]` of a TOML file with a minimal text edit (comments,
    order and formatting elsewhere kept), written atomically (`fsio.atomic_write_text`)."""
    import re
    import tomllib

    from assistant.fsio import atomic_write_text

    text = Path(path).read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    header = re.compile(rf"^\s*\[{re.escape(section)}\]\s*(#.*)?$")
    assignment = re.compile(rf"^(\s*{re.escape(key)}\s*=\s*)([^#\r\n]*?)(\s*(?:#.*)?)(\r?\n?)$")
    rendered = f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.1f}"
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        sep = "" if not text or text.endswith("\n") else "\n"
        lines.append(f"{sep}\n[{section}]\n{key} = {rendered}\n")
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")),
            len(lines),
        )
        for i in range(start + 1, end):
            match = assignment.match(lines[i])
            if match:
                lines[i] = f"{match.group(1)}{rendered}{match.group(3)}{match.group(4)}"
                break
        else:
            lines.insert(start + 1, f"{key} = {rendered}\n")
    new_text = "".join(lines)
    try:
        parsed = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:
        raise AssistantError(f"{path}: editing {key} would break the file ({exc})") from None
    if parsed.get(section, {}).get(key) != float(rendered):
        raise AssistantError(f"{path}: could not set [{section}] {key}; edit it by hand")
    atomic_write_text(Path(path), new_text)


def write_thresholds(router: Any, changes: Sequence[ThresholdChange]) -> None:
    """Write each changed threshold into its pack's pack.toml ([retrieval])."""
    for change in changes:
        if change.after != change.before:
            set_toml_value(router.handle(change.pack).pack.pack_toml, "retrieval", change.key,
                           change.after)  # fmt: skip
            change.written = True
