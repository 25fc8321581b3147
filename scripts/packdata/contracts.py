"""Contracts pack: CUAD clause answers turned into short clause reviews for a small business."""

from __future__ import annotations

import random
import re
from pathlib import Path

from .common import (
    background_idf,
    collapse,
    content_words,
    covering_span,
    load_curated,
    norm,
    occurs,
    pick_facts,
    read_jsonl,
    sentences,
)

NOT_ADVICE = "This is general information, not legal advice."

# category -> (what it means, risk, ask for); {short} is CUAD's normalised answer.
REVIEW = {
    "Governing Law": (
        "{short} law decides how the contract is read and enforced.",
        "if your business is elsewhere, a dispute may have to be argued under unfamiliar law.",
        "your own state's law, or a neutral one both sides accept.",
    ),
    "Renewal Term": (
        "after the first term the contract renews: {short}.",
        "an automatic renewal can lock you in if you miss the notice window.",
        "renewal only by written agreement, or an easy way to opt out.",
    ),
    "Notice Period To Terminate Renewal": (
        "to stop the renewal you must give notice in time: {short}.",
        "miss the deadline and you are bound for another term.",
        "a short notice period and a reminder before the deadline.",
    ),
    "Expiration Date": (
        "the initial term ends: {short}.",
        "a long or perpetual term is hard to exit.",
        "a fixed term with a clear end and a right to leave early.",
    ),
    "Effective Date": (
        "the contract takes effect: {short}.",
        "obligations may start before you are ready.",
        "an effective date that matches when work really starts.",
    ),
    "Agreement Date": ("the contract is dated {short}.", "", ""),
    "Anti-Assignment": (
        "a party cannot hand the contract to someone else without consent or notice.",
        "you may be unable to sell your business or move the contract to a new company.",
        "an exception for affiliates and for a sale of the business.",
    ),
    "License Grant": (
        "one party lets the other use its rights or materials on stated terms.",
        "use outside the stated scope can be a breach.",
        "a license wide enough for how you actually use it.",
    ),
    "Non-Transferable License": (
        "the license cannot be passed on to anyone else.",
        "the license may not follow your business if you reorganise or sell.",
        "permission to transfer to affiliates or a buyer.",
    ),
    "Cap On Liability": (
        "the amount or kind of damages a party can recover is limited.",
        "if the other side causes a big loss, you may recover only a small part of it.",
        "a cap that is mutual and high enough, with carve-outs for confidentiality and indemnities.",
    ),
    "Uncapped Liability": (
        "for some claims a party's liability has no limit.",
        "an uncapped promise can expose your business to losses larger than the contract is worth.",
        "a cap that covers you too, or a narrow list of uncapped claims.",
    ),
    "Audit Rights": (
        "one party may inspect the other's books, records or facilities.",
        "audits cost time and can reveal more than you expect.",
        "reasonable notice, business hours, a limit on how often, and who pays.",
    ),
    "Post-Termination Services": (
        "some duties continue after the contract ends.",
        "you may owe work, payments or cooperation after the money stops.",
        "a clear list of surviving duties and an end date for them.",
    ),
    "Exclusivity": (
        "a party must deal only with the other for certain goods, services or areas.",
        "exclusivity can block you from other customers or suppliers.",
        "a short exclusive period tied to minimum performance.",
    ),
    "Termination For Convenience": (
        "a party may end the contract without cause, by giving notice.",
        "the other side can walk away even when you have done nothing wrong.",
        "the same right for you, a reasonable notice period, and payment for work done.",
    ),
    "Insurance": (
        "a party must carry insurance of stated types and amounts.",
        "the required cover can be expensive for a small business.",
        "amounts that match your real risk and what you already carry.",
    ),
    "Revenue/Profit Sharing": (
        "one party shares revenue or profit with the other.",
        "unclear definitions of revenue lead to payment disputes.",
        "clear definitions, reporting dates and a right to check the numbers.",
    ),
    "Minimum Commitment": (
        "a party must buy or sell at least a stated amount.",
        "you may have to pay for minimums you cannot use.",
        "minimums that match your forecast, and relief if demand drops.",
    ),
    "Covenant Not To Sue": (
        "a party promises not to bring certain claims or challenges.",
        "you may give up the right to challenge the other side's rights.",
        "a narrow promise limited to this contract.",
    ),
    "Ip Ownership Assignment": (
        "ownership of intellectual property created under the contract moves to a party.",
        "you may lose rights to work you paid for or created.",
        "ownership of what you pay for, or a licence back to what you create.",
    ),
    "Non-Compete": (
        "a party may not compete in a stated business, area or period.",
        "a broad non-compete can shut you out of your own market.",
        "a narrow scope, a short period and a limited area.",
    ),
    "Warranty Duration": (
        "a warranty lasts for a stated period.",
        "defects found after the period are your cost.",
        "a warranty period long enough to find defects in real use.",
    ),
    "Change Of Control": (
        "a change in who owns or controls a party gives the other side rights to consent, be told or terminate.",
        "selling your company may let the other side end the contract.",
        "no termination right on a sale, or only notice.",
    ),
    "Competitive Restriction Exception": (
        "there are carve-outs from the non-compete, exclusivity or no-solicit limits.",
        "the exceptions may be narrower than they look.",
        "exceptions that cover the work you already do.",
    ),
    "Volume Restriction": (
        "use or sales above a stated level need more fees or consent.",
        "growth can trigger extra fees.",
        "thresholds well above your expected volume.",
    ),
    "Rofr/Rofo/Rofn": (
        "a party gets a right of first refusal, offer or negotiation.",
        "it can slow down or scare off other buyers or partners.",
        "short response deadlines and a narrow scope.",
    ),
    "Non-Disparagement": (
        "a party may not speak badly of the other.",
        "a one-sided clause can limit honest complaints.",
        "a mutual clause with an exception for legal duties.",
    ),
    "Liquidated Damages": (
        "a fixed sum or fee is owed on breach or early termination.",
        "the fixed amount may be far more than your actual harm.",
        "an amount that is a fair estimate of real loss.",
    ),
    "Irrevocable Or Perpetual License": (
        "a license cannot be withdrawn or lasts forever.",
        "the licensor cannot take the rights back, even later.",
        "limits on what a perpetual license covers.",
    ),
    "No-Solicit Of Employees": (
        "a party may not solicit or hire the other's staff.",
        "it can limit your hiring for a period.",
        "a short period and an exception for general job adverts.",
    ),
    "No-Solicit Of Customers": (
        "a party may not solicit the other's customers or partners.",
        "it can block work with customers you already know.",
        "an exception for existing customers and a short period.",
    ),
    "Affiliate License-Licensee": (
        "the license extends to the licensee's affiliates.",
        "affiliates may use the rights on your terms.",
        "a clear list of which affiliates are covered.",
    ),
    "Affiliate License-Licensor": (
        "the license covers rights held by the licensor's affiliates.",
        "rights outside the list may stay out of reach.",
        "coverage for all affiliate rights you need.",
    ),
    "Joint Ip Ownership": (
        "the parties own some intellectual property together.",
        "joint owners may be unable to use or license it without each other.",
        "clear rules on who can use, license and enforce it.",
    ),
    "Third Party Beneficiary": (
        "someone who did not sign may enforce the contract.",
        "more people may have claims against you.",
        "a clause that excludes third-party rights.",
    ),
    "Unlimited/All-You-Can-Eat-License": (
        "a license allows unlimited use for a set fee.",
        "the scope of 'unlimited' may still be limited elsewhere.",
        "a clear definition of the unlimited scope.",
    ),
    "Most Favored Nation": (
        "a buyer gets any better terms offered to others.",
        "it limits the pricing you can offer others.",
        "a narrow comparison and a reporting process.",
    ),
    "Source Code Escrow": (
        "source code is deposited with a third party for release in stated events.",
        "release events may be too narrow to help.",
        "clear release events and regular deposits.",
    ),
}
KEYWORDS = {
    "Governing Law": "governed laws law state",
    "Anti-Assignment": "assign assignment consent transfer",
    "License Grant": "grants license right",
    "Non-Transferable License": "non-transferable transfer license",
    "Cap On Liability": "liable liability damages exceed event",
    "Uncapped Liability": "liable liability damages unlimited",
    "Audit Rights": "audit records books inspect",
    "Post-Termination Services": "termination expiration survive after",
    "Exclusivity": "exclusive exclusively solely",
    "Termination For Convenience": "terminate notice without cause convenience",
    "Insurance": "insurance insured coverage",
    "Revenue/Profit Sharing": "revenue profit percent royalty",
    "Minimum Commitment": "minimum least purchase",
    "Renewal Term": "renew renewal successive automatically",
    "Notice Period To Terminate Renewal": "notice days prior renew",
    "Expiration Date": "term expire years",
    "Effective Date": "effective date",
    "Covenant Not To Sue": "contest challenge claim sue",
    "Ip Ownership Assignment": "own ownership assign property",
    "Non-Compete": "compete competing competitive",
    "Warranty Duration": "warrant warranty days months",
    "Change Of Control": "control merger acquisition",
}
PHRASES = re.compile(
    r"\b(prior written consent|written consent|non-exclusive|non-transferable|exclusive|royalty-free|perpetual|irrevocable|"
    r"without cause|for convenience|consequential damages|incidental damages|indirect|audit|governed by|laws of the State of [A-Z][a-z]+(?: [A-Z][a-z]+)?|"
    r"laws of [A-Z][a-z]+(?: [A-Z][a-z]+)?|right of first refusal|most favored|liquidated damages|insurance|"
    r"automatically renew|successive|terminate|in no event|shall not compete|solicit|jointly own|"
    r"sole and exclusive|assign|change of control|merger)\b",
    re.I,
)
RISKY = {
    "Cap On Liability",
    "Uncapped Liability",
    "Non-Compete",
    "Ip Ownership Assignment",
    "Liquidated Damages",
    "Covenant Not To Sue",
    "Exclusivity",
    "Change Of Control",
}


