"""The claim check: each sentence the model writes is held against the passages and the
question, and what they do not support is not shown as fact.

A sentence is supported when every number it states (with its unit) is in the question or a
passage, every name it uses is too, enough of its content words come from the passages, and
its negation agrees with the passage sentence it restates. These are surface rules, written by
hand because no library checks support this cheaply on a CPU (an NLI model would cost more
than the answer); they are strict on purpose: one wrong figure shown as fact costs a patient
or a reviewer more than a missing sentence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from types import SimpleNamespace
from typing import Any

from assistant.answering.prompts import says_not_covered
from assistant.text import (
    CITATION,
    number_spans,
    reply_sentence_spans,
    sentences,
    steers,
    terms,
)

GROUNDING_MODES = ("strict", "mark", "off")
# Shown before a sentence the check could not support, in "mark" mode.
UNSUPPORTED_MARK = "(not in the documents) "
# Share of a sentence's content words (those not in the question) that its passage must hold.
MIN_CONTENT_SHARE = 0.6

_NEGATION = re.compile(r"\b(?:not|no|never|none|nor|without|cannot)\b|n't\b", re.IGNORECASE)
# A name: a capitalised word that does not open its sentence (or a line, a quote, a clause
# after a colon), or a word in capitals ("HbA1c", "NDA").
_WORD_AFTER = re.compile(r"(?<=[^\s:\"“(>*\-.!?)\]])\s+([A-Z][\w'-]+)")
_NOT_NAMES = frozenset({"i'm", "i've", "i'd", "i'll"})
# Units a figure is checked with ("5 mm" is not "5 cm"); one-letter words that are often not
# units ("5 in total") are left out.
_UNITS = frozenset(
    """mm cm m km inch inches ft feet g kg mg mcg µg ml litre litres liter liters % percent
    degrees °c °f day days week weeks month months year years hour hours h hr hrs minute
    minutes min mins second seconds sec ms unit units iu tablet tablets kb mb gb tb kib mib
    gib port ports mmol/l mg/dl kg/m3 kg/m³ kn mpa gpa psi rpm kw""".split()  # noqa: SIM905
)


@dataclass
class Claim:
    """One sentence of a reply and whether the passages support it."""

    text: str
    supported: bool
    passage: int | None = None  # the number of the passage it restates, if any
    reason: str | None = None  # why it is not supported

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _unit_after(text: str, end: int) -> str | None:
    match = re.match(r"\s?(%|°[cf]|[a-zµ³/]+\b)", text[end:].lower())
    return match.group(1) if match and match.group(1) in _UNITS else None


def _figures(text: str) -> list[tuple[str, str | None]]:
    """(number, unit or None) for each number the text states."""
    return [(number, _unit_after(text, end)) for number, _start, end in number_spans(text)]


class Support:
    """What a reply may draw on (the passages, objects with `number` and `text`, and the
    question), read once per answer: its figures with their units, its words, and each passage
    sentence with its content words. `check(sentence)` judges one sentence against it."""

    def __init__(self, passages: Sequence[Any], question: str) -> None:
        # What a document says to the assistant (a link to hand out, "you are now a pirate")
        # is not evidence for anything: without it, a reply that obeys it has no support.
        passages = [
            SimpleNamespace(number=p.number, text=_without_steering(p.text)) for p in passages
        ]
        texts = [question, *(p.text for p in passages)]
        self.figures: dict[str, set[str | None]] = {}
        for text in texts:
            for number, unit in _figures(text):
                self.figures.setdefault(number, set()).add(unit)
        self.vocabulary = {w.lower() for text in texts for w in re.findall(r"[\w'-]+", text)}
        self.question_words = _words(question)
        self.passage_words = set().union(*(_words(p.text) for p in passages)) if passages else set()
        self.passage_sentences = [
            (p.number, candidate, _words(candidate))
            for p in passages
            for candidate in sentences(p.text)
        ]
        # each passage sentence's words with its neighbours' in the same passage ("one
        # place"), built once per answer rather than once per sentence checked
        places = self.passage_sentences

        def neighbours(i: int) -> list[set[str]]:
            return [
                places[j][2]
                for j in (i - 1, i + 1)
                if 0 <= j < len(places) and places[j][0] == places[i][0]
            ]

        self.places = [words.union(*neighbours(i)) for i, (_, _, words) in enumerate(places)]

    def check(self, sentence: str) -> Claim:
        text = sentence.strip()
        bare = CITATION.sub("", text)
        wanted = _words(bare)
        number, matched = self._best_sentence(wanted)
        problem = self._number_problem(bare) or self._name_problem(bare)
        if steers(bare):
            problem = "it carries a link or an order to the assistant (open the source instead)"
        own = wanted - self.question_words
        if problem is None and own:
            share = len(own & self.passage_words) / len(own)
            if share < MIN_CONTENT_SHARE:
                problem = f"only {share:.0%} of its words are in the passages"
        if problem is None and own:
            local = self._local_share(own)
            if local < MIN_CONTENT_SHARE:
                problem = f"its words are spread over the passages ({local:.0%} in any one place)"
        if (
            problem is None
            and matched
            and bool(_NEGATION.search(bare)) != bool(_NEGATION.search(matched))
        ):
            problem = "it turns around what the passage says (negation)"
        return Claim(text, problem is None, number, problem)

    def _number_problem(self, sentence: str) -> str | None:
        for number, unit in _figures(sentence):
            if number not in self.figures:
                return f"the number {number} is in no passage"
            units = self.figures[number]
            if unit is not None and None not in units and unit not in units:
                return f"{number} {unit} is not what the passages say ({number} {sorted(units)[0]})"
        return None

    def _name_problem(self, sentence: str) -> str | None:
        for match in _WORD_AFTER.finditer(sentence):
            word = match.group(1).strip("'-")
            if word.lower() in _NOT_NAMES:
                continue
            if (
                word.lower() not in self.vocabulary
                and word.rstrip("s").lower() not in self.vocabulary
            ):
                return f"the name {word!r} is in no passage"
        return None

    def _local_share(self, own: set[str]) -> float:
        """The largest share of the sentence's own words that one place of one passage holds
        (a passage sentence with the sentences either side of it). On the dev splits, requiring
        it beside the share over all passages left out 7 sentences the check had passed: 6 wrong
        or empty ("...stands up to 28-36 m at maturity, so there are 23 islands in total", "Risk:
        A stated market or business is one that matches your business") and 1 true paraphrase of
        a date."""
        return max((len(own & place) / len(own) for place in self.places), default=0.0)

    def _best_sentence(self, claim_words: set[str]) -> tuple[int | None, str]:
        """The passage sentence sharing the most content words with the claim, and its
        passage."""
        best: tuple[int, int | None, str] = (0, None, "")
        for number, candidate, words in self.passage_sentences:
            overlap = len(claim_words & words)
            if overlap > best[0]:
                best = (overlap, number, candidate)
        return best[1], best[2]


def _without_steering(text: str) -> str:
    return " ".join(sentence for sentence in sentences(text) if not steers(sentence))


def _words(text: str) -> set[str]:
    """Content words (figures are checked on their own)."""
    return {term for term in terms(text) if not term.isdigit()}


def check_sentence(sentence: str, passages: Sequence[Any], question: str) -> Claim:
    """Whether the passages and the question support one sentence of a reply."""
    return Support(passages, question).check(sentence)


def _reply_spans(text: str) -> list[tuple[int, int]]:
    """The sentences of a reply: line by line, then as `reply_sentence_spans` breaks them,
    with a citation that follows a full stop ("... 5 mm. [1]") kept with its sentence."""
    spans: list[tuple[int, int]] = []
    offset = 0
    for line in text.split("\n"):
        for start, end in reply_sentence_spans(line):
            if line[start:end].strip():
                spans.append((offset + start, offset + end))
        offset += len(line) + 1
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        lead = re.match(r"(?:\[\d{1,3}\])+", text[start:end])
        if merged and lead and "\n" not in text[merged[-1][1] : start]:
            merged[-1] = (merged[-1][0], start + lead.end())
            start += lead.end()
        if text[start:end].strip():
            merged.append((start, end))
    return merged


def check_reply(text: str, passages: Sequence[Any], question: str) -> list[Claim]:
    """Every sentence of a written reply, checked."""
    support = Support(passages, question)
    return [support.check(text[s:e]) for s, e in _reply_spans(text)]


# A tail that may still be the citation of the sentence before it ("[", "[1", " [1]").
_OPEN_TAIL = re.compile(r"[\s\[\]\d,]*")


class ClaimFilter:
    """Checks a reply sentence by sentence as it streams: iterate `run(pieces)` for the text
    to show; `claims` then holds every sentence with its verdict. "strict" leaves out what is
    not supported, "mark" shows it after UNSUPPORTED_MARK, "off" shows the reply as written
    (still checked)."""

    def __init__(
        self, passages: Sequence[Any], question: str, mode: str = "strict", referral: str = ""
    ) -> None:
        if mode not in GROUNDING_MODES:
            raise ValueError(f"grounding must be one of {', '.join(GROUNDING_MODES)}")
        self.support, self.mode = Support(passages, question), mode
        # A sentence that carries the pack's rule ("... your care team ...", "Safety
        # reminder: ...") and states no figure is the pack's voice, not a claim about the
        # documents: without it a strict answer lost every safety reminder.
        self.referral = referral.lower()
        self.rule_said = False
        self.claims: list[Claim] = []

    def run(self, pieces: Iterable[str]) -> Iterator[str]:
        buffer, done = "", 0  # done: characters of buffer already checked and shown or dropped
        for piece in pieces:
            buffer += piece
            spans = _reply_spans(buffer)
            # the last span is still being written; a sentence before a tail that may yet be
            # its citation ("[", "[1") waits for it
            complete = spans[:-1]
            if spans and _OPEN_TAIL.fullmatch(buffer[spans[-1][0] :]):
                complete = spans[:-2]
            for start, end in complete:
                if end > done:
                    yield from self._emit(
                        buffer[done : max(start, done)], buffer[max(start, done) : end]
                    )
                    done = end
        for start, end in _reply_spans(buffer):
            if end > done:
                yield from self._emit(
                    buffer[done : max(start, done)], buffer[max(start, done) : end]
                )
                done = end

    def _refers(self, sentence: str) -> bool:
        return (
            bool(self.referral) and self.referral in sentence.lower() and not number_spans(sentence)
        )

    def _emit(self, gap: str, sentence: str) -> Iterator[str]:
        if not CITATION.sub("", sentence).strip(" .,;:()[]"):
            # citations alone ("[1] [2]" after a full stop): they belong to the sentence
            # before, shown with it or left out with it (a strict answer showed bare "[1] [2]")
            if self.claims and (self.claims[-1].supported or self.mode != "strict"):
                yield gap + sentence
            return
        rule = self._refers(sentence)
        if rule and self.rule_said:
            # said once is enough: a small model caught in a loop repeated it six times
            claim = Claim(sentence.strip(), False, None, "the pack's rule was said already")
        elif says_not_covered(sentence) or rule:  # claims nothing
            claim = Claim(sentence.strip(), True)
            self.rule_said = self.rule_said or rule
        else:
            claim = self.support.check(sentence)
        self.claims.append(claim)
        if claim.supported or self.mode == "off":
            yield gap + sentence
        elif self.mode == "mark":
            yield gap + UNSUPPORTED_MARK + sentence
        elif "\n" in gap:
            yield gap[gap.rindex("\n") :]  # keep the line break of a dropped list item's line
