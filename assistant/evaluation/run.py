"""Scripted Q&A evaluation: run a pack (or the router, with `auto`) over eval questions and score
retrieval, answers, grounding, style, scope, routing and cost. Returns an `EvalReport`.

    from assistant.evaluation.run import load_cases, evaluate
    cases, problems = load_cases(pack.eval_file)
    report = evaluate(Router(load_settings()), cases, "penguin-wood", max_tokens=96)

This module runs one configuration (`evaluate`; the CLI loops over the four of CONFIGS). The
other parts live in their own modules and are re-exported here, the one import site: eval files
in `cases`, scoring in `scoring` (text rules in `metrics`), result types in `results`, threshold
calibration in `calibration`, the pack.toml edit in `toml_edit`; Markdown and charts in `report`.
Metric definitions: docs/eval/METRICS.md.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from assistant.evaluation.calibration import ThresholdChange, calibrate, write_thresholds
from assistant.evaluation.cases import (
    SPLITS,
    EvalCase,
    LineProblem,
    in_split,
    load_cases,
    sample_cases,
)
from assistant.evaluation.passages import retrieved_passages
from assistant.evaluation.results import METRIC_NAMES, EvalItem, EvalReport
from assistant.evaluation.scoring import NO_STYLE, Style, aggregate, confusion, score_item
from assistant.evaluation.toml_edit import set_toml_value

__all__ = [
    "CONFIGS", "METRIC_NAMES", "EvalCase", "EvalItem", "EvalReport", "LineProblem", "Progress",
    "SPLITS", "ThresholdChange", "aggregate", "calibrate", "confusion", "evaluate", "in_split",
    "load_cases", "sample_cases", "score_item", "set_toml_value", "write_thresholds",
]  # fmt: skip

# (name, rag, adapter): the four ablation configurations, the full system last.
CONFIGS = [
    ("base", False, False),
    ("base+rag", True, False),
    ("adapter", False, True),
    ("adapter+rag", True, True),
]

Progress = Callable[[int, int, EvalItem], None]


def evaluate(
    router: Any,
    cases: Sequence[EvalCase],
    pack: str | None,
    *,
    rag: bool = True,
    adapter: bool = True,
    max_tokens: int | None = 96,
    mode: str | None = None,
    grounding: str | None = None,
    config: str = "adapter+rag",
    split: str = "all",
    problems: Sequence[LineProblem] = (),
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> EvalReport:
    """Answer every case with `pack` (None: the router picks) and score it; `split` names the
    cases' split in the report. Setting `stop` ends the run after the current question (that
    one is dropped); the report says so."""
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
            grounding=grounding,
            cancel=stop,
        )
        if answer.cancelled:
            interrupted = True
            break
        expected = case.domain if auto else pack
        retrieved = None
        if rag and expected and not case.out_of_scope:
            retrieved = retrieved_passages(router, case, expected, answer)
        style = _pack_style(router, answer.pack)
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
        split=split,
    )


def _pack_style(router: Any, pack: str | None) -> Style:
    """The answering pack's (kind, marker, triggers); no style when nothing answered."""
    if not pack:
        return NO_STYLE
    s = router.handle(pack).config.style
    return (s.kind, s.marker, s.triggers)
