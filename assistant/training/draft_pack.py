"""`assistant pack draft`: a pack's `sft/train.jsonl` and `eval/qa.jsonl` drafted from its
documents (`drafting` finds the questions), merged with the lines a person wrote or edited,
written atomically. A document's pairs go either to eval or to training, never both, so the
adapter is scored on questions it never saw; eval documents go to dev or test by question
count; with the pack's index, an eval question is kept only if retrieval finds its facts.
pack.toml's placeholder description, scope and persona are drafted from the documents."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import AssistantError
from assistant.fsio import atomic_write_bytes
from assistant.knowledge.loaders import LoadedDocument, SkipFile, load_document
from assistant.knowledge.walk import expand
from assistant.packs.format import load_pack_config
from assistant.packs.locate import DomainPack
from assistant.packs.origin import kept_by_a_person, stamped
from assistant.packs.scaffold import DEFAULT_SCOPE, DESCRIPTION_TAIL, PERSONA_OPENING, WELCOME_DOC
from assistant.runtime.processors import NOT_COVERED
from assistant.text import fact_in
from assistant.training.drafting import NUMBERING, Pair, draft_pairs

# Eval questions drafted by default: enough for a dev and a test half of ~20 each.
EVAL_COUNT = 40
# Training lines drafted by default: ~10 minutes of `assistant train` on 2 CPU cores with the
# 0.5B base (41 lines took 5.3 min); past this the draft keeps one document's pairs in turn.
TRAIN_COUNT = 80

# The passages a question retrieves from the pack's index (their texts, the pack's k).
Search = Callable[[str], list[str]]
# (done, total, what) after each question checked against the index
DraftProgress = Callable[[int, int, str], None]


@dataclass
class DraftReport:
    pack: str
    sft_drafted: int
    eval_drafted: int
    kept: int  # lines a person wrote or edited, kept as they are
    skipped: list[tuple[str, str]]  # (document, why it gave nothing)
    unanswerable: int = 0  # questions left out of the eval: retrieval does not find their facts


def _kept_lines(path: Path) -> list[str]:
    """The lines of a JSONL file that a new draft keeps, as they are written: every line a
    person wrote or edited, and any line that is not a JSON object (it is theirs to fix; a
    draft never loses it). Blank lines and unedited drafted lines go."""
    if not path.is_file():
        return []
    kept = []
    for text in path.read_text("utf-8").splitlines():
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except ValueError:
            line = None
        if not isinstance(line, dict) or kept_by_a_person(line):
            kept.append(text)
    return kept


def _asked_by_a_person(path: Path) -> set[str]:
    """The questions (lowercased) of the eval lines a person wrote or edited."""
    asked = set()
    for text in _kept_lines(path):
        try:
            line = json.loads(text)
        except ValueError:
            continue
        if isinstance(line, dict) and isinstance(line.get("question"), str):
            asked.add(line["question"].strip().lower())
    return asked


def _documents(pack: DomainPack) -> tuple[list[tuple[str, object]], list[tuple[str, str]]]:
    """The pack's documents, loaded, and the reasons the others were skipped. The scaffold's
    welcome page is left out when the pack has other documents: it describes the pack, not
    what the documents say."""
    found, skipped = expand([pack.docs_dir])
    documents, reasons = [], [(s.path, s.reason) for s in skipped]
    welcome = pack.root / WELCOME_DOC
    if len(found) > 1:
        found = [item for item in found if item.path != welcome]
    for item in found:
        relative = item.path.relative_to(pack.root).as_posix()
        try:
            documents.append((relative, load_document(item.path)))
        except SkipFile as exc:
            reasons.append((relative, str(exc)))
    return documents, reasons


def _eval_line(pair: Pair, split: str) -> dict:
    if pair.declines:
        return stamped({"question": pair.question, "out_of_scope": True, "split": split})
    line = {
        "question": pair.question,
        "answer": pair.answer,
        "source": pair.source,
        "facts": list(pair.facts),
        "split": split,
    }
    return stamped(line)


def _sft_line(pair: Pair, persona: str, decline: str) -> dict:
    if pair.kind == "off_topic":
        reply = decline
    elif pair.kind == "near_topic":
        reply = NOT_COVERED
    else:
        # no citation here: training puts the right passage's [n] in (raft.insert_citation);
        # a written "[1]" stayed beside it and taught answers to end "... [3]. [1]"
        reply = pair.answer
    messages = [
        {"role": "system", "content": persona},
        {"role": "user", "content": pair.question},
        {"role": "assistant", "content": reply},
    ]
    line: dict = {"messages": messages, "kind": "decline" if pair.declines else "answer"}
    if not pair.declines:
        line.update(source=pair.source, facts=list(pair.facts))
    return stamped(line)


def _toml_text(text: str) -> str:
    """Safe inside a TOML \"\"\"basic string\"\"\" (no backslash, no triple quote)."""
    return " ".join(text.replace("\\", "/").replace('"', "'").split())


