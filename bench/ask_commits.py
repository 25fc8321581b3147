"""Benchmark: the answer path of this checkout against an earlier commit, in one run.

Run: `.venv/bin/python bench/ask_commits.py --base REV [--per-pack 3] [--max-tokens 64]`

The earlier commit is checked out into a temporary git worktree (sharing this checkout's built
indexes and model cache). One worker process per side loads its own `Router` once, then both
answer the same questions (the first `--per-pack` of each pack's eval/qa.jsonl, with the pack's
adapter and answer mode), alternating which side goes first. Printed: time to first text piece
and decode tokens/s, median per side, and this checkout's figure as a ratio to the base's
(first token below 1.0 and decode above 1.0 are faster). A warm-up question per side is not
counted. Also checks that both sides gave the same text for every question.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKS = ("contracts", "diabetes", "penguin-wood", "support")

# The worker runs inside either tree. Between commits the router moved (assistant.router ->
# assistant.answering.router; the old name is tried first, since the venv's editable install
# would otherwise supply a missing module from this checkout) and the stream API changed (it
# used to end with the Answer as its last item; now it is an AnswerStream with `.answer`), so
# the worker accepts both.
WORKER = r"""
import json, sys, time
from assistant.settings import load_settings
try:
    from assistant.router import Router
except ImportError:
    from assistant.answering.router import Router
router = Router(load_settings())
router.warm_up()
for line in sys.stdin:
    job = json.loads(line)
    start = time.perf_counter()
    first, pieces, final = None, [], None
    stream = router.stream(job["question"], job["pack"], max_tokens=job["max_tokens"])
    for item in stream:
        if isinstance(item, str):
            if first is None:
                first = time.perf_counter() - start
            pieces.append(item)
        else:
            final = item
    final = final if final is not None else stream.answer
    print(json.dumps({"first_ms": (first or 0.0) * 1000,
                      "tokens_per_s": final.timings.tokens_per_s,
                      "text": final.answer}), flush=True)
"""


class Side:
    """One tree's worker process: send a question, read its timings."""

    def __init__(self, name: str, tree: Path) -> None:
        self.name = name
        env = {"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER],
            cwd=tree,
            env={**env, **_passthrough_env()},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, pack: str, question: str, max_tokens: int) -> dict:
        job = {"pack": pack, "question": question, "max_tokens": max_tokens}
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the {self.name} worker stopped (see its error above)")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(60)


def _passthrough_env() -> dict[str, str]:
    import os

    keep = ("HOME", "ASSISTANT_HOME", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "HF_HUB_OFFLINE")
    return {key: os.environ[key] for key in keep if key in os.environ}


def questions(per_pack: int) -> list[tuple[str, str]]:
    chosen = []
    for pack in PACKS:
        lines = (ROOT / "domains" / pack / "eval" / "qa.jsonl").read_text().splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
        chosen += [(pack, row["question"]) for row in rows if not row.get("out_of_scope")][
            :per_pack
        ]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the commit to compare against")
    parser.add_argument("--per-pack", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ask-commits-") as tmp:
        base_tree = Path(tmp) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(base_tree), args.base],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            (base_tree / "indexes").symlink_to(ROOT / "indexes")
            report(args, Side("base", base_tree), Side("head", ROOT))
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT, check=False
            )


def report(args: argparse.Namespace, base: Side, head: Side) -> None:
    asked = questions(args.per_pack)
    for side in (base, head):
        side.ask(*asked[0], args.max_tokens)  # warm-up: adapters load, caches fill
    results: dict[str, list[dict]] = {"base": [], "head": []}
    started = time.perf_counter()
    for i, (pack, question) in enumerate(asked):
        order = (base, head) if i % 2 == 0 else (head, base)
        for side in order:
            results[side.name].append(side.ask(pack, question, args.max_tokens))
    base.close()
    head.close()
    same = sum(
        b["text"] == h["text"] for b, h in zip(results["base"], results["head"], strict=True)
    )
    print(f"# ask: {args.base} (base) vs this checkout (head), {len(asked)} questions")
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, python "
          f"{platform.python_version()}; {time.perf_counter() - started:.0f} s")  # fmt: skip
    print("| | base | head | head / base |")
    print("|---|---|---|---|")
    for key, label in (("first_ms", "time to first piece p50 (ms)"),
                       ("tokens_per_s", "decode tok/s p50")):  # fmt: skip
        b = statistics.median(r[key] for r in results["base"])
        h = statistics.median(r[key] for r in results["head"])
        print(f"| {label} | {b:.1f} | {h:.1f} | {h / b:.3f} |")
    print(f"identical answer text: {same} of {len(asked)}")


if __name__ == "__main__":
    main()
