"""Text helpers shared by the pack builders: normalising, sentence picking, fact extraction."""

from __future__ import annotations

import json
import re
from pathlib import Path

STOP = set(
    """a an the and or but if of to in on at by for with from as is are was were be been being
    it its this that these those there their they them he she his her you your yours we our us i me
    my do does did done can could should would may might must will shall not no nor so than then too
    very just also about into over under after before between through during without within what
    which who whom whose when where why how all any both each few more most other some such only own
    same has have had having get gets got make makes made use used using one two per up down out off
    again further once here more many much like even still ever every""".split()  # noqa: SIM905
)
# Contractions that lost their apostrophe in the MedQuAD extraction ("dont"): never a fact edge.
CONTRACTIONS = set(
    """dont doesnt didnt cant couldnt wont wouldnt shouldnt isnt arent wasnt werent havent hasnt
    hadnt youre youll youve youd theyre thats whats theres lets its""".split()  # noqa: SIM905
)
# Common words that make a phrase vague when they carry it ("greater chance", "key markers").
GENERIC = set(
    """chance key marker markers away goes go going went come comes thing things way ways lot lots
    kind kinds part parts help helps helped important good better best bad greater great less
    able likely often sometimes usually certain general officially really actually well new old
    people person someone something anything everything time times day days year years case cases
    example examples information page pages section sections number numbers level levels amount
    include includes including incorporating called known needed need needs want wants keep keeps
    take takes taking give gives given find found show shows shown see seen sure please upon until
    agree agrees continue continues begins thus""".split()  # noqa: SIM905
)

WS = re.compile(r"\s+")


def norm(text: str) -> str:
    """Lower-case with all runs of whitespace folded to one space (how facts are matched)."""
    return WS.sub(" ", text).strip().lower()


def occurs(fact: str, doc: str) -> bool:
    return bool(fact.strip()) and norm(fact) in norm(doc)


def collapse(text: str) -> str:
    return WS.sub(" ", text).strip()


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def content_words(text: str) -> set[str]:
    return {stem(w) for w in words(text) if w not in STOP and len(w) > 2}


def stem(w: str) -> str:
    for suf in ("ing", "es", "s", "ed"):
        if len(w) > 4 and w.endswith(suf):
            return w[: -len(suf)]
    return w


SENT_SPLIT = re.compile(r"(?<=[.!?])[\"”)]?\s+(?=[A-Z0-9\"“(])")


def sentences(text: str) -> list[str]:
    text = collapse(text)
    if not text:
        return []
    return [s.strip() for s in SENT_SPLIT.split(text) if s.strip()]


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def dump_jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


# --- fact extraction -------------------------------------------------------------------------

UNIT = (
    r"(?:percent|%|mg/dL|mg/dl|mmHg|mm Hg|pounds|kg|grams|g|minutes|hours|days|weeks|months|years|"
    r"year|month|day|hour|week|times|milligrams|ounces|calories|seconds|MB|GB|KiB|MiB|ms|s)"
)
NUM_PATTERNS = [
    re.compile(
        r"\b[a-z-]+ \(\d+\) (?:calendar |business |consecutive )?(?:days|months|years|weeks|hours|percent|%)",
        re.I,
    ),
    re.compile(r"\$\s?[\d,]+(?:\.\d+)?(?: (?:million|billion))?"),
    re.compile(r"\b\d[\d,.]*(?:\s?(?:to|-|or)\s?\d[\d,.]*)?\s?" + UNIT + r"\b", re.I),
    re.compile(r"\b\d[\d,.]*\s?%"),
    re.compile(r"\b(?:age|ages|aged) \d+\b", re.I),
    re.compile(r"\b\d{2,}[\d,.]*\b"),
]


def number_facts(text: str) -> list[str]:
    found: list[str] = []
    for pat in NUM_PATTERNS:
        for m in pat.finditer(text):
            s = m.group(0).strip(" ,.")
            if s and not any(norm(s) in norm(f) for f in found):
                found.append(s)
    return found


def ngram_candidates(text: str, max_n: int = 4) -> list[str]:
    """Word n-grams of a sentence that neither start nor end on a stop word."""
    toks = re.findall(r"[A-Za-z0-9][A-Za-z0-9'’/.\-]*[A-Za-z0-9]|[A-Za-z0-9]", text)
    out = []
    for n in range(max_n, 0, -1):
        for i in range(len(toks) - n + 1):
            gram = toks[i : i + n]
            if gram[0].lower() in STOP or gram[-1].lower() in STOP:
                continue
            if n == 1 and (len(gram[0]) < 7 or gram[0].lower() in STOP):
                continue
            out.append(" ".join(gram))
    return out


