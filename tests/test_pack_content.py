"""The shipped packs' content: facts are in their sources, kinds are present, eval is unseen,
and the generated files match a fresh build of scripts/build_packs.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKS = ["diabetes", "contracts", "support", "penguin-wood"]
CORPORA = REPO.parent / "shared" / "corpora"
CURATED = ["diabetes", "contracts", "support"]  # eval facts picked by hand (curated_facts.json)
FIRST_STEP = re.compile(r"^1\. ", re.M)  # the first step of a numbered list
# Single words too common to show that an answer is right.
COMMON = set(
    """the and for with that this from have has are was were been will shall may can not but all
    any one two use used using make made help time day days year years people person way ways thing
    things part parts good better best important information section page officially greater
    chance away goes key markers incorporating able often also very more most other some such
    include including called known need needs keep take give find see sure agreement party parties
    contract terminate insurance exclusive audit diabetes syncthing""".split()  # noqa: SIM905
)
CONTRACTIONS = {"dont", "doesnt", "cant", "isnt", "wont", "youre", "thats", "didnt", "arent"}


def bad_fact(f: str) -> str | None:
    """Why a fact is useless, or None: a single common word, a contraction edge."""
    toks = norm(f).split()
    if len(toks) == 1 and toks[0].strip('"') in COMMON:
        return "single common word"
    if toks[0] in CONTRACTIONS or toks[-1] in CONTRACTIONS:
        return "contraction edge"
    return None


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def load(path: Path) -> list[dict]:
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        assert line.strip(), f"{path}:{i} is blank"
        rows.append(json.loads(line))
    return rows


@pytest.fixture(params=PACKS)
def pack(request) -> Path:
    return REPO / "domains" / request.param


def test_sft_lines(pack: Path):
    rows = load(pack / "sft" / "train.jsonl")
    assert len(rows) >= 150
    kinds = {r["kind"] for r in rows}
    assert kinds == {"answer", "decline_offtopic", "no_passage"}
    for r in rows:
        roles = [m["role"] for m in r["messages"]]
        assert roles == ["system", "user", "assistant"]
        assert all(m["content"].strip() for m in r["messages"])
        assert "[1]" not in r["messages"][2]["content"]
        if r["kind"] == "answer":
            assert r["source"].startswith("docs/")
            assert 1 <= len(r["facts"]) <= 4
            doc = (pack / r["source"]).read_text(encoding="utf-8")
            for f in r["facts"]:
                assert norm(f) in norm(doc), (r["source"], f)
                assert norm(f) in norm(r["messages"][2]["content"]), f
        else:
            assert "source" not in r
            assert r["facts"] == []


def test_eval_lines(pack: Path):
    rows = load(pack / "eval" / "qa.jsonl")
    oos = [r for r in rows if r["out_of_scope"]]
    ins = [r for r in rows if not r["out_of_scope"]]
    assert len(oos) >= 8 and len(ins) >= 12
    for r in oos:
        assert r["question"].strip() and r["facts"] == []
    for r in ins:
        assert {"question", "answer", "source", "facts", "out_of_scope"} <= set(r)
        assert 1 <= len(r["facts"]) <= 4
        doc = (pack / r["source"]).read_text(encoding="utf-8")
        for f in r["facts"]:
            assert norm(f) in norm(doc), (r["source"], f)
            assert norm(f) in norm(r["answer"]), (r["question"], f)
        if pack.name in CURATED:
            assert 2 <= len(r["facts"]) <= 4, r["question"]
            for f in r["facts"]:
                assert len(f.split()) <= 6, (r["question"], f)
                assert bad_fact(f) is None, (r["question"], f, bad_fact(f))


def test_curated_facts_cover_eval():
    data = json.loads((REPO / "scripts" / "packdata" / "curated_facts.json").read_text("utf-8"))
    for name in CURATED:
        ins = [
            r for r in load(REPO / "domains" / name / "eval" / "qa.jsonl") if not r["out_of_scope"]
        ]
        curated = {(norm(e["question"]), e["source"]): e["facts"] for e in data[name]}
        for r in ins:
            assert curated.get((norm(r["question"]), r["source"])) == r["facts"], r["question"]


def test_sft_facts_not_useless(pack: Path):
    rows = [r for r in load(pack / "sft" / "train.jsonl") if r["kind"] == "answer"]
    bad = [(r["messages"][1]["content"], f) for r in rows for f in r["facts"] if bad_fact(f)]
    assert not bad, bad[:5]


def test_eval_questions_not_in_sft(pack: Path):
    sft_q = {norm(r["messages"][1]["content"]) for r in load(pack / "sft" / "train.jsonl")}
    for r in load(pack / "eval" / "qa.jsonl"):
        assert norm(r["question"]) not in sft_q, r["question"]


def test_pack_files(pack: Path):
    import tomllib

    meta = tomllib.loads((pack / "pack.toml").read_text(encoding="utf-8"))
    assert meta["name"] == pack.name
    assert (pack / "SOURCES.md").is_file()
    docs = [p for p in (pack / "docs").rglob("*") if p.is_file()]
    assert docs
    for p in docs:
        first = p.read_text(encoding="utf-8").splitlines()[0]
        assert "ource" in first or first.startswith("#"), p


@pytest.mark.needs_corpora
def test_build_is_reproducible():
    res = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "build_packs.py"),
            "--check",
            "--corpora",
            str(CORPORA),
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_support_answers_tasks_in_numbered_steps():
    """The support persona answers in steps when the user has to do something: its task
    questions are taught with steps, and some unseen ones are held out to measure it."""
    task = re.compile(r"^(how do i|what are the steps for)\b", re.I)
    rows = load(REPO / "domains" / "support" / "sft" / "train.jsonl")
    tasks = [r for r in rows if r["kind"] == "answer" and task.search(r["messages"][1]["content"])]
    with_steps = [r for r in tasks if FIRST_STEP.search(r["messages"][-1]["content"])]
    assert len(tasks) >= 15 and len(with_steps) >= 0.8 * len(tasks)
    held_out = [
        e
        for e in load(REPO / "domains" / "support" / "eval" / "qa.jsonl")
        if task.search(e["question"]) and FIRST_STEP.search(e.get("answer") or "")
    ]
    assert len(held_out) >= 5


def test_support_step_replies_start_at_step_one():
    """A support reply with steps opens with step 1, not a lead line: an adapter trained on
    lead lines learned to stop after one ("The following are the steps ... [1].")."""
    rows = load(REPO / "domains" / "support" / "sft" / "train.jsonl")
    replies = [r["messages"][-1]["content"] for r in rows if r["kind"] == "answer"]
    with_steps = [reply for reply in replies if FIRST_STEP.search(reply)]
    assert len(with_steps) >= 15
    assert all(reply.startswith("1. ") for reply in with_steps)
