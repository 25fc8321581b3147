"""Evidence and retrieval without the generator: for each pack's eval questions (dev split unless
`--split` says otherwise), the facts in the retrieved passages (context_fact_recall) and in the
quoted evidence the answer would carry (evidence_fact_recall), and their ratio. Only the
embedder runs, so a selection rule can be tried on every pack in a minute.

Run: `.venv/bin/python scripts/evidence_table.py [--split dev] [--pack P] [--show 3]`
"""

from __future__ import annotations

import argparse
import statistics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["dev", "test", "all"], default="dev")
    parser.add_argument("--pack", action="append", help="only these packs (repeatable)")
    parser.add_argument("--show", type=int, default=0, help="print N misses per pack")
    parser.add_argument("--no-focus", action="store_true", help="without clause-level search")
    args = parser.parse_args()

    from assistant.answering.compose import sources_from_hits
    from assistant.answering.evidence import evidence_block
    from assistant.answering.focus import focused_hits
    from assistant.answering.router import Router
    from assistant.evaluation.metrics import fact_recall
    from assistant.evaluation.run import in_split, load_cases
    from assistant.packs.locate import list_packs
    from assistant.settings import load_settings

    packs = [p for p in list_packs() if not args.pack or p.name in args.pack]
    router = Router(load_settings(), packs=packs)
    print("| pack | split | n | context_fact_recall | evidence_fact_recall | ratio | quotes |")
    print("|---|---|---|---|---|---|---|")
    for pack in packs:
        handle = router.handle(pack.name)
        cases, _ = load_cases(pack.eval_file)
        cases = [c for c in in_split(cases, args.split) if not c.out_of_scope and c.facts]
        context, evidence, quotes, misses = [], [], [], []
        for case in cases:
            k = handle.config.retrieval.k
            hits = handle.index.search(case.question, k=k)
            if not args.no_focus:
                hits = focused_hits(handle.index, handle.document_heads(), case.question, hits, k)
            sources = sources_from_hits(pack.name, hits)
            block = evidence_block(router.embed, case.question, sources)
            context.append(fact_recall(case.facts, "\n".join(s.text for s in sources)))
            evidence.append(fact_recall(case.facts, block))
            quotes.append(block.count("\n> ") + block.startswith("> "))
            if evidence[-1] < context[-1]:
                misses.append((case, block))
        c, e = statistics.mean(context), statistics.mean(evidence)
        print(
            f"| {pack.name} | {args.split} | {len(cases)} | {c:.2f} | {e:.2f} |"
            f" {e / c if c else 0:.2f} | {statistics.mean(quotes):.1f} |"
        )
        for case, block in misses[: args.show]:
            print(f"\n  Q: {case.question}\n  facts: {case.facts}\n  {block.strip()[:600]}\n")


if __name__ == "__main__":
    main()
