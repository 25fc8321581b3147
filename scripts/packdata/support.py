"""Support pack (Syncthing docs): FAQ answers and doc sections as short, step-by-step replies."""

from __future__ import annotations

import re
from pathlib import Path

from assistant.packs.style import TASK_QUESTION

from .common import (
    background_idf,
    collapse,
    load_curated,
    norm,
    occurs,
    pick_facts,
    read_jsonl,
    sentences,
)

SKIP_PAGES = {
    "users__contrib.md",
    "users__faq-parts__general.md",
    "users__faq-parts__troubleshooting.md",
    "users__faq-parts__usage.md",
}
SKIP_HEADINGS = {
    "synopsis",
    "see also",
    "options",
    "description",
    "overview",
    "example",
    "examples",
    "metrics",
    "usage",
    "caveats",
}
IMPERATIVE = re.compile(
    r"^(Click|Set|Use|Run|Open|Add|Go|Select|Change|Enter|Edit|Create|Make|Check|Stop|Start|Restart|Remove|Delete|Install|Download|Copy|Move|Rename|Ensure|Enable|Disable|Put|Type|Press|Choose|Navigate|Look|Try|Configure|Follow|Wait|Increase|Reset)\b"
)
TEMPLATES = [
    "What does the documentation say about {h} ({page})?",
    "How does {h} work in Syncthing ({page})?",
    "Can you explain {h} in Syncthing ({page})?",
]
# A section written as steps is asked as a task, so that the reply's numbered steps follow a
# question where the user has to do something, as the persona says.
STEPS_TEMPLATE = "What are the steps for {h} ({page})?"
# Each training step section is asked a second way too: the same steps after differently
# worded tasks teach "a task gets steps" better than repeating one wording (style_repeat).
STEPS_PARAPHRASE = "How do I go about {h} ({page})?"
# The eval's dev questions hold one with steps: every third step section is held out of
# training as an eval question, so the numbered-steps style is measured on unseen tasks.
HOLD_OUT_EVERY = 3


def is_paraphrase(question: str) -> bool:
    """A second wording of a training question (kept out of other packs' off-topic pools)."""
    return question.startswith(STEPS_PARAPHRASE.split("{", 1)[0])


def clean(text: str) -> str:
    text = text.replace("**", "").replace("`", "")
    text = re.sub(r"\s?\[\d+\]_?", "", text)
    text = re.sub(r"\*(\S[^*]*?)\*", r"\1", text)
    return text


def _plain_paragraphs(body: str) -> list[str]:
    out = []
    for para in re.split(r"\n\s*\n", body):
        p = para.strip()
        if (
            not p
            or p.startswith(("```", "    ", "|", "..", "#", "<", "0 "))
            or re.match(r"^[\d.]+$", p)
            or p.count('="') > 1
        ):
            continue
        out.append(p)
    return out


def steps_from(body: str) -> list[str]:
    steps = re.findall(
        r"^\s*(?:\d+\.|#\.)\s+(.+(?:\n(?!\s*(?:\d+\.|#\.|-)\s)\s{2,}.+)*)", body, re.M
    )
    out = [collapse(re.sub(r"\s?\|[A-Z][^|\n]{2,80}\|", "", clean(s))) for s in steps]
    return [s for s in out if not (s.endswith(":") and len(s.split()) <= 3)]


def section_reply(body: str, max_words: int = 60) -> tuple[str, str]:
    """(reply, fact-carrying text) from a doc section: numbered steps when it has them."""
    steps = steps_from(body)
    intro = []
    for p in _plain_paragraphs(body):
        if re.match(r"^\s*(\d+\.|#\.|-)\s", p):
            break
        intro.extend(sentences(clean(p)))
    if len(steps) >= 2:
        steps = [
            s if len(s.split()) <= 30 else " ".join(s.split()[:30]).rstrip(",;") + " ..."
            for s in steps[:6]
        ]
        lead = intro[0] if intro and len(intro[0].split()) <= 30 else ""
        lines = ([lead] if lead else []) + [f"{i}. {s}" for i, s in enumerate(steps, 1)]
        text = "\n".join(lines)
        return text, text
    chosen, total = [], 0
    for s in intro:
        nw = len(s.split())
        if chosen and total + nw > max_words:
            break
        if nw > max_words:
            continue
        chosen.append(s)
        total += nw
        if len(chosen) >= 3:
            break
    chosen = [c for c in chosen if "::" not in c and not c.endswith(":")]
    if len(chosen) >= 2 and sum(bool(IMPERATIVE.match(c)) for c in chosen) >= 1:
        lead = [] if IMPERATIVE.match(chosen[0]) else [chosen[0]]
        steps = chosen[len(lead) :]
        if len(steps) >= 2 or lead:
            text = "\n".join(lead + [f"{i}. {c}" for i, c in enumerate(steps, 1)])
            return text, text
    text = " ".join(chosen)
    return text, text


