"""Record every eval question's `assistant ask --json` answer, or compare two recordings.

A restructuring must not change what users see. `record` runs `assistant ask PACK QUESTION
--json` in one process (the model loads once) for every question of every pack's
eval/qa.jsonl and keeps the parts a user sees: the text, whether it declined and why, the
sources (passage, span, cited) and the citations. Timings and raw scores are left out: they
vary from run to run. `compare` prints how many answers are identical and the first
differences.

    .venv/bin/python scripts/answers_snapshot.py record /tmp/before.jsonl
    .venv/bin/python scripts/answers_snapshot.py record /tmp/after.jsonl --max-tokens 64
    .venv/bin/python scripts/answers_snapshot.py compare /tmp/before.jsonl /tmp/after.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEEN_FIELDS = ("answer", "pack", "declined", "decline_reason", "citations", "adapter", "mode")
SOURCE_FIELDS = ("number", "path", "section", "page", "start", "end", "text", "cited")


def questions(packs: list[str]) -> list[tuple[str, str]]:
    """(pack, question) for every line of each pack's eval/qa.jsonl, in file order."""
    found = []
    for pack in packs:
        for line in (ROOT / "domains" / pack / "eval" / "qa.jsonl").read_text().splitlines():
            if line.strip():
                found.append((pack, json.loads(line)["question"]))
    return found


def seen_part(answer: dict) -> dict:
    """What a user sees of an answer: no timings, no scores."""
    kept = {name: answer.get(name) for name in SEEN_FIELDS}
    kept["sources"] = [{f: s.get(f) for f in SOURCE_FIELDS} for s in answer.get("sources", [])]
    return kept


def record(out: Path, packs: list[str], max_tokens: int | None, limit: int | None) -> None:
    from click.testing import CliRunner

    from assistant.cli import cli

    runner = CliRunner()
    todo = questions(packs)
    if limit:
        todo = [q for i, q in enumerate(todo) if sum(p == q[0] for p, _ in todo[:i]) < limit]
    with out.open("w") as sink:
        for i, (pack, question) in enumerate(todo, start=1):
            args = ["ask", pack, question, "--json"]
            if max_tokens:
                args += ["--max-tokens", str(max_tokens)]
            result = runner.invoke(cli, args, catch_exceptions=False)
            if result.exit_code != 0:
                raise SystemExit(f"{pack}: {question!r} exited {result.exit_code}: {result.output}")
            row = {"pack": pack, "question": question, **seen_part(json.loads(result.stdout))}
            sink.write(json.dumps(row, ensure_ascii=False) + "\n")
            sink.flush()
            print(f"\r{i}/{len(todo)} {pack}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)


def compare(before: Path, after: Path) -> int:
    old = [json.loads(line) for line in before.read_text().splitlines() if line.strip()]
    new = [json.loads(line) for line in after.read_text().splitlines() if line.strip()]
    new_by_key = {(r["pack"], r["question"]): r for r in new}
    same, differ, missing = 0, [], []
    for row in old:
        other = new_by_key.get((row["pack"], row["question"]))
        if other is None:
            missing.append(row)
        elif other == row:
            same += 1
        else:
            differ.append((row, other))
    print(f"{same} of {len(old)} answers identical; {len(differ)} differ; {len(missing)} missing")
    for row, other in differ[:5]:
        fields = [name for name in row if row[name] != other.get(name)]
        print(f"- {row['pack']}: {row['question'][:70]!r} differs in {', '.join(fields)}")
    return 0 if same == len(old) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    rec = verbs.add_parser("record", help="answer every eval question and write JSONL")
    rec.add_argument("out", type=Path)
    rec.add_argument(
        "--packs", nargs="+", default=["contracts", "diabetes", "penguin-wood", "support"]
    )
    rec.add_argument("--max-tokens", type=int, help="cut answers short (a quicker check)")
    rec.add_argument("--limit", type=int, help="at most this many questions per pack")
    cmp = verbs.add_parser("compare", help="count identical answers in two recordings")
    cmp.add_argument("before", type=Path)
    cmp.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.verb == "record":
        record(args.out, args.packs, args.max_tokens, args.limit)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
