"""The adapter's quality table: every pack x {base, adapter}, both with retrieval, on each pack's
eval/qa.jsonl (which training never sees).

Run: `.venv/bin/python scripts/adapter_table.py [--limit 12] [--mode hybrid] [--pack P]`

Questions are spread evenly over each file (`--limit`, keeping the out-of-scope share). Prints
a Markdown table of answer_fact_recall, style_rate, source_cited_rate and in_scope_answer_rate
and writes it, with the settings, to `--out` (default docs/eval/adapters-<mode>.md).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
METRICS = ("answer_fact_recall", "style_rate", "source_cited_rate", "in_scope_answer_rate")


def cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=12)
    parser.add_argument("--mode", choices=["generate", "extractive", "hybrid"], default="hybrid")
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--pack", action="append", help="only these packs (repeatable)")
    args = parser.parse_args()

    from assistant.evaluation import evaluate, load_cases, sample_cases
    from assistant.packs import list_packs
    from assistant.router import Router
    from assistant.settings import load_settings

    packs = [p for p in list_packs() if not args.pack or p.name in args.pack]
    router = Router(load_settings(), packs=packs)
    lines = [
        f"# Adapter vs base, both with retrieval ({args.mode} mode)",
        "",
        f"{time.strftime('%Y-%m-%d')}; `scripts/adapter_table.py --limit {args.limit} --mode"
        f" {args.mode} --max-tokens {args.max_tokens}`; questions spread evenly over each"
        " eval/qa.jsonl. Cells: base / adapter.",
        "",
        "| pack | n (in scope) | " + " | ".join(METRICS) + " |",
        "|---|---|" + "---|" * len(METRICS),
    ]
    for pack in packs:
        cases, _ = load_cases(pack.eval_file)
        cases = sample_cases(cases, args.limit)
        reports = {}
        for name, adapter in (("base", False), ("adapter", True)):
            reports[name] = evaluate(
                router, cases, pack.name, adapter=adapter, mode=args.mode,
                max_tokens=args.max_tokens, config=f"{name}+rag",
            )  # fmt: skip
        inside = sum(not c.out_of_scope for c in cases)
        cells = [
            f"{cell(reports['base'].metrics.get(k))} / {cell(reports['adapter'].metrics.get(k))}"
            for k in METRICS
        ]
        lines.append(f"| {pack.name} | {inside} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    out = args.out or ROOT / "docs" / "eval" / f"adapters-{args.mode}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