def _draft_description(pack: DomainPack, title: str, documents: list[LoadedDocument]) -> bool:
    """Replace the scaffold's placeholder description, scope and persona in pack.toml with
    ones naming what the documents cover (routing compares a question with the description;
    the persona tells the model what it is an expert in); text a person wrote is left alone.
    Whether pack.toml changed."""
    text = pack.pack_toml.read_text("utf-8")
    titles = list(dict.fromkeys(NUMBERING.sub("", d.title).strip() for d in documents))
    covered = _toml_text(", ".join(titles))
    if len(covered) > 600:
        covered = covered[:600].rsplit(",", 1)[0] + ", and more"
    largest = sorted(documents, key=lambda d: -len(d.text))[:4]
    topics = _toml_text("; ".join(NUMBERING.sub("", d.title).strip() for d in largest))
    changed = (
        text.replace(DESCRIPTION_TAIL, f"answers from its {len(documents)} documents: {covered}.")
        .replace(
            DEFAULT_SCOPE,
            f"What the pack covers: {covered}. What it does not cover: anything the documents"
            " do not say.",
        )
        .replace(
            f"{PERSONA_OPENING.format(title=title)} Answer",
            f"{PERSONA_OPENING.format(title=title)[:-1]}, an expert in {topics}, who answers"
            " from its documents.\nAnswer",
            1,
        )
    )
    if changed == text:
        return False
    atomic_write_bytes(pack.pack_toml, changed.encode("utf-8"))
    return True


def _answerable(
    answers: list[Pair], search: Search | None, progress: DraftProgress | None
) -> list[Pair]:
    """The pairs whose question retrieves a passage holding one of its facts (all of them
    without an index). An eval question whose facts retrieval cannot find scores the retriever,
    not the adapter, whatever the model writes: the round-trip check of synthetic QA."""
    if search is None:
        return answers
    kept = []
    for done, pair in enumerate(answers, 1):
        passages = search(pair.question)
        if any(fact_in(fact, text) for fact in pair.facts for text in passages):
            kept.append(pair)
        if progress:
            progress(done, len(answers), pair.source)
    return kept


def draft_pack(
    pack: DomainPack,
    count: int = EVAL_COUNT,
    *,
    train_count: int = TRAIN_COUNT,
    search: Search | None = None,
    progress: DraftProgress | None = None,
) -> DraftReport:
    """Draft the pack's training and eval lines; keep every line a person wrote or edited.
    With `search` (the pack's built index), eval questions are only those whose facts
    retrieval finds."""
    if count < 2:
        raise AssistantError("--count must be at least 2 (a dev and a test question)")
    if train_count < 1:
        raise AssistantError("--train-count must be at least 1")
    documents, skipped = _documents(pack)
    if not documents:
        why = "; ".join(f"{path}: {reason}" for path, reason in skipped[:3]) or "it is empty"
        raise AssistantError(f"pack {pack.name!r} has no document to draft from ({why})")
    drafted = draft_pairs(documents)
    skipped += [(path, "no section gave a question") for path in drafted.skipped]
    answers = [p for p in drafted.pairs if not p.declines]
    if not answers:
        raise AssistantError(
            f"no question could be drafted from the documents of {pack.name!r}: they need"
            " sentences under headings (or paragraphs of six words or more)"
        )
    declines = [p for p in drafted.pairs if p.declines]
    answerable = _answerable(answers, search, progress)
    # Whole documents go to the eval, every other one in turn, until it holds `count`
    # questions or a third of them (training keeps the rest); dev and test alternate by
    # document.
    sources = list(dict.fromkeys(p.source for p in answers))
    per_source = {s: sum(p.source == s for p in answerable) for s in sources}
    wanted = min(count - count // 5, max(len(answers) // 3, 2))
    eval_sources: set[str] = set()
    for source in [*sources[1::2], *sources[0::2]]:
        enough = sum(per_source[s] for s in eval_sources) >= wanted
        if enough or len(eval_sources) >= len(sources) - 1:  # training keeps one at least
            break
        if per_source[source]:
            eval_sources.add(source)
    in_eval = [p for p in answerable if p.source in eval_sources][: count - count // 5]
    # each document, largest first, to the split with fewer questions so far: one long manual
    # must not make the test split a handful
    split_of: dict[str, str] = {}
    sizes = {"dev": 0, "test": 0}
    for source in sorted(eval_sources, key=lambda s: (-per_source[s], s)):
        split = min(("test", "dev"), key=lambda name: sizes[name])
        split_of[source] = split
        sizes[split] += sum(p.source == source for p in in_eval)
    eval_lines = [_eval_line(p, split_of[p.source]) for p in in_eval]
    held = declines[: max(count // 5, 2)]
    eval_lines += [_eval_line(p, ("dev", "test")[i % 2]) for i, p in enumerate(held)]
    # a question a person's eval line asks is never trained on: the eval would score recall
    asked = _asked_by_a_person(pack.eval_file)
    trained = [
        p for p in answers if p.source not in eval_sources and p.question.lower() not in asked
    ]
    trained = trained[:train_count]
    trained += declines[len(held) :]
    covering = [d for path, d in documents if path not in drafted.skipped]
    _draft_description(pack, load_pack_config(pack).title, covering)
    config = load_pack_config(pack)  # with the drafted persona, which training learns with
    sft_lines = [_sft_line(p, config.persona, config.decline_message) for p in trained]
    kept = 0
    for path, fresh in ((pack.sft_file, sft_lines), (pack.eval_file, eval_lines)):
        mine = _kept_lines(path)
        kept += len(mine)
        written = [json.dumps(line, ensure_ascii=False) for line in fresh]
        text = "".join(line + "\n" for line in [*mine, *written])
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            atomic_write_bytes(path, text.encode("utf-8"))
        except OSError as exc:
            raise AssistantError(f"cannot write {path}: {exc.strerror}") from None
    unanswerable = sum(p.source in eval_sources for p in answers) - sum(
        p.source in eval_sources for p in answerable
    )
    return DraftReport(pack.name, len(sft_lines), len(eval_lines), kept, skipped, unanswerable)
