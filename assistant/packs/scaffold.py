"""`assistant pack new`: scaffold a working, valid domain pack, optionally with documents.

The pack is built in a temporary folder beside its destination and renamed into place, so a
failure never leaves half a pack. Indexing the documents is the caller's job (the CLI does it).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from assistant.errors import AssistantError
from assistant.fsio import publish_folder
from assistant.packs.locate import DomainPack, check_name, list_packs, user_packs_dir
from assistant.packs.origin import stamped

DOCUMENT_SUFFIXES = frozenset(
    {".md", ".markdown", ".txt", ".rst", ".html", ".htm", ".pdf", ".docx"}
)
WELCOME_DOC = "docs/welcome.md"
WELCOME_FACT = "answers questions from the documents in its docs folder"

# The scaffold's placeholder description and scope: `assistant pack draft` replaces them with
# ones drafted from the documents, and leaves alone any a person has written.
DESCRIPTION_TAIL = """a domain pack created with `assistant pack new`.
Say in one paragraph what it knows; the router uses this text to pick the pack for a question."""
PERSONA_OPENING = "You are a careful assistant for {title}."
DEFAULT_SCOPE = (
    "What the pack covers: the documents in docs/. What it does not cover: anything else."
)

PACK_TOML = '''\
# Domain pack settings. `assistant pack validate {name}` checks this file and the whole pack.
# The keys at the top are required; every [section] below is optional and shows its defaults.

name = {name_json}                      # must equal the folder name
title = {title_json}
description = """{title}: {description_tail}"""
persona = """{persona_opening} Answer only from the numbered passages
you are given, cite each fact with its passage number like [1], keep answers short, and say
plainly when the passages do not hold the answer."""
scope = """{default_scope}"""
decline_message = """Sorry, that is outside what I can help with here: \
I only answer from the {title} documents."""
answer_mode = "generate"                # generate | extractive | hybrid
grounding = "strict"                    # unsupported sentences: strict (left out) | mark | off

[retrieval]
# k, chunk_tokens and chunk_overlap default to the global settings (`assistant config`).
decline_threshold = 0.30                # best passage's cosine below this -> decline
route_threshold = 0.35                  # auto-routing: confidence needed to pick this pack
store = "faiss"                         # or "milvus", with milvus_uri (docs/stores.md)

[generation]
# max_new_tokens, temperature, top_p, repetition_penalty, decline_min_prob and no_repeat_ngram
# default to the global settings.

[training]
# LoRA on every linear layer of the top `layers` transformer layers; sized so that a pack of
# ~200 examples trains in under 15 minutes on 2 CPU cores (bench/RESULTS.md).
r = 16
alpha = 32
dropout = 0.05
target_modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
layers = 10
epochs = 2
learning_rate = 1e-3
max_length = 640
batch_size = 4
passages = 3                            # passages per training prompt
p_right_passage = 0.95                  # how often the right passage is among them
decline_share = 0.05                    # refusals of each kind kept, per answer example
style_repeat = 1                        # times per epoch for examples [style] applies to
trimmed_answer = "drop"                 # or "decline": when trimming cuts the answer out
seed = 7

[style]
# kind: none | safety_reminder | numbered_steps | clause_structure | care_team
kind = "none"
marker = ""
triggers = []                           # safety_reminder: question words where it applies

[attribution]
text = "Documents supplied by the pack's author."
license = ""
url = ""
'''

WELCOME_TEXT = """\
# Welcome to {title}

This pack {fact}. Replace this file with your own documents, or add them next to it,
then update `eval/qa.jsonl` and `sft/train.jsonl` so their sources point at your documents.

Run `assistant pack validate {name}` after every change.
"""

SOURCES_TEXT = """\
# Sources of {title}

List every document in docs/ here: who wrote it, where it came from and its license.