def _shorten(s: str, limit: int = 55) -> str:
    s = collapse(s)
    if len(s.split()) <= limit:
        return s
    parts = re.split(r"(?<=[;,])\s", s)
    out = ""
    for part in parts:
        if out and len((out + " " + part).split()) > limit:
            break
        out = (out + " " + part).strip()
    return out.rstrip(",;:") + " ..."


def best_quote(
    category: str, clauses: list[str], question: str, must: list[str] | None = None
) -> str:
    """The clause sentence that best matches the category; with `must` (curated facts), the
    sentence holding most of them, cut to a window of whole clause parts that keeps them."""
    pieces = []
    for c in clauses:
        for part in c.split("<omitted>"):
            pieces.extend(sentences(part))
    kw = content_words(KEYWORDS.get(category, category) + " " + question)
    best, best_score = "", -1e9
    for i, p in enumerate(pieces):
        nw = len(p.split())
        score = (
            len(kw & content_words(p)) - 0.01 * i - (0.8 if nw > 60 else 0) - (2 if nw < 4 else 0)
        )
        score += 100 * sum(occurs(f, p) for f in must or [])
        if score > best_score:
            best, best_score = p, score
    if (
        must
        and any(occurs(f, best) for f in must)
        and not all(occurs(f, _shorten(best)) for f in must if occurs(f, best))
    ):
        parts = re.split(r"(?<=[;,])\s", collapse(best))
        i, j = covering_span(parts, must, 55)
        text = " ".join(parts[i:j])
        return ("... " if i else "") + text.rstrip(",;:") + (" ..." if j < len(parts) else "")
    return _shorten(best)


