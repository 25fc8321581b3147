"""The grounding table of issue [4/7]: answer files (bench/out/adapter-answers/*.json, written by
scripts/adapter_table.py) scored again by one rule set, so a run of older code and a run of
today's are compared on equal terms.

Run: `.venv/bin/python scripts/grounding_table.py LABEL=FILE.json [LABEL=FILE.json ...]`

Per file: facts in the passages, in the quoted evidence, in the model's own words and in the
whole answer (in-scope questions with facts); numbers shown in the model's own words that
neither the passages nor the question state; sentences shown in its own words that the claim
check does not support (today's check as the answer path runs it, the pack's rule sentence
kept, applied to what each run showed); the expected source
cited; in-scope questions answered and off-topic ones declined.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from types import SimpleNamespace

from assistant.answering.claims import UNSUPPORTED_MARK, ClaimFilter
from assistant.answering.evidence import own_words, quoted_evidence
from assistant.evaluation.metrics import fact_recall, unsupported_numbers

COLUMNS = (
    "context",
    "evidence",
    "own words",
    "whole answer",
    "numbers shown not in passages/question",
    "shown sentences the check does not support",
    "expected source cited",
    "in-scope answered",
    "off-topic declined",
)


def _flag(value: object) -> bool:
    return value is True or value == "True"


def _facts(item: dict) -> list[str]:
    facts = item["facts"]
    return facts if isinstance(facts, list) else json.loads(facts.replace("'", '"'))


def _rule(pack: str) -> str:
    from assistant.packs.format import load_pack_config
    from assistant.packs.locate import find_pack
    from assistant.packs.style import rule_marker

    style = load_pack_config(find_pack(pack)).style
    return rule_marker(style.kind, style.marker)


def score(path: Path) -> dict[str, str]:
    data = json.loads(path.read_text())
    items, rule = data["items"], _rule(data["pack"])
    inside = [i for i in items if not _flag(i["out_of_scope"])]
    outside = [i for i in items if _flag(i["out_of_scope"])]
    with_facts = [i for i in inside if _facts(i)]
    answered = [i for i in inside if not _flag(i["declined"])]

    def recall(part) -> str:
        values = [fact_recall(_facts(i), part(i)) or 0.0 for i in with_facts]
        return f"{statistics.mean(values):.2f}" if values else "-"

    def passages(item: dict) -> list[str]:
        return [s.get("text") or "" for s in item["sources"]]

    written = unsupported = sentences = failing = cited = 0
    for item in answered:
        words = own_words(item["answer"])
        found, missing = unsupported_numbers(words, [item["question"], *passages(item)])
        written, unsupported = written + len(found), unsupported + len(missing)
        numbered = [
            SimpleNamespace(number=s["number"], text=s.get("text") or "") for s in item["sources"]
        ]
        # checked as the answer path checks a stream, the pack's rule sentence kept
        check = ClaimFilter(numbered, item["question"], "off", rule)
        "".join(check.run([words]))
        shown = check.claims
        # a "mark" answer shows unsupported sentences as such: they are not shown as fact
        shown = [c for c in shown if not c.text.startswith(UNSUPPORTED_MARK.strip())]
        sentences += len(shown)
        failing += sum(not c.supported for c in shown)
        cited += any(s.get("cited") and s.get("path") == item["source"] for s in item["sources"])
    return {
        "context": recall(lambda i: "\n".join(passages(i))),
        "evidence": recall(lambda i: quoted_evidence(i["answer"])),
        "own words": recall(lambda i: own_words(i["answer"])),
        "whole answer": recall(lambda i: i["answer"]),
        "numbers shown not in passages/question": f"{unsupported} of {written}",
        "shown sentences the check does not support": f"{failing} of {sentences}",
        "expected source cited": f"{cited} of {len(answered)}",
        "in-scope answered": f"{len(answered)} of {len(inside)}",
        "off-topic declined": f"{sum(_flag(i['declined']) for i in outside)} of {len(outside)}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="LABEL=FILE.json")
    args = parser.parse_args()
    print("| run | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for run in args.runs:
        label, _, file = run.partition("=")
        row = score(Path(file))
        print(f"| {label} | " + " | ".join(row[c] for c in COLUMNS) + " |")


if __name__ == "__main__":
    main()
