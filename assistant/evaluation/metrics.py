"""The metric logic of `assistant eval`, free of models: fact recall, token F1, ROUGE-L, the
pack style checks, balanced accuracy and percentiles.

Each function takes plain strings and numbers so it can be checked on hand-made items. Text
normalization and fact matching are `assistant.text`'s, the rule training uses too.
Definitions are documented for users in docs/eval/METRICS.md.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from assistant.packs.style import NUMBERED
from assistant.text import fact_in, normalize, numbers_in


def tokens(text: str) -> list[str]:
    return normalize(text).split()


def facts_found(facts: Sequence[str], text: str) -> list[str]:
    return [fact for fact in facts if fact_in(fact, text)]


def fact_recall(facts: Sequence[str], text: str) -> float | None:
    """Share of the facts present in the text (None when there are no facts)."""
    if not facts:
        return None
    return len(facts_found(facts, text)) / len(facts)


def unsupported_numbers(text: str, supports: Sequence[str]) -> tuple[list[str], list[str]]:
    """The numbers the text states, and those of them that none of `supports` (the passages
    and the question) states: figures the model made up."""
    written = numbers_in(text)
    known = {number for support in supports for number in numbers_in(support)}
    return written, [number for number in written if number not in known]


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style F1 over normalized word tokens."""
    pred, ref = tokens(prediction), tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    # Hand-written LCS (O(len(a)*len(b)) with one row): `rouge-score` is not installed here and
    # ROUGE-L is 15 lines, so a dependency for it is not worth it.
    if len(a) < len(b):
        a, b = b, a
    row = [0] * (len(b) + 1)
    for x in a:
        previous = 0
        for j, y in enumerate(b, start=1):
            current = row[j]
            row[j] = previous + 1 if x == y else max(row[j], row[j - 1])
            previous = current
    return row[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1: longest common subsequence of normalized tokens."""
    pred, ref = tokens(prediction), tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    lcs = _lcs_length(pred, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


# ----- style -------------------------------------------------------------------------------

_DOSING = re.compile(
    r"\b\d+(?:[.,]\d+)?\s*(?:mg|mcg|µg|micrograms?|milligrams?|g|grams?|ml|units?|iu|tablets?"
    r"|pills?|doses?)\b",
    re.IGNORECASE,
)

# A step "takes its words from the passages" when it shares a run of this many words with them:
# long enough that a generic step ("Download the latest version") does not pass by chance.
STEP_WORD_RUN = 5
_STEP_LINE = re.compile(r"^\s*\d{1,2}[.)]\s+(.+)$", re.MULTILINE)


def _word_runs(text: str, size: int) -> set[tuple[str, ...]]:
    words = tokens(text)
    return {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}


def steps_from_passages(answer: str, passages: Sequence[str]) -> bool:
    """At least half of the answer's numbered steps share a run of STEP_WORD_RUN words with the
    passages: the steps name the documents' settings and commands instead of invented ones."""
    steps = _STEP_LINE.findall(answer)
    runs = _word_runs("\n".join(passages), STEP_WORD_RUN)
    grounded = sum(bool(_word_runs(step, STEP_WORD_RUN) & runs) for step in steps)
    return bool(steps) and 2 * grounded >= len(steps)


def style_holds(kind: str, marker: str, answer: str, passages: Sequence[str] | None = None) -> bool:
    """The pack's style check on one answer (see style_applies for when it is asked).
    `passages`: the retrieved passages' texts, None without retrieval."""
    low = answer.lower()
    if kind == "safety_reminder":
        return marker.lower() in low
    if kind == "numbered_steps":
        # The base model numbers a list by itself whenever it is asked for steps; the pack's
        # style is steps taken from its documents, which only holds with retrieval.
        numbered = bool(NUMBERED.search(answer))
        return numbered if passages is None else numbered and steps_from_passages(answer, passages)
    if kind == "clause_structure":
        return "what it says" in low or (bool(marker) and marker.lower() in low)
    if kind == "care_team":
        return "care team" in low and not _DOSING.search(answer)
    return True


# ----- aggregates --------------------------------------------------------------------------


def mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100), as numpy's default."""
    data = sorted(values)
    if not data:
        return None
    pos = (len(data) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return data[low] + (data[high] - data[low]) * (pos - low)


def balanced_accuracy(in_scope: Sequence[float], out_scope: Sequence[float], t: float) -> float:
    """Mean of (in-scope scores >= t) and (out-of-scope scores < t) rates."""
    parts = []
    if in_scope:
        parts.append(sum(s >= t for s in in_scope) / len(in_scope))
    if out_scope:
        parts.append(sum(s < t for s in out_scope) / len(out_scope))
    return sum(parts) / len(parts) if parts else 0.0


def best_threshold(
    in_scope: Sequence[float], out_scope: Sequence[float], current: float
) -> tuple[float, float]:
    """The threshold maximizing balanced accuracy (answer if score >= t) and its value.

    Candidates are midpoints between neighbouring observed scores (and just outside them),
    rounded to 3 decimals (as pack.toml keeps them) and kept in [-1, 1] before they are scored;
    ties go to the candidate nearest the current threshold, so a threshold only moves when it
    helps. Without both kinds of question the current threshold is kept."""
    if not in_scope or not out_scope:
        return current, balanced_accuracy(in_scope, out_scope, current)
    scores = sorted(set(in_scope) | set(out_scope))
    raw = [scores[0] - 0.01, scores[-1] + 0.01]
    raw += [(a + b) / 2 for a, b in zip(scores, scores[1:], strict=False)]
    candidates = [current] + [max(-1.0, min(1.0, round(t, 3))) for t in raw]
    best = max(
        candidates,
        key=lambda t: (balanced_accuracy(in_scope, out_scope, t), -abs(t - current)),
    )
    return best, balanced_accuracy(in_scope, out_scope, best)
