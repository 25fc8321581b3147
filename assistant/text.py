"""The text rules that training, answering, validation and evaluation share, kept in one place so
they cannot drift apart: one normalisation and one fact match (the rule eval scores with, so
training picks "the passage that holds the answer" by that rule too), the sentence splitter, the
BM25 tokeniser and the term set used to rank sentences and packs.

Plain functions of strings; nothing here depends on the rest of the project.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

# ----- normalisation and facts ---------------------------------------------------------------

# A citation "[n]" with the space before it (the group is n): answers, metrics and the claim
# check all read citations by this one pattern.
CITATION = re.compile(r"\s?\[(\d{1,3})\]")
_DASHES = re.compile(r"[\u2010-\u2015\u2212]")
_APOSTROPHES = re.compile(r"[\u2019\u2018'`]")
_IN_NUMBER = re.compile(r"(?<=\d)([.,])(?=\d)")  # 3.5, 1,000: kept as written
_PUNCT = re.compile(r"[^\w\s\x00\x01]|_")
_SPACES = re.compile(r"\s+")


# Cached: training checks every fact of an example against the same few dozen passages.
@lru_cache(maxsize=4096)
def normalize(text: str) -> str:
    """Lowercase, NFKC, citation markers and punctuation removed, whitespace collapsed.

    Numbers are kept as written: "3.5" and "1,000" stay intact ("35" or "1000" do not match
    them), while a dash between numbers is a separator ("15–25" and "15-25" both become "15 25").
    Apostrophes join ("doesn't" == "doesnt")."""
    text = unicodedata.normalize("NFKC", text or "").replace("\x00", " ").replace("\x01", " ")
    text = CITATION.sub(" ", text).lower()
    text = _APOSTROPHES.sub("", _DASHES.sub("-", text))
    text = _IN_NUMBER.sub(lambda m: "\x00" if m.group(1) == "." else "\x01", text)
    text = _PUNCT.sub(" ", text).replace("\x00", ".").replace("\x01", ",")
    return _SPACES.sub(" ", text).strip()


def fact_in(fact: str, text: str) -> bool:
    """Whether the fact, normalized, appears in the normalized text on word boundaries: "pale
    grey" is in "Pale-grey, wide", while "5" is neither in "50 mm" nor in "3.5"."""
    needle = normalize(fact)
    return bool(needle) and f" {needle} " in f" {normalize(text)} "


# A number as written: digits with inner "." or "," ("3.5", "1,000", "10.2.1"), not part of a word
# ("A1C" or "v2" are names, not figures).
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?![\w])")
_CITATION_LIST = re.compile(r"\[\d{1,3}(?:\s*,\s*\d{1,3})*\]")
_LIST_MARKER = re.compile(r"^[ \t]*\d+[.)](?=\s)", re.MULTILINE)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def _canonical_number(number: str) -> str:
    number = _THOUSANDS.sub("", number)
    if number.count(".") == 1 and "," not in number:
        whole, fraction = number.split(".")
        fraction = fraction.rstrip("0")
        number = f"{whole.lstrip('0') or '0'}.{fraction}" if fraction else whole
    if number.isdigit():
        number = number.lstrip("0") or "0"
    return number


def number_spans(text: str) -> list[tuple[str, int, int]]:
    """(number, start, end) for each number a text states, the number in one canonical form
    ("1,000" and "1000" are "1000", "6.0" is "6"), leaving out citation markers ("[2]") and
    the numbers of list items. Offsets are in `text` as given."""
    hidden = _LIST_MARKER.sub(_blank, _CITATION_LIST.sub(_blank, text))
    return [(_canonical_number(m.group(0)), m.start(), m.end()) for m in _NUMBER.finditer(hidden)]


def _blank(match: re.Match[str]) -> str:
    return " " * len(match.group(0))  # same length, so offsets stay those of the text


def numbers_in(text: str) -> list[str]:
    """The numbers a text states, in canonical form (see `number_spans`)."""
    return [number for number, _start, _end in number_spans(unicodedata.normalize("NFKC", text))]


# ----- sentences -----------------------------------------------------------------------------

# A sentence ends at . ! ? followed by a space or the end, or at a line break; "evil.example/x"
# or "3.5" go on.
_SENTENCE = re.compile(r"(?:[^.!?\n]|[.!?](?=[^\s.!?]))+[.!?]*")


