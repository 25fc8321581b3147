"""Diabetes pack: MedQuAD sections condensed to short, warm patient-education replies."""

from __future__ import annotations

import re
from pathlib import Path

from .common import (
    background_idf,
    best_sentences,
    collapse,
    content_words,
    load_curated,
    norm,
    occurs,
    pick_facts,
    read_jsonl,
    sentences,
)

MAX_ANSWERS = 160
TOPIC = "diabetes and its care, from the patient education pages in this pack"
MED_WORDS = re.compile(
    r"\b(insulin|medicine|medicines|medication|medications|pills?|dose|doses|dosing|drugs?|metformin)\b",
    re.I,
)
QTYPE_WORDS = {
    "symptoms": "symptoms signs feel",
    "causes": "cause causes caused happen",
    "treatment": "treat treatment treated manage",
    "prevention": "prevent lower risk delay",
    "exams and tests": "test tests diagnose check",
    "susceptibility": "risk likely people",
    "considerations": "eat eating plan should",
    "frequency": "people affected percent",
    "inheritance": "inherited family genes",
    "outlook": "outlook prognosis",
    "research": "research studies",
}
CLOSERS = [
    "Your care team can help you work out what this means for you.",
    "If you have questions about your own situation, ask your care team.",
    "Your care team is the best place to talk this through for your own care.",
    "Talk with your care team about what fits you best.",
]
MED_CLOSER = (
    "Please talk with your care team before you start, stop or change any medicine or dose."
)


def _is_heading(p: str) -> bool:
    p = p.strip()
    if "\n" in p or p.startswith("- ") or "  " in p:
        return False
    ws = p.split()
    if p.endswith("?"):
        return len(ws) <= 14
    if p.endswith((".", ":", "!", "*")) or len(ws) > 10:
        return False
    caps = sum(1 for w in ws if w[:1].isupper() or w.lower() in SMALL)
    return caps == len(ws)


SMALL = {"and", "or", "of", "the", "a", "an", "in", "to", "for", "by", "with", "on", "after"}


def _list_items(p: str) -> list[str]:
    body = p.strip()[2:]
    return [collapse(x) for x in re.split(r"\s+-\s+", body) if collapse(x)]


def _join_items(items: list[str]) -> str:
    items = items[:6]
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + (", and " if len(items) > 2 else " and ") + items[-1]


def blocks(answer: str) -> list[tuple[str | None, list[str], list[str]]]:
    """Split a MedQuAD answer into (sub-heading, sentences, short list items) blocks."""
    out: list[tuple[str | None, list[str], list[str]]] = []
    heading: str | None = None
    sents: list[str] = []
    items_all: list[str] = []
    for raw in re.split(r"\n\s*\n", answer):
        p = raw.strip()
        if not p:
            continue
        if p.startswith("- "):
            items = _list_items(p)
            short = all(len(i.split()) <= 8 and not i.endswith(".") for i in items)
            if short:
                items_all.extend(items[:6])
                joined = _join_items(items)
                if sents and not sents[-1].endswith((".", "?", "!")):
                    sents[-1] = sents[-1].rstrip(":") + " " + joined + "."
                else:
                    sents.append(joined[0].upper() + joined[1:] + ".")
            else:
                for it in items:
                    sents.extend(sentences(it))
            continue
        if _is_heading(p) and (sents or heading is not None):
            out.append((heading, sents, items_all))
            heading, sents, items_all = p, [], []
            continue
        if _is_heading(p):
            heading = p
            continue
        if not p.endswith((".", "?", "!")) and len(p.split()) <= 25:
            sents.append(collapse(p))
            continue
        sents.extend(sentences(p))
    out.append((heading, sents, items_all))
    return [b for b in out if b[1]]


def _shorten(s: str, limit: int = 45) -> str:
    """Cut an over-long list sentence after a whole item (at a comma or ' - ')."""
    s = collapse(s)
    if len(s.split()) <= limit:
        return s
    parts = re.split(r"(?<=,)\s| - ", s)
    out = ""
    for part in parts:
        if len((out + " " + part).split()) > limit:
            break
        out = (out + " " + part).strip()
    return out.rstrip(",;:") + "."


def _fix(s: str) -> str:
    s = collapse(s)
    if s.startswith("- "):
        s = s[2:]
    if s.count(" - ") >= 2:
        s = s.replace(" - ", ", ")
    s = s[:1].upper() + s[1:]
    if s and not s.endswith((".", "?", "!")):
        s += "."
    return s


