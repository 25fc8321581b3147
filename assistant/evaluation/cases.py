"""Eval questions: the valid lines of a JSONL eval file (with a problem for each bad line), the
dev or test half of them, and an even sample for `--limit`.

    cases, problems = load_cases(pack.eval_file)
    cases = sample_cases(in_split(cases, "test"), 12)

Tune on dev, report on test: a recipe tuned on the questions it is scored on flatters itself
(0.74 there, 0.38 on unseen questions, in this project's first round).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from assistant.errors import AssistantError


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
    split: str = "test"  # "dev" or "test"


@dataclass
class LineProblem:
    line: int
    message: str


SPLITS = ("dev", "test", "all")


def split_of(question: str) -> str:
    """The split of a line that names none: a hash of its question, so adding or moving lines
    never moves another line between dev and test."""
    digest = hashlib.sha256(" ".join(question.lower().split()).encode()).digest()
    return "dev" if digest[0] % 2 == 0 else "test"


def in_split(cases: list[EvalCase], split: str) -> list[EvalCase]:
    """The cases of one split ("dev" or "test"), or all of them ("all")."""
    if split not in SPLITS:
        raise AssistantError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    return list(cases) if split == "all" else [c for c in cases if c.split == split]


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
        case = _parse_case(number, data, auto)
        if isinstance(case, LineProblem):
            problems.append(case)
        else:
            cases.append(case)
    return cases, problems


def _parse_case(number: int, data: object, auto: bool) -> EvalCase | LineProblem:
    """One parsed JSON line as a case, or the problem that rules it out."""
    from pydantic import ValidationError

    from assistant.packs.format import EvalLine

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
        return LineProblem(number, f"{where}: {first['msg']}")
    except ValueError as exc:  # JSONDecodeError is a ValueError
        return LineProblem(number, _first_line(exc))
    return EvalCase(
        number,
        line.question,
        line.answer,
        line.source,
        list(line.facts),
        line.out_of_scope,
        line.domain,
        line.split or split_of(line.question),
    )  # fmt: skip


def _first_line(exc: ValueError) -> str:
    prefix = "invalid JSON: " if isinstance(exc, json.JSONDecodeError) else ""
    return prefix + str(exc).split("\n")[0]