_MAXIDF: dict[int, float] = {}


def _rarity(w: str, idf: dict[str, float] | None) -> float:
    """How far a word is from the rarest word of the background: 0 = seen once or never,
    about 3 = in some 30 paragraphs, larger = common."""
    if not idf:
        return 1.0
    top = _MAXIDF.get(id(idf))
    if top is None:
        top = _MAXIDF[id(idf)] = max(idf.values())
    return max(0.0, top - idf.get(w.lower(), top))


def glued(tok: str, idf: dict[str, float] | None) -> bool:
    """Two words run together by the text extraction: "complicationscan", "diabetesA1C"."""
    if not idf:
        return False
    m = re.match(r"^([a-z]{4,})[A-Z0-9]", tok)
    if m and _rarity(m.group(1), idf) >= 2.5:
        return True
    t = tok.lower()
    if not t.isalpha() or len(t) < 8 or _rarity(t, idf) > 0.7:
        return False
    for i in range(3, len(t) - 1):
        a, b = t[:i], t[i:]
        if a in idf and b in idf and _rarity(a, idf) >= 2.5 and _rarity(b, idf) >= 2.5:
            return True
    return False


def acceptable(fact: str, idf: dict[str, float] | None, strict: bool = True) -> bool:
    """False for glued words, contraction edges and (strict) vague phrases of common words."""
    toks = fact.split()
    if not toks or any(glued(t.strip(",.;:()\"'"), idf) for t in toks):
        return False
    low = [t.lower().strip(",.;:()\"'") for t in toks]
    if any(
        w in CONTRACTIONS and w != "its" or w == "its" and i == len(low) - 1
        for i, w in enumerate(low)
    ):
        return False
    if (
        len(toks) == 1
        and not re.search(r"\d", fact)
        and (low[0] in GENERIC or _rarity(low[0], idf) >= 3.0)
    ):
        return False
    if not strict:
        return True
    if re.search(r"\d", fact):
        return True
    if low[0] in STOP or low[-1] in STOP or low[0] in GENERIC or low[-1] in GENERIC:
        return False
    if low[-1].endswith("ly") or (len(toks) == 1 and low[0].endswith(("ly", "ing"))):
        return False
    content = [w for w in low if w not in STOP]
    if all(w in GENERIC for w in content):
        return False
    distinctive = any(
        "-" in t or "/" in t or (t[:1].isupper() and t.lower() not in STOP) or _rarity(w, idf) < 1.6
        for t, w in zip(toks, low, strict=True)
    )
    if len(toks) == 1:
        return _rarity(low[0], idf) < 1.6 and len(low[0]) >= 6
    return distinctive


def pick_facts(
    reply_text: str,
    doc: str,
    question: str = "",
    preferred: list[str] | None = None,
    idf: dict[str, float] | None = None,
    k: int = 3,
    minimum: int = 2,
) -> list[str]:
    """2-4 short strings that occur literally in both the reply and the source document.

    Preferred strings first (given by the caller: list items, clause terms), then numbers with
    units, then the most distinctive n-grams (rare words, words the question asks about).
    """
    facts: list[str] = []
    strict = False

    def add(s: str) -> bool:
        s = collapse(s).strip(" ,.;:")
        if not s or len(s.split()) > 8 or len(s) < 3:
            return False
        if not occurs(s, reply_text) or not occurs(s, doc):
            return False
        if not acceptable(s, idf, strict=strict):
            return False
        ns = norm(s)
        for f in facts:
            nf = norm(f)
            if ns in nf or nf in ns:
                return False
        facts.append(s)
        return True

    for s in preferred or []:
        if len(facts) >= k:
            break
        add(s)
    strict = True
    for s in number_facts(reply_text):
        if len(facts) >= k:
            break
        add(s)
    if len(facts) < k:
        qwords = content_words(question)
        scored = []
        for i, gram in enumerate(ngram_candidates(reply_text, max_n=3)):
            toks = gram.split()
            ws = [w for w in words(gram) if w not in STOP]
            if not ws or any(t.lower() in STOP and t.lower() not in ("of", "and") for t in toks):
                continue
            rar = [(idf or {}).get(w, 3.0) for w in ws]
            score = max(rar) + 0.3 * sum(rar) / len(rar)
            score += 1.2 * sum(1 for w in ws if stem(w) in qwords) / len(ws)
            if len(toks) > 1 and all(
                t[:1].isupper() for t in toks if t.lower() not in ("of", "and")
            ):
                score += 1.5
            if any("-" in t or t.isupper() and len(t) > 1 for t in toks):
                score += 1.0
            if len(toks) > 1 and any(t.lower().endswith(("ing", "ed", "ly")) for t in toks):
                score -= 1.5
            if len(toks) == 1:
                score -= 1.0 if len(toks[0]) >= 9 else 3.0
            scored.append((score, -i, gram))
        scored.sort(reverse=True)
        for _, _, gram in scored:
            if len(facts) >= k:
                break
            add(gram)
        if len(facts) < minimum:
            # Too few distinctive phrases: accept plainer ones, still never glued or stop-edged.
            strict = False
            for _, _, gram in scored:
                if len(facts) >= minimum:
                    break
                toks = gram.lower().split()
                if (
                    toks[0] not in GENERIC
                    and toks[-1] not in GENERIC
                    and not toks[-1].endswith("ly")
                ):
                    add(gram)
    if len(facts) < minimum:
        raise ValueError(f"too few facts for reply: {reply_text[:120]!r} -> {facts}")
    return facts


