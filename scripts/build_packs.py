"""Regenerate the shipped domain packs' generated files from the shared corpora.

    .venv/bin/python scripts/build_packs.py                 # write domains/<pack>/...
    .venv/bin/python scripts/build_packs.py --check         # rebuild in temp; exit 1 on a diff
    .venv/bin/python scripts/build_packs.py --corpora PATH  # default: ../shared/corpora

Generated per pack: docs/ (copied unchanged), SOURCES.md and the corpus LICENSE (copied),
sft/train.jsonl and eval/qa.jsonl. pack.toml is handwritten; its persona and decline message
are read from it. Deterministic: fixed seeds, sorted inputs.
"""

from __future__ import annotations

import argparse
import filecmp
import random
import shutil
import sys
import tempfile
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from packdata import contracts, diabetes, penguin, support  # noqa: E402
from packdata.common import dump_jsonl, norm, occurs  # noqa: E402
from packdata.nopassage import NO_PASSAGE  # noqa: E402
from packdata.offtopic import (
    EVERYDAY_EVAL,
    EVERYDAY_TRAIN,
    decline_rows,
    no_passage_rows,
    pick_cross_pack,
)  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PACKS = {"diabetes": diabetes, "contracts": contracts, "support": support, "penguin-wood": penguin}
TOPICS = {
    "diabetes": "diabetes and diabetes care",
    "contracts": "reviewing the contracts in this pack",
    "support": "using and troubleshooting Syncthing",
    "penguin-wood": "working penguin wood",
}
SEED = 7


def paraphrase(pack: str, question: str) -> bool:
    check = getattr(PACKS[pack], "is_paraphrase", None)
    return bool(check and check(question))


def build_all(corpora: Path, out: Path, domains: Path) -> None:
    answers: dict[str, list[dict]] = {}
    evals: dict[str, list[dict]] = {}
    tomls: dict[str, dict] = {}
    for i, (name, mod) in enumerate(PACKS.items()):
        toml_path = domains / name / "pack.toml"
        if not toml_path.exists():
            raise SystemExit(f"missing handwritten {toml_path}")
        tomls[name] = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        answers[name], evals[name] = mod.build(corpora / name, tomls[name]["persona"], SEED + i)

    train_q = {
        n: [q for r in rows if not paraphrase(n, q := r["messages"][1]["content"])]
        for n, rows in answers.items()
    }
    eval_q = {n: [e["question"] for e in rows] for n, rows in evals.items()}

    for i, name in enumerate(PACKS):
        persona = tomls[name]["persona"]
        decline = tomls[name]["decline_message"]
        rng = random.Random(SEED * 100 + i)
        everyday = sorted(EVERYDAY_TRAIN)
        rng.shuffle(everyday)
        off = everyday[:24] + pick_cross_pack(train_q, name, 7, SEED + i)
        sft = answers[name] + decline_rows(persona, decline, TOPICS[name], off, SEED + i)
        sft += no_passage_rows(persona, NO_PASSAGE[name], SEED + i)

        oos = sorted(EVERYDAY_EVAL)
        rng.shuffle(oos)
        oos_q = oos[:6] + pick_cross_pack(eval_q, name, 2, SEED + 10 + i)
        ev = evals[name] + [{"question": q, "out_of_scope": True, "facts": []} for q in oos_q]

        check_pack(name, corpora / name, sft, ev)
        write_pack(name, corpora / name, out / name, sft, ev)


def check_pack(name: str, corpus: Path, sft: list[dict], ev: list[dict]) -> None:
    sft_q = {norm(r["messages"][1]["content"]) for r in sft}
    problems = []
    for e in ev:
        if norm(e["question"]) in sft_q:
            problems.append(f"eval question in SFT: {e['question']}")
        for f in e["facts"]:
            doc = (corpus / e["source"]).read_text(encoding="utf-8")
            if not occurs(f, doc):
                problems.append(f"eval fact {f!r} not in {e['source']}")
            if not occurs(f, e["answer"]):
                problems.append(f"eval fact {f!r} not in its answer: {e['question']}")
    for r in sft:
        reply = r["messages"][2]["content"]
        if "[1]" in reply:
            problems.append(f"citation marker in reply: {reply[:60]}")
        if r["kind"] == "answer":
            doc = (corpus / r["source"]).read_text(encoding="utf-8")
            for f in r["facts"]:
                if not occurs(f, doc) or not occurs(f, reply):
                    problems.append(
                        f"SFT fact {f!r} not in source/reply: {r['messages'][1]['content']}"
                    )
    if problems:
        raise SystemExit(f"{name}: " + "\n".join(problems[:20]))


def write_pack(name: str, corpus: Path, dest: Path, sft: list[dict], ev: list[dict]) -> None:
    if (dest / "docs").exists():
        shutil.rmtree(dest / "docs")
    shutil.copytree(corpus / "docs", dest / "docs")
    for extra in ["SOURCES.md", *sorted(p.name for p in corpus.glob("LICENSE*"))]:
        shutil.copyfile(corpus / extra, dest / extra)
    (dest / "sft").mkdir(parents=True, exist_ok=True)
    (dest / "eval").mkdir(parents=True, exist_ok=True)
    (dest / "sft" / "train.jsonl").write_text(dump_jsonl(sft), encoding="utf-8")
    (dest / "eval" / "qa.jsonl").write_text(dump_jsonl(with_splits(ev)), encoding="utf-8")


def with_splits(lines: list[dict]) -> list[dict]:
    """Each line marked dev or test, alternating within the in-scope lines and within the
    off-topic ones: two halves of the same size and mix, each covering every document."""
    seen = {True: 0, False: 0}
    marked = []
    for line in lines:
        outside = bool(line.get("out_of_scope"))
        marked.append({**line, "split": "dev" if seen[outside] % 2 == 0 else "test"})
        seen[outside] += 1
    return marked


def generated_files(root: Path) -> set[str]:
    out = set()
    for name in PACKS:
        base = root / name
        for sub in ("docs", "sft", "eval"):
            out |= {str(p.relative_to(root)) for p in (base / sub).rglob("*") if p.is_file()}
        out |= {str(p.relative_to(root)) for p in base.glob("SOURCES.md")}
        out |= {str(p.relative_to(root)) for p in base.glob("LICENSE*")}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", type=Path, default=REPO.parent / "shared" / "corpora")
    ap.add_argument("--check", action="store_true", help="rebuild into a temp dir and compare")
    args = ap.parse_args(argv)
    corpora = args.corpora.resolve()
    domains = REPO / "domains"
    if not args.check:
        build_all(corpora, domains, domains)
        for name in PACKS:
            sft = (domains / name / "sft" / "train.jsonl").read_text(encoding="utf-8").count("\n")
            ev = (domains / name / "eval" / "qa.jsonl").read_text(encoding="utf-8").count("\n")
            print(f"{name}: {sft} SFT lines, {ev} eval lines")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        build_all(corpora, out, domains)
        want, have = generated_files(out), generated_files(domains)
        diffs = sorted(want ^ have)
        diffs += sorted(
            f for f in want & have if not filecmp.cmp(out / f, domains / f, shallow=False)
        )
    if diffs:
        print("differs from a fresh build:", *diffs[:50], sep="\n  ")
        return 1
    print("packs are up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