def _names(clauses: list[str]) -> list[str]:
    out = []
    for c in clauses:
        c = collapse(c)
        if 1 <= len(c.split()) <= 8 and c[:1].isupper() and norm(c) not in {norm(x) for x in out}:
            out.append(c)
    return out[:4]


def review(item: dict, must: list[str] | None = None) -> tuple[str, str, list[str]]:
    """(reply, reference answer, preferred facts) for one CUAD pair."""
    cat = item["category"]
    short = collapse(item.get("short_answer") or "")
    clauses = item["clauses"]
    if cat == "Parties":
        names = _names(clauses)
        if len(names) < 2:
            return "", "", []
        body = "; ".join(names)
        return f"The contract names these parties: {body}.", body, names
    quote = best_quote(cat, clauses, item["question"], must)
    if not quote:
        return "", "", []
    if cat in ("Agreement Date", "Effective Date", "Expiration Date") and len(quote.split()) <= 6:
        label = {
            "Agreement Date": "is dated",
            "Effective Date": "takes effect on",
            "Expiration Date": "runs until",
        }[cat]
        q = quote.rstrip(".")
        return f"The agreement {label} {q}.", q, [q]
    meaning, risk, ask = REVIEW.get(cat, ("the clause covers this point.", "", ""))
    use_short = short and short.lower() not in ("yes", "no") and len(short.split()) <= 8
    meaning = meaning.format(short=short if use_short else "as quoted")
    meaning = meaning[0].upper() + meaning[1:]
    parts = [f'What it says: "{quote}"', f"What it means: {meaning}"]
    if risk:
        parts.append(f"Risk: {risk[0].upper() + risk[1:]}")
    if ask:
        parts.append(f"Ask for: {ask[0].upper() + ask[1:]}")
    if cat in RISKY:
        parts.append(NOT_ADVICE)
    preferred = [short] if use_short else []
    preferred += [m.group(0) for m in PHRASES.finditer(quote)]
    return " ".join(parts), quote, preferred