# The persona answers in numbered steps "when the user has to do something", but the FAQ
# answers to "How do I ...?" are prose: their sentences become the steps. The eval's style
# check asks for steps on the same questions.
TASK = TASK_QUESTION


def as_steps(reply: str) -> str:
    if re.search(r"^1\. ", reply, re.M):
        return reply
    parts = sentences(reply)
    if len(parts) < 2:
        return reply
    return "\n".join(f"{i}. {part}" for i, part in enumerate(parts, 1))


def steps_first(reply: str) -> str:
    """A training reply with numbered steps starts at step 1: its lead line is left out.
    With a lead line first, an adapter trained on one seed learned to stop after it ("The
    following are the steps ... [1].") on 4 of 9 task questions (docs/eval/adapters-seeds.md)."""
    lines = reply.split("\n")
    first_step = next((i for i, line in enumerate(lines) if line.startswith("1. ")), 0)
    return "\n".join(lines[first_step:])


def sections(doc: str) -> list[tuple[str, str]]:
    parts = re.split(r"^(#{2,4} .+)$", doc, flags=re.M)
    out = []
    for i in range(1, len(parts) - 1, 2):
        out.append((parts[i].lstrip("#").strip(), parts[i + 1]))
    return out


def build(corpus: Path, persona: str, seed: int) -> tuple[list[dict], list[dict]]:
    idf = background_idf(corpus.parent)
    docs = {p.name: p.read_text(encoding="utf-8") for p in sorted((corpus / "docs").glob("*.md"))}
    train = read_jsonl(corpus / "qa_train.jsonl")
    dev = read_jsonl(corpus / "qa_dev.jsonl")
    dev_q = {norm(d["question"]) for d in dev}
    dev_answers = [norm(clean(d["answer"]))[:150] for d in dev]
    rows = []

    def add(q, reply, fact_text, src):
        reply, fact_text = steps_first(reply), steps_first(fact_text)
        doc = docs[src.split("/", 1)[1]]
        try:
            facts = pick_facts(fact_text, doc, q, idf=idf, k=3)
        except ValueError:
            return
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": persona},
                    {"role": "user", "content": q},
                    {"role": "assistant", "content": reply},
                ],
                "source": src,
                "facts": facts,
                "kind": "answer",
            }
        )

    for item in train:
        reply, text = section_reply(item["answer"])
        if TASK.search(item["question"]):
            reply = text = as_steps(reply)
        if len(text.split()) >= 6:
            add(item["question"], reply, text, item["source"])

    n = steps_seen = 0
    held_out: list[dict] = []
    for name, doc in docs.items():
        if name in SKIP_PAGES:
            continue
        title = doc.split("\n# ", 1)[1].split("\n", 1)[0].strip() if "\n# " in doc else name
        for heading, body in sections(doc):
            h = clean(heading)
            if h.lower() in SKIP_HEADINGS or norm(clean(body))[:150] in dev_answers or len(h) > 60:
                continue
            reply, text = section_reply(body)
            if len(text.split()) < 12:
                continue
            topic = h[0].lower() + h[1:] if h[1:2].islower() else h
            has_steps = bool(re.search(r"^1\. ", reply, re.M))
            template = STEPS_TEMPLATE if has_steps else TEMPLATES[n % len(TEMPLATES)]
            q = template.format(h=topic, page=title)
            if norm(q) in dev_q:
                continue
            if has_steps:
                steps_seen += 1
                if steps_seen % HOLD_OUT_EVERY == 0:
                    held_out.append({"question": q, "answer": text, "source": "docs/" + name})
                    continue
                add(STEPS_PARAPHRASE.format(h=topic, page=title), reply, text, "docs/" + name)
            else:
                n += 1
            add(q, reply, text, "docs/" + name)

    evals = []
    curated = load_curated("support")
    for item in dev:
        reply, text = section_reply(item["answer"], max_words=80)
        doc = docs[item["source"].split("/", 1)[1]]
        must = curated.get((norm(item["question"]), item["source"]))
        if must:
            # A curated fact outside the condensed reply: add the answer sentence that holds it.
            extra = []
            for f in must:
                if not occurs(f, text) and not any(occurs(f, e) for e in extra):
                    hit = next(
                        (
                            s
                            for p in _plain_paragraphs(item["answer"])
                            for s in sentences(clean(p))
                            if occurs(f, s)
                        ),
                        None,
                    )
                    if hit:
                        extra.append(hit)
            text = " ".join([text, *extra]) if extra else text
        facts = must or pick_facts(text, doc, item["question"], idf=idf, k=3)
        evals.append(
            {
                "question": item["question"],
                "answer": text,
                "source": item["source"],
                "facts": facts,
                "out_of_scope": False,
            }
        )
    for item in held_out:  # their facts are picked by hand, like the dev questions'
        facts = curated.get((norm(item["question"]), item["source"]))
        if not facts:
            raise SystemExit(f"support: no curated facts for {item['question']!r}")
        evals.append({**item, "facts": facts, "out_of_scope": False})
    return rows, evals