def build_idf(texts: list[str]) -> dict[str, float]:
    import math

    df: dict[str, int] = {}
    for t in texts:
        for w in set(words(t)):
            df[w] = df.get(w, 0) + 1
    n = len(texts)
    return {w: math.log((n + 1) / (c + 0.5)) for w, c in df.items()}


def best_sentences(
    question: str, sents: list[str], n: int = 2, max_words: int = 70, bias=None
) -> list[str]:
    """The n sentences that share most content words with the question, in document order."""
    q = content_words(question)
    scored = []
    for i, s in enumerate(sents):
        ws = content_words(s)
        score = len(q & ws) + (bias(i, s) if bias else 0.0) - 0.02 * i
        nw = len(s.split())
        if nw < 5:
            score -= 2
        if nw > 60:
            score -= 1
        scored.append((score, i))
    scored.sort(key=lambda t: (-t[0], t[1]))
    chosen: list[int] = []
    total = 0
    for _, i in scored:
        nw = len(sents[i].split())
        if chosen and total + nw > max_words:
            continue
        chosen.append(i)
        total += nw
        if len(chosen) >= n:
            break
    return [sents[i] for i in sorted(chosen)]


_BACKGROUND: dict[str, float] = {}


def background_idf(corpora: Path) -> dict[str, float]:
    """Word rarity over the paragraphs of all four corpora: general English (common in the
    contracts) scores low, domain terms score high."""
    key = str(corpora)
    if key not in _BACKGROUND:
        paras = []
        for p in sorted(corpora.glob("*/docs/**/*")):
            if p.is_file():
                paras.extend(x for x in p.read_text(encoding="utf-8").split("\n\n") if x.strip())
        _BACKGROUND[key] = build_idf(paras)
    return _BACKGROUND[key]


# --- curated evaluation facts ----------------------------------------------------------------

CURATED_PATH = Path(__file__).with_name("curated_facts.json")


def load_curated(pack: str) -> dict[tuple[str, str], list[str]]:
    """Hand-picked eval facts for a pack, keyed by (normalised question, source path).

    The build prefers these over extracted facts and shapes the reference answer so that it
    contains them; a curated fact missing from the source document fails the build."""
    if not CURATED_PATH.exists():
        return {}
    data = json.loads(CURATED_PATH.read_text(encoding="utf-8"))
    return {(norm(e["question"]), e["source"]): list(e["facts"]) for e in data.get(pack, [])}


def covering_span(parts: list[str], facts: list[str], limit: int) -> tuple[int, int] | None:
    """Indices [i, j) of the shortest run of parts whose joined text holds every fact it can,
    grown toward `limit` words; None when no part holds a fact."""
    joined = norm(" ".join(parts))
    wanted = [norm(f) for f in facts if norm(f) in joined]
    if not wanted:
        return None
    best = None
    for i in range(len(parts)):
        for j in range(i + 1, len(parts) + 1):
            text = norm(" ".join(parts[i:j]))
            if all(f in text for f in wanted):
                n = len(text.split())
                if best is None or n < best[0]:
                    best = (n, i, j)
                break
    _, i, j = best
    total = lambda a, b: len(" ".join(parts[a:b]).split())  # noqa: E731
    while j < len(parts) and total(i, j + 1) <= limit:
        j += 1
    while i > 0 and total(i - 1, j) <= limit:
        i -= 1
    return i, j
