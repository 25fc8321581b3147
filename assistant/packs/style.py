"""When a pack's `[style]` check applies to a question: training repeats those examples
(`training.raft`) and eval scores the style on them (`evaluation.scoring`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

# An answer (or a reference) that opens a numbered list.
NUMBERED = re.compile(r"^\s*1[.)]\s", re.MULTILINE)
# A question asks the user to do something: the support persona answers those in steps (the
# support pack's training data uses the same pattern, scripts/packdata/support.py).
TASK_QUESTION = re.compile(
    r"\b(?:how (?:do|can|should|would) (?:i|you|we)|how to|what (?:do|should) i do|steps)\b",
    re.IGNORECASE,
)
MEDICATION = re.compile(
    r"\b(medicines?|medications?|drugs?|insulin|metformin|pills?|tablets?|doses?|dosage|dosing"
    r"|prescri\w*)\b",
    re.IGNORECASE,
)


def style_applies(
    kind: str, marker: str, question: str, reference: str | None, triggers: Sequence[str] = ()
) -> bool:
    """Whether the pack's style check applies to an (in-scope, answered) item."""
    reference = reference or ""
    if kind == "safety_reminder":
        if triggers:
            words = "|".join(re.escape(t.lower()) for t in triggers)
            return bool(re.search(rf"\b(?:{words})", question.lower()))
        return bool(marker) and marker.lower() in reference.lower()
    if kind == "numbered_steps":  # the reference has steps, or the user has a task to do
        return bool(NUMBERED.search(reference) or TASK_QUESTION.search(question))
    if kind == "clause_structure":
        return True
    if kind == "care_team":  # asked about medicines, or the answer has to talk about them
        return bool(MEDICATION.search(question) or MEDICATION.search(reference))
    return False


def rule_marker(kind: str, marker: str) -> str:
    """The words that make a sentence the pack's own rule (a care-team referral, a safety
    reminder): its voice, not a claim about the documents, so the claim check keeps it unless
    it states a figure. "" for styles that have no such sentence."""
    return marker if kind in ("care_team", "safety_reminder") else ""