def sentences(text: str) -> list[str]:
    """The sentences of `text`, each with its runs of whitespace made one space; blank ones
    are left out."""
    found = (" ".join(match.group(0).split()) for match in _SENTENCE.finditer(text))
    return [sentence for sentence in found if sentence]


# Training replies (`training.raft`) break only where . ! ? meet whitespace. Their clauses quote
# with an ellipsis ('"... (collectively, "Software") ..." What it means: ...'), where `sentences`
# would end a sentence, and the citation belongs after the explanation, not inside the quote:
# with `sentences`, 38 of the 193 contracts replies with facts would be cited inside a quote.
_REPLY_BREAK = re.compile(r"(?<=[.!?])\s+")


# A step's number ("2." at the start of a line) opens its sentence rather than ending one: a
# reply in numbered steps would otherwise be cited as "3 [3]. Click Save."
_STEP_NUMBER = re.compile(r"[ \t]*\d+[.)]")


def _ends_in_step_number(text: str, start: int, end: int) -> bool:
    line_start = max(text.rfind("\n", start, end) + 1, start)
    before = text[:line_start].rstrip(" \t")
    at_line_start = not before or before.endswith("\n")
    return at_line_start and bool(_STEP_NUMBER.fullmatch(text, line_start, end))


def reply_sentence_spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) offsets of the sentences of a written reply, as `text` holds them (an
    empty text is one empty sentence)."""
    spans, start = [], 0
    for gap in _REPLY_BREAK.finditer(text):
        if _ends_in_step_number(text, start, gap.start()):
            continue
        spans.append((start, gap.start()))
        start = gap.end()
    return [*spans, (start, len(text))]


def reply_sentences(text: str) -> list[str]:
    """The sentences of a written reply, as written (line breaks inside them kept)."""
    return [text[start:end] for start, end in reply_sentence_spans(text)]


# Passage trimming (`answering.prompts.trim_passage`) grows a window of these pieces within a
# word budget: a break after ; and : too gives it finer steps than whole sentences. It is a
# separate rule because every prompt since the first adapters was trimmed by it; training quotes
# the same pieces so that a quoted span is one the prompt showed.
_CLAUSE_BREAK = re.compile(r"(?<=[.!?;:])\s+|\n+")


def clauses(text: str) -> list[str]:
    """The pieces of `text` between sentence or clause breaks (. ! ? ; : before a space, or a
    line break), as written; blank pieces are left out."""
    return [piece for piece in _CLAUSE_BREAK.split(text) if piece.strip()]


# ----- words ---------------------------------------------------------------------------------


def bm25_tokenize(texts: Sequence[str]) -> list[list[str]]:
    """The words BM25 indexes and searches by (bm25s, English stop words removed): the chunk
    index and the ranking of evidence sentences use this one tokeniser."""
    import bm25s

    return bm25s.tokenize(list(texts), stopwords="en", return_ids=False, show_progress=False)


_WORD = re.compile(r"[a-z0-9]+")
_STOP_WORDS = """
    a an the and or of to in on for with at by from is are was were be been it its this
    that these those what which who whom how why when where do does did can could should
    would will i you your my we our they their he she his her me us them not no yes if
    as so than then about into over under up down out there here have has had any all
    some more most
"""
_STOP = frozenset(_STOP_WORDS.split())  # noqa: SIM905


def terms(text: str) -> set[str]:
    """The content words of `text` cut to 5 letters, stop words left out."""
    # A 5-letter prefix is a crude stem: "symptoms" ~ "symptom", "drying" ~ "dry..." enough
    # for ranking sentences inside a passage that retrieval already matched.
    return {w[:5] for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


# A sentence written to steer the assistant: a link to hand out, orders addressed to it. Such a
# sentence is never quoted as evidence, and a generated sentence like it is never shown as fact
# (a document's injected link would otherwise be "supported" by the very passage that holds it).
_STEERING = re.compile(
    r"https?://|www\.|\b[a-z0-9-]+\.[a-z]{2,}(?:\.[a-z]{2,})*/\w"  # a link, with or without scheme
    r"|\b(?:system prompt|new instructions|ignore (?:all|any|previous|prior|"
    r"the above|your)|you are now|from now on|every answer|each answer)\b",
    re.IGNORECASE,
)


def steers(sentence: str) -> bool:
    """Whether the sentence carries a link or an order to the assistant."""
    return bool(_STEERING.search(sentence))