def _diverse(items: list[dict], n: int, seed: int, per_cat: int) -> list[dict]:
    rng = random.Random(seed)
    by_cat: dict[str, list[dict]] = {}
    for it in items:
        by_cat.setdefault(it["category"], []).append(it)
    for v in by_cat.values():
        rng.shuffle(v)
    out: list[dict] = []
    rnd = 0
    while len(out) < n and rnd < per_cat:
        for cat in sorted(by_cat):
            if rnd < len(by_cat[cat]) and len(out) < n:
                out.append(by_cat[cat][rnd])
        rnd += 1
    return out


def category_rows(corpus: Path, persona: str, idf) -> list[dict]:
    """'What is a X clause?' answered from the CUAD category guide."""
    src = "docs/cuad_clause_categories.md"
    doc = (corpus / src).read_text(encoding="utf-8")
    rows = []
    for block in doc.split("\n## ")[1:]:
        title, _, body = block.partition("\n")
        desc = collapse(body.split("Answer format:")[0])
        if title.strip() in ("Document Name",) or len(desc.split()) < 5:
            continue
        t = title.strip()
        cat_key = next((k for k in REVIEW if k.lower() == t.lower()), None)
        art = "an" if t[:1].lower() in "aeiou" else "a"
        q = (
            f"What does {art} {t.lower()} clause cover in a contract?"
            if cat_key not in ("Parties", "Agreement Date", "Effective Date", "Expiration Date")
            else f"What does the {t.lower()} of a contract mean?"
        )
        reply = desc if desc.endswith((".", "?")) else desc + "."
        reply = (
            f"In contract review, the {t} category asks: {reply}"
            if reply.endswith("?")
            else f"In contract review, {t} means: {reply}"
        )
        if cat_key and REVIEW[cat_key][1]:
            reply += f" Risk: {REVIEW[cat_key][1][0].upper() + REVIEW[cat_key][1][1:]}"
        try:
            facts = pick_facts(desc, doc, q, preferred=[t], idf=idf, k=3)
        except ValueError:
            continue
        rows.append({"question": q, "reply": reply, "source": src, "facts": facts})
    return rows


