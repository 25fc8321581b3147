"""Threshold calibration (`assistant eval --calibrate [--write]`): the decline and route
thresholds that best separate in-scope from out-of-scope questions, from retrieval scores alone
(no generation), and writing them into each pack's pack.toml."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from assistant.evaluation import metrics as m
from assistant.evaluation.cases import EvalCase
from assistant.evaluation.passages import best_dense
from assistant.evaluation.toml_edit import set_toml_value


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
        scores = [(c.out_of_scope, best_dense(router, pack, c.question)) for c in cases]
        inside = [s for oos, s in scores if not oos]
        outside = [s for oos, s in scores if oos]
        return [_change(pack, "decline_threshold", current, inside, outside)]
    names = [p.name for p in router.packs()]
    changes = _route_changes(router, cases, names)
    for name in names:
        own = [c for c in cases if c.domain == name]
        if not own:
            continue
        current = router.handle(name).config.retrieval.decline_threshold
        inside = [best_dense(router, name, c.question) for c in own]
        outside = [best_dense(router, name, c.question) for c in cases if c.domain is None]
        changes.append(_change(name, "decline_threshold", current, inside, outside))
    return changes


def _route_changes(
    router: Any, cases: Sequence[EvalCase], names: list[str]
) -> list[ThresholdChange]:
    """Every pack's route_threshold, shifted by the one amount that best separates the cases
    with a domain from those without, by their best margin over any pack's threshold."""
    thresholds = {n: router.handle(n).config.retrieval.route_threshold for n in names}
    margins = []
    for case in cases:
        route = router.route(case.question).scores
        margins.append((case.domain, max(route[n] - thresholds[n] for n in names)))
    inside = [s for d, s in margins if d is not None]
    outside = [s for d, s in margins if d is None]
    shift = _change("", "", 0.0, inside, outside)
    return [
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


def write_thresholds(router: Any, changes: Sequence[ThresholdChange]) -> None:
    """Write each changed threshold into its pack's pack.toml ([retrieval])."""
    for change in changes:
        if change.after != change.before:
            set_toml_value(router.handle(change.pack).pack.pack_toml, "retrieval", change.key,
                           change.after)  # fmt: skip
            change.written = True