- docs/welcome.md — written by `assistant pack new`; public domain.
{copied}"""


def _examples(name: str, title: str) -> tuple[list[dict], list[dict]]:
    """Two training examples and two evaluation questions that validate against welcome.md."""
    system = f"You are a careful assistant for {title}."
    sft = [
        {
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": f"What does the {title} pack do?"},
                {
                    "role": "assistant",
                    "content": f"This pack {WELCOME_FACT}.",
                },
            ],
            "source": WELCOME_DOC,
            "facts": [WELCOME_FACT],
            "kind": "grounded",
        },
        {
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": "What will the weather be tomorrow?"},
                {
                    "role": "assistant",
                    "content": "Sorry, that is outside what I can help with here.",
                },
            ],
            "facts": [],
            "kind": "decline",
        },
    ]
    qa = [
        {
            "question": f"What does the {title} pack do?",
            "answer": f"It {WELCOME_FACT}.",
            "source": WELCOME_DOC,
            "facts": [WELCOME_FACT],
            "domain": name,
        },
        {
            "question": "What will the weather be tomorrow?",
            "facts": [],
            "out_of_scope": True,
        },
    ]
    # marked as drafted: `assistant pack draft` replaces them unless a person edits them
    return [stamped(line) for line in sft], [stamped(line) for line in qa]


def find_documents(folder: Path) -> list[Path]:
    """The documents under `folder` (recursively) that a pack can index, sorted; no hidden
    files and no symlinks."""
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or path.is_symlink():
            continue
        if path.is_file() and path.suffix.lower() in DOCUMENT_SUFFIXES:
            found.append(path)
    return found


@dataclass
class NewPack:
    """What `create_pack` made: the pack and the documents it copied (paths inside the pack)."""

    pack: DomainPack
    documents: list[Path] = field(default_factory=list)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


def create_pack(
    name: str,
    parent: Path | None = None,
    title: str | None = None,
    from_dir: Path | None = None,
) -> NewPack:
    """Scaffold pack `name` under `parent` (default: the user packs folder); copy the documents
    of `from_dir` into its docs/. Refuses a name that is taken or a folder without documents.

    The steps write into one staging folder that the last one renames into place, so they stay
    in one function (~65 lines) with one cleanup."""
    check_name(name)
    parent = Path(parent).expanduser() if parent else user_packs_dir()
    destination = parent / name
    if destination.exists():
        raise AssistantError(f"{destination} already exists: choose another name or remove it")
    taken = {p.name: p.root for p in list_packs()}
    if name in taken:
        raise AssistantError(
            f"a pack named {name!r} already exists in {taken[name]}: choose another name"
        )
    title = (title or name.replace("-", " ").capitalize()).strip()
    if not title:
        raise AssistantError("the title is empty: give --title some text")
    sources: list[Path] = []
    if from_dir is not None:
        from_dir = Path(from_dir).expanduser()
        if not from_dir.is_dir():
            raise AssistantError(f"--from {from_dir}: not a folder of documents")
        sources = find_documents(from_dir)
        if not sources:
            kinds = ", ".join(sorted(DOCUMENT_SUFFIXES))
            raise AssistantError(f"--from {from_dir}: no documents found (looked for {kinds})")
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".new-{name}-", dir=parent))
    try:
        root = staging / name
        (root / "docs").mkdir(parents=True)
        fields = {"name": name, "title": title, "fact": WELCOME_FACT}
        toml_text = PACK_TOML.format(
            name=name,
            title=json.dumps(title, ensure_ascii=False)[1:-1],  # escaped for a TOML string
            name_json=json.dumps(name),
            title_json=json.dumps(title, ensure_ascii=False),
            description_tail=DESCRIPTION_TAIL,
            persona_opening=PERSONA_OPENING.format(title=title),
            default_scope=DEFAULT_SCOPE,
        )
        (root / "pack.toml").write_text(toml_text, "utf-8")
        (root / WELCOME_DOC).write_text(WELCOME_TEXT.format(**fields), "utf-8")
        copied = []
        for source in sources:
            relative = source.relative_to(from_dir)  # type: ignore[arg-type]
            target = root / "docs" / relative
            if target == root / WELCOME_DOC:
                target = target.with_name("welcome-1.md")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            copied.append(target.relative_to(root))
        listing = "".join(f"- {c.as_posix()} — source and license: fill in.\n" for c in copied)
        (root / "SOURCES.md").write_text(SOURCES_TEXT.format(title=title, copied=listing), "utf-8")
        sft, qa = _examples(name, title)
        _write_jsonl(root / "sft" / "train.jsonl", sft)
        _write_jsonl(root / "eval" / "qa.jsonl", qa)
        try:
            publish_folder(root, destination)
        except OSError as exc:
            raise AssistantError(f"cannot create {destination}: {exc.strerror}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    pack = DomainPack(name, destination.resolve())
    return NewPack(pack, [pack.root / c for c in copied])