def nda_rows(corpus: Path, idf) -> list[dict]:
    src = "docs/standard_forms/commonpaper_Mutual-NDA.md"
    doc = (corpus / src).read_text(encoding="utf-8")
    rows = []
    for m in re.finditer(r"^\d+\. \*\*(.+?)\*\*\.\s*(.+)$", doc, re.M):
        title, body = m.group(1), m.group(2).replace("**", "")
        sents = sentences(body)[:2]
        text = " ".join(_shorten(s, 45) for s in sents)
        q = f"What does the Common Paper Mutual NDA say about {title.lower()}?"
        reply = f"What it says: {text} What it means: this is the standard language for {title.lower()}, a fair baseline to compare an NDA against."
        try:
            facts = pick_facts(
                text, doc, q, preferred=[m2.group(0) for m2 in PHRASES.finditer(text)], idf=idf, k=3
            )
        except ValueError:
            continue
        rows.append({"question": q, "reply": reply, "source": src, "facts": facts})
    return rows


def build(corpus: Path, persona: str, seed: int) -> tuple[list[dict], list[dict]]:
    idf = background_idf(corpus.parent)
    train = read_jsonl(corpus / "qa_train.jsonl")
    dev = read_jsonl(corpus / "qa_dev.jsonl")
    docs: dict[str, str] = {}

    def doc_of(src: str) -> str:
        if src not in docs:
            docs[src] = (corpus / src).read_text(encoding="utf-8")
        return docs[src]

    rows: list[dict] = []
    for item in _diverse(train, 150, seed, per_cat=8):
        reply, ref, preferred = review(item)
        if not reply:
            continue
        doc = doc_of(item["source"])
        minimum = (
            1
            if item["category"]
            in ("Agreement Date", "Effective Date", "Expiration Date", "Parties")
            else 2
        )
        try:
            facts = pick_facts(
                ref, doc, item["question"], preferred=preferred, idf=idf, k=3, minimum=minimum
            )
        except ValueError:
            continue
        rows.append(
            {"question": item["question"], "reply": reply, "source": item["source"], "facts": facts}
        )
    rows += category_rows(corpus, persona, idf)
    rows += nda_rows(corpus, idf)

    out = [
        {
            "messages": [
                {"role": "system", "content": persona},
                {"role": "user", "content": r["question"]},
                {"role": "assistant", "content": r["reply"]},
            ],
            "source": r["source"],
            "facts": r["facts"],
            "kind": "answer",
        }
        for r in rows
    ]
    evals = []
    curated = load_curated("contracts")
    for item in _diverse(dev, 80, seed + 1, per_cat=6):
        if len(evals) >= 60:
            break
        must = curated.get((norm(item["question"]), item["source"]))
        reply, ref, preferred = review(item, must)
        if not reply:
            continue
        minimum = (
            1
            if item["category"]
            in ("Agreement Date", "Effective Date", "Expiration Date", "Parties")
            else 2
        )
        try:
            facts = must or pick_facts(
                ref,
                doc_of(item["source"]),
                item["question"],
                preferred=preferred,
                idf=idf,
                k=3,
                minimum=minimum,
            )
        except ValueError:
            continue
        short = collapse(item.get("short_answer") or "")
        answer = (
            ref
            if item["category"] in ("Parties",)
            else (f"{short}. {ref}" if short and short != ref else ref)
        )
        evals.append(
            {
                "question": item["question"],
                "answer": answer,
                "source": item["source"],
                "facts": facts,
                "out_of_scope": False,
            }
        )
    return out, evals
