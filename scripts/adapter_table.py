"""The adapter's quality table: every pack x {base, adapter}, both with retrieval, on each pack's
eval/qa.jsonl (which training never sees), its test split unless `--split` says otherwise.

Run: `.venv/bin/python scripts/adapter_table.py [--split test] [--limit 0] [--mode hybrid]
[--grounding strict] [--pack P] [--config base] [--max-tokens N]`, or `--compare BASE.json
OTHER.json` (two answer files).

`--limit N` spreads N questions evenly over each file (keeping the out-of-scope share); 0 takes
them all. Answers are as long as the pack's `max_new_tokens` unless `--max-tokens` says less.
Each (pack, config) result is kept in `--out` with a .json suffix, so the base and the adapter
columns can be measured in separate runs (the base while adapters train); the Markdown table
is rendered from every result in that file. Every answer, with its scores, goes to
bench/out/adapter-answers/ (git-ignored) for reading.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
METRICS = (
    "answer_fact_recall",
    "own_words_fact_recall",
    "unsupported_number_rate",
    "style_rate",
    "source_cited_rate",
    "in_scope_answer_rate",
    "oos_decline_rate",
)
CONFIGS = ("base", "adapter")


def compare(first: Path, second: Path) -> None:
    """Per question, whether the second answer file (bench/out/adapter-answers/) holds a larger
    or smaller share of the facts than the first; two-sided sign test over those that differ."""
    from scipy.stats import binomtest  # scipy comes with sentence-transformers

    from assistant.answering.evidence import own_words
    from assistant.evaluation.metrics import fact_recall

    def in_scope(path: Path) -> dict:
        items = json.loads(path.read_text())["items"]
        return {i["line"]: i for i in items if not i["out_of_scope"] and i["facts"]}

    every_old = {i["line"]: i for i in json.loads(first.read_text())["items"]}
    every_new = {i["line"]: i for i in json.loads(second.read_text())["items"]}
    both = every_old.keys() & every_new.keys()
    same = sum(every_old[k]["answer"] == every_new[k]["answer"] for k in both)
    print(f"identical answers: {same} of {len(both)}")
    old, new = in_scope(first), in_scope(second)
    for part, text in (
        ("whole answer", lambda i: i["answer"]),
        ("own words", lambda i: own_words(i["answer"])),
    ):
        shares = [
            (fact_recall(old[k]["facts"], text(old[k])), fact_recall(new[k]["facts"], text(new[k])))
            for k in old.keys() & new.keys()
        ]
        better, worse = sum(b > a for a, b in shares), sum(b < a for a, b in shares)
        n = better + worse
        p = binomtest(better, n).pvalue if n else 1.0
        print(
            f"{part}: better {better}, worse {worse}, tied {len(shares) - n}; sign test p = {p:.3f}"
        )


def cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def render(results: dict, mode: str) -> str:
    lines = [
        f"# Adapter vs base, both with retrieval ({mode} mode)",
        "",
        "`scripts/adapter_table.py`; cells: base / adapter; n: in-scope questions (style_n:"
        " those the pack's style check applies to).",
        "",
        "| pack | n | style_n | " + " | ".join(METRICS) + " | run |",
        "|---|---|---|" + "---|" * (len(METRICS) + 1),
    ]
    for pack in sorted(results):
        runs = results[pack]
        first = next(iter(runs.values()))
        cells = [
            " / ".join(cell(runs.get(c, {}).get("metrics", {}).get(k)) for c in CONFIGS)
            for k in METRICS
        ]
        run = (
            f"{first.get('split', 'all')} split, limit {first['limit'] or 'all'},"
            f" {first['max_tokens'] or 'pack'} tokens"
        )
        lines.append(
            f"| {pack} | {first['n_in_scope']} | {first['style_n']} | "
            + " | ".join(cells)
            + f" | {run}, {first['date']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="questions per pack (0: all)")
    parser.add_argument("--split", choices=["dev", "test", "all"], default="test")
    parser.add_argument("--mode", choices=["generate", "extractive", "hybrid"], default="hybrid")
    parser.add_argument("--grounding", choices=["strict", "mark", "off"], help="default: pack's")
    parser.add_argument("--max-tokens", type=int, help="answer length (default: the pack's)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--pack", action="append", help="only these packs (repeatable)")
    parser.add_argument("--config", action="append", choices=CONFIGS, help="default: both")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BASE.json", "OTHER.json"),
                        help="only compare two answer files question by question")  # fmt: skip
    args = parser.parse_args()
    if args.compare:
        compare(*args.compare)
        return

    from assistant.answering.router import Router
    from assistant.evaluation.run import evaluate, in_split, load_cases, sample_cases
    from assistant.packs.locate import list_packs
    from assistant.settings import load_settings

    out = args.out or ROOT / "docs" / "eval" / f"adapters-{args.mode}.md"
    store = out.with_suffix(".json")
    results = json.loads(store.read_text()) if store.is_file() else {}
    mine: dict[str, dict] = {}
    packs = [p for p in list_packs() if not args.pack or p.name in args.pack]
    loaded = load_settings()
    router = Router(loaded, packs=packs)
    # int8 runs (ASSISTANT_QUANTIZE=int8) and llama.cpp runs (ASSISTANT_BACKEND=llama_cpp) keep
    # their answers beside the float32 ones
    models = loaded.settings.models
    weights = "" if models.quantize == "none" else f"-{models.quantize}"
    if models.backend == "llama_cpp":
        weights = "-llama-cpp-f16"
    if models.base_model not in ("smollm2-135m", "smollm2-135m-instruct"):
        weights += f"-{Path(models.base_model).name}"  # each base's answers kept apart
    for pack in packs:
        cases, _ = load_cases(pack.eval_file)
        cases = sample_cases(in_split(cases, args.split), args.limit or None)
        for name in args.config or CONFIGS:
            started = time.perf_counter()
            report = evaluate(
                router, cases, pack.name, adapter=name == "adapter", mode=args.mode,
                max_tokens=args.max_tokens, config=f"{name}+rag", split=args.split,
                grounding=args.grounding,
            )  # fmt: skip
            results.setdefault(pack.name, {})[name] = {
                "metrics": report.metrics,
                "n_in_scope": sum(not c.out_of_scope for c in cases),
                "style_n": sum("style" in item.scores for item in report.items),
                "limit": args.limit,
                "split": args.split,
                "max_tokens": args.max_tokens,
                "date": time.strftime("%Y-%m-%d"),
                "seconds": round(time.perf_counter() - started),
            }
            answers = (
                ROOT
                / "bench"
                / "out"
                / "adapter-answers"
                / f"{pack.name}-{name}-{args.mode}{weights}-{args.split}"
                f"{'-' + args.grounding if args.grounding else ''}.json"
            )
            answers.parent.mkdir(parents=True, exist_ok=True)  # for reading, never committed
            answers.write_text(json.dumps(report.to_dict(), indent=1) + "\n")
            metrics = {k: cell(report.metrics.get(k)) for k in METRICS}
            print(pack.name, name, metrics, f"{time.perf_counter() - started:.0f} s", flush=True)
            mine.setdefault(pack.name, {})[name] = results[pack.name][name]
            # Another run (another pack) may have written meanwhile: merge into what is there.
            results = json.loads(store.read_text()) if store.is_file() else {}
            for pack_name, runs in mine.items():
                results.setdefault(pack_name, {}).update(runs)
            store.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    out.write_text(render(results, args.mode))
    print(f"wrote {out} and {store}")


if __name__ == "__main__":
    main()
