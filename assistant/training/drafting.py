"""Drafting a pack's training and evaluation lines from its own documents (issue [6/7]), so a
folder of manuals becomes an expert without a hand-written line.

Rules, not a model: a model small enough to run here writes questions that its own answers
then flatter. Each document's sections give questions a user would ask (the heading as a
question, "What is X?" for a definition, the steps under a task heading, a warning), answered
with the section's own sentences and citing them; each line's `facts` are spans copied verbatim
from its answer (figures with units, `code`, names, else a run of content words). Off-topic
and near-topic questions the documents do not cover are answered with a decline. Every line is
marked `"origin": "drafted"` with a hash of what was drafted, so a person can review it and a
later draft keeps any line a person wrote or edited.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from assistant.knowledge.loaders import LoadedDocument
from assistant.text import sentences

MIN_WORDS = 6
MAX_ANSWER_WORDS = 80
FACTS_PER_LINE = 3

# a figure, not part of a dotted version ("v16.7.0") or a longer number
_FIGURE = re.compile(
    r"(?<![\w.])\d+(?:[.,]\d+)?(?![.\d])(?:\s?(?:%|°C|°F|mm|cm|km|kg|ms|min|minutes?|hours?|days?|weeks?|"
    r"months?|years?|seconds?|[KMGT]i?B|m|g|s|h)\b)?"
)
_CODE = re.compile(r"`([^`\n]{2,60})`")
_NAME = re.compile(r"(?<=[a-z,;:] )[A-Z][\w-]+(?: [A-Z][\w-]+)+")
_DEFINITION = re.compile(
    r"^(?P<term>[A-Z][\w'/-]*(?: [\w'/-]+){0,5}?),? (?:is|are|means|refers to) (?:an?|the|one) "
)
_WARNING = re.compile(r"^\W*(?:warning|caution|important|never|do not|don't|avoid)\b", re.I)
_STEP = re.compile(r"^\s*1[.)]\s", re.M)
_STOP = frozenset(
    ("a", "an", "the", "and", "or", "of", "to", "in", "on", "for", "with", "at", "by", "from")
    + ("is", "are", "was", "were", "be", "been", "it", "its", "this", "that", "these", "those")
    + ("as", "so", "than", "then", "if", "you", "your", "can", "will", "should", "may", "must")
    + ("not", "no")
)
_DETERMINERS = frozenset(("the", "a", "an", "your", "my", "this", "these", "its", "their"))
# a heading's underline in text formats ("-----", "~~~~", escaped "\\~\\~" after conversion)
_UNDERLINE = re.compile(r"(?:\\?[-=~^*#`+])+")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_FRAGMENT = re.compile(r"^(?:and|or|but|then|so|which|that|with|for)\b")
_WORD = re.compile(r"[A-Za-z][\w'-]+")

OFF_TOPIC = (
    "What is the capital of Australia?",
    "Can you recommend a good pizza recipe?",
    "Who won the football World Cup in 2014?",
    "What will the weather be like tomorrow?",
    "How do I knit a scarf?",
    "What is a good name for a goldfish?",
    "How far is the Moon from the Earth?",
    "Which programming language should I learn first?",
)
# Near the documents' topic but not in them: asked of the pack's title, kept only when none of
# the words that would answer it occurs anywhere in the documents.
NEAR_TOPIC = (
    ("How much does {title} cost?", ("price", "cost", "costs", "$", "€", "£")),
    ("Who wrote {title}, and when?", ("author", "written by", "wrote")),
    ("Is there a phone number for {title} support?", ("phone", "telephone", "call us")),
)


@dataclass(frozen=True)
class Pair:
    """A drafted question with its answer from one document."""

    question: str
    answer: str
    source: str  # the document's path in the pack, e.g. docs/guide.md
    facts: tuple[str, ...]
    kind: str  # heading, definition, steps, warning, off_topic, near_topic

    @property
    def declines(self) -> bool:
        return self.kind in ("off_topic", "near_topic")


@dataclass
class Drafted:
    """What a draft wrote: the pairs of each kind, and the documents that gave none."""

    pairs: list[Pair] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _cut(text: str) -> str:
    """The answer: whole sentences, at most MAX_ANSWER_WORDS words (at least one sentence)."""
    kept: list[str] = []
    for sentence in sentences(text):
        if kept and len(" ".join([*kept, sentence]).split()) > MAX_ANSWER_WORDS:
            break
        kept.append(sentence)
    return " ".join(kept)


def word_rarity(texts: Iterable[str]) -> dict[str, float]:
    """Each word's inverse document frequency over `texts` (the documents' sections): a fact
    made of rare words ("machine's cache hierarchy") says what its section says, one of common
    words ("Cachegrind simulates how") does not."""
    counts: Counter[str] = Counter()
    total = 0
    for text in texts:
        total += 1
        counts.update({w.lower() for w in _WORD.findall(text)})
    return {word: math.log((1 + total) / (1 + n)) for word, n in counts.items()}


def facts_of(answer: str, rarity: dict[str, float] | None = None) -> tuple[str, ...]:
    """Up to FACTS_PER_LINE spans copied from the answer: figures (with their unit, or of two
    digits or more), `code`, names, else the run of three (or two, or one long) content words
    from its first sentence rarest in the documents (the first run without a rarity)."""
    spans = [m.group(0).strip() for m in _FIGURE.finditer(answer)]
    spans = [s for s in spans if not s.isdigit()]  # a bare "11" says nothing on its own
    spans += [m.group(1).strip() for m in _CODE.finditer(answer)]
    spans += [m.group(0) for m in _NAME.finditer(answer)]
    found = list(dict.fromkeys(s for s in spans if s))
    if len(found) < FACTS_PER_LINE:
        # from the opening sentence, which says what the section is about
        words = _WORD.findall((sentences(answer) or [answer])[0])
        # three content words in a row, else two, else one word of five letters or more
        for size in (3, 2, 1):
            runs = []
            for i in range(len(words) - size + 1):
                run = words[i : i + size]
                span = " ".join(run)
                if any(w.lower() in _STOP for w in run) or span not in answer or span in found:
                    continue
                if size == 1 and len(span) < 5:
                    continue
                runs.append((sum((rarity or {}).get(w.lower(), 0.0) for w in run), -i, span))
            if runs:
                found.append(max(runs)[2])
                break
    return tuple(found[:FACTS_PER_LINE])


def _base_verb(word: str) -> str:
    """'Installing' -> 'install', 'Creating' -> 'create', 'Running' -> 'run' (near enough for a
    drafted question a person reviews)."""
    stem = word[:-3].lower()
    if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] in "bgmnprt":
        return stem[:-1]
    if stem.endswith(
        ("at", "iz", "us", "ur", "ag", "iv", "ov", "cal", "ar", "ut", "od", "nc", "rg", "dg")
    ):
        return stem + "e"
    return stem


NUMBERING = re.compile(r"^(?:\d+(?:\.\d+)*\.?|[IVX]+\.)\s+")
_PRONOUN = re.compile(
    r"^(?:it|its|this|that|these|those|they|there|here|he|she|we|if|when|where|what|which"
    r"|who|how|why|all|each|every|some|many|most|one|both|such|other|another)\b",
    re.I,
)


_POSITIONAL = frozenset(
    ("first", "second", "third", "fourth", "last", "next", "following", "previous", "same")
    + ("other", "former", "latter", "above", "below", "rest", "remaining", "final")
)
_NOT_A_TERM = frozenset(
    ("in", "on", "at", "by", "for", "from", "with", "of", "to", "as", "note", "see", "also")
    + ("then", "thus", "however", "that", "these", "those", "this", "it", "its", "which", "who")
)


def defined_term(term: str) -> str | None:
    """The term a definition sentence defines, if it names a thing ("The crumb tray",
    "Memcheck", "DHAT"), else None ("The information", "In that sense it", "Note that ...")."""
    words = term.split()
    if words and words[0].lower() in ("the", "a", "an"):
        words = words[1:]
    if not words or any(w.lower() in _NOT_A_TERM for w in words):
        return None
    if len(words) == 1 and not (words[0][:1].isupper() or re.search(r"[\d_]", words[0])):
        return None
    if words[0].lower() in _POSITIONAL:
        return None  # "The second part" is defined by where it stands, not by a name
    named = term[:2].isupper() or " " not in term or all(w[:1].isupper() for w in words)
    return term if named else term[0].lower() + term[1:]


def heading_question(heading: str, title: str) -> str:
    """A question a user would ask for a section, from its heading."""
    heading = NUMBERING.sub("", heading.strip()).rstrip(":.").replace("\\_", "_")
    if heading.endswith("?"):
        return heading
    words = heading.split()
    if heading.lower().startswith("how to "):
        return f"How do I {heading[7:]}?"
    # "Installing Syncthing", "Filling the kettle", "Descaling" are tasks; "Browning control"
    # is a thing: a gerund counts when it stands alone or is followed by its object
    task = len(words) == 1 or (
        len(words) > 1 and (words[1].lower() in _DETERMINERS or words[1][:1].isupper())
    )
    if words and words[0].lower().endswith("ing") and len(words[0]) > 5 and task:
        # the user asks of their own things: "Preparing your program" -> "my program"
        rest = " ".join("my" if w.lower() == "your" else w for w in words[1:])
        return f"How do I {_base_verb(words[0])}{' ' + rest if rest else ''}?"
    # "Overview" -> "overview"; a name ("DRD", "Memcheck Monitor Commands") keeps its case
    capitals = sum(w[:1].isupper() for w in words[1:])
    named = heading[:2].isupper() or (len(words) > 1 and capitals >= len(words[1:]) / 2)
    topic = heading if named else heading[:1].lower() + heading[1:]
    bare_title = NUMBERING.sub("", title.strip())
    related = bare_title.lower() in heading.lower() or heading.lower() in bare_title.lower()
    where = f" in {bare_title}" if len(words) <= 2 and not related else ""
    return f"What should I know about {topic}{where}?"


def _section_pairs(path: str, document: LoadedDocument, rarity: dict[str, float]) -> list[Pair]:
    pairs: list[Pair] = []
    for section in document.sections:
        body = _COMMENT.sub("", document.text[section.start : section.end])
        lines = [
            line
            for line in body.splitlines()
            if not line.lstrip().startswith("#") and not _UNDERLINE.fullmatch(line.strip())
        ]
        text = "\n".join(lines).strip()
        if len(text.split()) < MIN_WORDS:
            continue
        heading = section.title or document.title
        if _FRAGMENT.match(heading):
            continue  # "and then in another shell, run:" is a line taken for a heading
        question = heading_question(heading, document.title)
        # numbered steps answer a task ("How do I descale?"); other numbered lists (clauses,
        # notes) are read as prose
        if _STEP.search(text) and question.startswith("How do I"):
            steps = "\n".join(line for line in lines if re.match(r"^\s*\d+[.)]\s", line))
            answer = steps if len(steps.split()) <= MAX_ANSWER_WORDS * 2 else _cut(steps)
            pairs.append(Pair(question, answer, path, facts_of(answer, rarity), "steps"))
            continue
        flat = " ".join(text.split())
        if "Table of Contents" in flat[:200] or "Copyright ©" in flat[:200]:
            continue  # a title page: its opening is front matter, not an answer
        said = sentences(flat)
        opening = _cut(flat)
        if len(opening.split()) >= MIN_WORDS:
            pairs.append(Pair(question, opening, path, facts_of(opening, rarity), "heading"))
        for sentence in said:
            if len(sentence.split()) < MIN_WORDS:
                continue
            match = _DEFINITION.match(sentence)
            term = defined_term(match.group("term")) if match else None
            if term and not _PRONOUN.match(sentence):
                facts = facts_of(sentence, rarity)
                pairs.append(Pair(f"What is {term}?", sentence, path, facts, "definition"))
            elif _WARNING.match(sentence):
                topic = NUMBERING.sub("", heading.strip()).rstrip(":.")
                question = f"What should I be careful about with {topic}?"
                pairs.append(Pair(question, sentence, path, facts_of(sentence, rarity), "warning"))
    return pairs


def _declines(titles: Sequence[str], corpus: str, count: int) -> list[Pair]:
    lowered = corpus.lower()
    pairs = [Pair(q, "", "", (), "off_topic") for q in OFF_TOPIC[: max(count, 1)]]
    for title in titles[:2]:
        for template, answering in NEAR_TOPIC:
            if not any(word in lowered for word in answering):
                pairs.append(Pair(template.format(title=title), "", "", (), "near_topic"))
    return pairs


def draft_pairs(documents: Iterable[tuple[str, LoadedDocument]], declines: int = 6) -> Drafted:
    """Every pair the rules find, documents taken in turn (a draft spreads over all of them),
    questions deduplicated, then the declines."""
    drafted = Drafted()
    per_document: list[list[Pair]] = []
    titles, corpus = [], []
    documents = list(documents)
    rarity = word_rarity(
        document.text[section.start : section.end]
        for _, document in documents
        for section in document.sections
    )
    for path, document in documents:
        pairs = [p for p in _section_pairs(path, document, rarity) if p.facts]
        if not pairs:
            drafted.skipped.append(path)
            continue
        per_document.append(pairs)
        titles.append(document.title)
        corpus.append(document.text)
    seen: set[str] = set()
    for turn in range(max((len(p) for p in per_document), default=0)):
        for pairs in per_document:
            if turn < len(pairs) and (key := pairs[turn].question.lower()) not in seen:
                seen.add(key)
                drafted.pairs.append(pairs[turn])
    drafted.pairs += _declines(titles, "\n".join(corpus), declines)
    return drafted