def condense(
    question: str, qtype: str, answer: str, max_words: int = 65, must: list[str] | None = None
) -> tuple[str, list[str]]:
    """1-3 sentences of the answer that best match the question, plus short list items in them.

    With `must` (curated facts), the sentences holding those facts come first, in document
    order, and the rest of the word budget goes to the best-matching other sentences."""
    all_sents: list[str] = []
    items: list[str] = []
    for _, sents, its in blocks(answer):
        all_sents.extend(sents)
        items.extend(its)
    raw_sents = all_sents
    all_sents = [
        s
        for s in all_sents
        if 4 <= len(s.split()) <= 55
        and s.count(" - ") < 2
        and "__" not in s
        and s.endswith((".", "!", "?"))
    ]
    if not all_sents:
        all_sents = [_shorten(s) for s in raw_sents if len(s.split()) >= 4 and "__" not in s][:3]
    kw = content_words(QTYPE_WORDS.get(qtype, ""))

    def bias(i, s):
        b = {0: 1.5, 1: 0.8}.get(i, 0.0)
        b += 0.7 * len(kw & content_words(s))
        return b

    if must:
        # (position in the answer, sentence): usable sentences first, then shortened others.
        pool = [(raw_sents.index(s), s) for s in all_sents]
        pool += [
            (i, _shorten(s))
            for i, s in enumerate(raw_sents)
            if s not in all_sents and "__" not in s
        ]
        required: list[tuple[int, str]] = []
        for f in must:
            if not any(occurs(f, s) for _, s in required):
                hit = next((p for p in pool if occurs(f, p[1])), None)
                if hit is not None:
                    required.append(hit)
        used = sum(len(s.split()) for _, s in required)
        rest = [s for s in all_sents if s not in {r for _, r in required}]
        extra = []
        if len(required) < 3 and used < max_words - 12:
            extra = best_sentences(
                question, rest, n=3 - len(required), max_words=max_words - used, bias=bias
            )
            extra = [s for s in extra if len(s.split()) <= max_words - used]
        chosen = [s for _, s in sorted(required + [(raw_sents.index(s), s) for s in extra])]
    else:
        chosen = best_sentences(question, all_sents, n=3, max_words=max_words, bias=bias)
    text = " ".join(_fix(s) for s in chosen)
    return text, [i for i in items if norm(i) in norm(text)]


TEXT_MED = re.compile(r"\b(dose|doses|dosing|medicines?|medications?|pills)\b", re.I)


def reply_for(question: str, text: str, i: int) -> str:
    q = re.sub(r"insulin[- ](resistance|producing|dependent)", "", question, flags=re.I)
    if MED_WORDS.search(q) or TEXT_MED.search(text):
        closer = MED_CLOSER
    else:
        closer = CLOSERS[i % len(CLOSERS)]
    return f"{text} {closer}"


def build(corpus: Path, persona: str, seed: int) -> tuple[list[dict], list[dict]]:
    """Returns (answer rows for SFT, in-scope eval rows)."""
    docs = {p.name: p.read_text(encoding="utf-8") for p in sorted((corpus / "docs").glob("*.md"))}
    idf = background_idf(corpus.parent)
    train = read_jsonl(corpus / "qa_train.jsonl")
    dev = read_jsonl(corpus / "qa_dev.jsonl")
    dev_q = {norm(d["question"]) for d in dev}
    dev_answers = {norm(d["answer"])[:200] for d in dev}

    rows: list[dict] = []
    seen_q: set[str] = set()

    def add(question: str, qtype: str, answer: str, source: str) -> None:
        if norm(question) in dev_q or norm(question) in seen_q:
            return
        doc = docs[source.split("/", 1)[1]]
        text, items = condense(question, qtype, answer)
        if len(text.split()) < 8:
            return
        reply = reply_for(question, text, len(rows))
        try:
            facts = pick_facts(text, doc, question, preferred=items, idf=idf, k=3)
        except ValueError:
            return
        seen_q.add(norm(question))
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": persona},
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": reply},
                ],
                "source": source,
                "facts": facts,
                "kind": "answer",
            }
        )

    for item in train:
        add(item["question"], item["qtype"], item["answer"], item["source"])
    # Sub-questions inside the training answers ("Why take care of your diabetes?") make more
    # natural questions; answers of dev items are left alone so evaluation stays unseen.
    templates = [
        "What should I know about {h}?",
        "Can you explain {h}?",
        "What do the pages say about {h}?",
    ]
    mined = 0
    for item in train:
        if norm(item["answer"])[:200] in dev_answers:
            continue
        for heading, sents, _ in blocks(item["answer"]):
            if not heading or len(rows) >= MAX_ANSWERS:
                continue
            if heading.endswith("?"):
                if len(heading.split()) < 3:
                    continue
                q = heading
            else:
                h = " ".join(w if w.isupper() else w.lower() for w in heading.split())
                if len(h.split()) <= 2 and "diabet" not in h:
                    h += " and diabetes"
                q = templates[mined % len(templates)].format(h=h)
            before = len(rows)
            add(q, "", " ".join(sents), item["source"])
            mined += len(rows) - before

    evals = []
    curated = load_curated("diabetes")
    asked: set[str] = set()
    for item in dev:
        # The corpus asks "What is Hypoglycemia?" twice (two sources); an eval set must not.
        if norm(item["question"]) in asked:
            continue
        asked.add(norm(item["question"]))
        doc = docs[item["source"].split("/", 1)[1]]
        must = curated.get((norm(item["question"]), item["source"]))
        text, items = condense(
            item["question"], item["qtype"], item["answer"], max_words=80, must=must
        )
        facts = must or pick_facts(text, doc, item["question"], preferred=items, idf=idf, k=3)
        evals.append(
            {
                "question": item["question"],
                "answer": text,
                "source": item["source"],
                "facts": facts,
                "out_of_scope": False,
            }
        )
    return rows, evals
