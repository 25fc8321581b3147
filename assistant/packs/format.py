"""The domain pack file formats as typed models: `pack.toml`, `sft/train.jsonl` lines and
`eval/qa.jsonl` lines; reading pack.toml (`check_pack_toml`, every problem with its line) and
`load_pack_config`, which loads a pack's effective settings for use.

A pack's [retrieval] and [generation] tables are partial: each global setting of those sections
that a pack leaves out takes the global value (`assistant.settings`, declared once there), so
`config.generation` is the pack's effective `GenerationSettings`. The keys only a pack has
(decline and route thresholds, passage words, [training], [style]...) are declared here with
their defaults. Unknown keys are errors (a typo must not be silently ignored). Checking a whole
pack (documents, examples, eval questions) lives in `assistant.packs.validation`.
"""

from __future__ import annotations

import re
import tomllib
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from assistant.errors import AssistantError
from assistant.packs.locate import DomainPack
from assistant.packs.problems import TOO_DEEP, Problem, pydantic_problems
from assistant.settings import (
    GenerationSettings,
    LoadedSettings,
    RetrievalSettings,
    Settings,
    packaged_settings,
)

# A string that must hold something other than whitespace.
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

AnswerMode = Literal["generate", "extractive", "hybrid"]
Grounding = Literal["strict", "mark", "off"]
StyleKind = Literal["none", "safety_reminder", "numbered_steps", "clause_structure", "care_team"]
# The vector stores of assistant.knowledge.vectors.STORES (a test keeps the two in step).
VectorStoreName = Literal["faiss", "milvus"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PackRetrieval(RetrievalSettings):
    """The global retrieval settings (a pack may set each) and the keys only a pack has."""

    decline_threshold: float = Field(default=0.30, ge=-1.0, le=1.0)
    route_threshold: float = Field(default=0.35, ge=-1.0, le=1.0)
    # Each passage in a prompt is cut to the words that best match the question (0: whole).
    passage_words: int = Field(default=80, ge=0, le=2000)
    # Where the dense vectors of new index generations go (docs/stores.md): FAISS files beside
    # the docstore, or a Milvus collection (milvus-lite locally, a Milvus server when milvus_uri
    # is a URL). `assistant index migrate PACK --to STORE` moves a built index.
    store: VectorStoreName = "faiss"
    # "" is a milvus-lite file "milvus.db" in the pack's index folder; a relative path is taken
    # from that folder; "http://host:19530" is a Milvus server.
    milvus_uri: str = Field(default="", max_length=1000)
    # The name of the environment variable that holds the server's token (never the token).
    milvus_token_env: str = Field(default="", pattern=r"^([A-Za-z_][A-Za-z0-9_]*)?$")
    # Collections are named PREFIX_g000007; "" is assistant_<pack> (set one per installation
    # when several share a Milvus server).
    milvus_collection: str = Field(default="", pattern=r"^([A-Za-z_][A-Za-z0-9_]{0,200})?$")

    @model_validator(mode="after")
    def _overlap_below_chunk(self) -> PackRetrieval:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError("chunk_overlap must be smaller than chunk_tokens")
        return self


class PackTraining(_Strict):
    r: int = Field(default=16, ge=1, le=512)
    alpha: int = Field(default=32, ge=1, le=1024)
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[Text] = Field(
        default_factory=lambda: [
            "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"
        ],
        min_length=1,
    )  # fmt: skip
    epochs: float = Field(default=2, gt=0, le=100)
    learning_rate: float = Field(default=1e-3, gt=0.0, le=1.0)
    max_length: int = Field(default=640, ge=64, le=32768)
    batch_size: int = Field(default=4, ge=1, le=1024)
    passages: int = Field(default=3, ge=0, le=20)
    p_right_passage: float = Field(default=0.95, ge=0.0, le=1.0)
    # Refusal examples kept (off-topic declines and "not in the documents" replies, each kind),
    # as a share of the answer examples: the router declines off-topic questions before the
    # model sees them, and a training set that was a third refusals taught the adapter to
    # refuse in-scope questions too.
    decline_share: float = Field(default=0.05, ge=0.0, le=10.0)
    # Answer examples that the pack's [style] check applies to appear this many times per
    # epoch: a style shown by a third of the examples (penguin wood's safety reminders) is
    # learned for a third of the answers.
    style_repeat: int = Field(default=1, ge=1, le=10)
    # An answer example whose right passage, trimmed to retrieval.passage_words as at answer
    # time, no longer shows any of its facts: "drop" leaves it out; "decline" (the first
    # adapters' behaviour) trains it to say the documents do not cover the question, which
    # taught the adapters to decline questions whose passage was in the prompt.
    trimmed_answer: Literal["drop", "decline"] = "drop"
    seed: int = 7
    # LoRA only in the top N transformer layers (0: all): backward stops below them, so fewer
    # layers train faster on a CPU.
    layers: int = Field(default=10, ge=0, le=512)


class PackStyle(_Strict):
    kind: StyleKind = "none"
    marker: str = ""
    # safety_reminder: the check applies to questions with one of these words (a word start:
    # "finish" matches "finishes"); without any, to those whose reference answer has the marker.
    triggers: list[Text] = Field(default_factory=list)


class PackAdapter(_Strict):
    # Older packs named here the base their one adapter was trained on. Adapters now live per
    # base in adapter/<base>/, each with the base in its training.json; this key is accepted so
    # those packs still load, and read by nothing.
    base_model: str | None = None


class PackAttribution(_Strict):
    text: str = ""
    license: str = ""
    url: str = ""


class PackConfig(_Strict):
    """A pack.toml with its effective retrieval and generation settings: validate it with the
    global settings as `context={"settings": Settings}`, else the packaged defaults apply."""

    name: Text
    title: Text
    description: Text
    persona: Text
    scope: Text
    decline_message: Text
    answer_mode: AnswerMode = "generate"
    # What happens to a generated sentence the passages do not support (`answering.claims`):
    # "strict" leaves it out (with nothing left, the answer leads with the quoted evidence),
    # "mark" shows it marked, "off" shows it as written. Every sentence is checked either way.
    grounding: Grounding = "strict"
    retrieval: PackRetrieval
    generation: GenerationSettings
    training: PackTraining = Field(default_factory=PackTraining)
    style: PackStyle = Field(default_factory=PackStyle)
    adapter: PackAdapter = Field(default_factory=PackAdapter)
    attribution: PackAttribution = Field(default_factory=PackAttribution)

    @model_validator(mode="before")
    @classmethod
    def _over_global_settings(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        settings = (info.context or {}).get("settings") or packaged_settings()
        return over_global_settings(data, settings)


Role = Literal["system", "user", "assistant"]


class ChatMessage(_Strict):
    role: Role
    content: Text


class SftLine(_Strict):
    """One training example of `sft/train.jsonl`."""

    messages: list[ChatMessage] = Field(min_length=2)
    source: Text | None = None
    facts: list[Text] = Field(default_factory=list)
    context: list[Text] = Field(default_factory=list)
    kind: Text | None = None
    id: str | None = None
    # "drafted" with the hash of what was drafted (`assistant pack draft`): a line whose
    # content no longer matches its hash was edited by a person and is kept by a new draft
    origin: str | None = None
    draft: str | None = None

    @model_validator(mode="after")
    def _user_then_assistant(self) -> SftLine:
        if not any(m.role == "user" for m in self.messages):
            raise ValueError("messages need at least one user message")
        if self.messages[-1].role != "assistant":
            raise ValueError("the last message must be the assistant's answer")
        return self


class EvalLine(BaseModel):
    """One evaluation question of `eval/qa.jsonl`; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    question: Text
    answer: str | None = None
    source: Text | None = None
    facts: list[Text] = Field(default_factory=list)
    out_of_scope: bool = False
    domain: str | None = None
    # "dev" (tune on it) or "test" (report on it); without one, a hash of the question decides.
    split: Literal["dev", "test"] | None = None

    @model_validator(mode="after")
    def _source_unless_out_of_scope(self) -> EvalLine:
        if not self.out_of_scope and not self.source:
            raise ValueError("source is required unless out_of_scope is true")
        return self


def over_global_settings(data: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """A copy of raw pack.toml data whose [retrieval] and [generation] are the global sections
    with the pack's own keys applied on top."""
    merged = dict(data)
    for section in ("retrieval", "generation"):
        body = merged.get(section, {})
        if isinstance(body, dict):
            merged[section] = {**getattr(settings, section).model_dump(), **body}
    return merged


# ----------------------------------------------------------------------------- reading pack.toml

_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_\-]+)\s*=""")


def _key_lines(text: str) -> dict[str, int]:
    """`section.key` (or `key` at the top) -> 1-based line where it is set; a table -> its line.

    A light scan, good enough to point at the line of a well-formed file's key; multi-line
    strings are skipped so their contents are never taken for keys.
    """
    lines: dict[str, int] = {}
    section = ""
    in_multiline: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if raw.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        if match := _TABLE.match(raw):
            section = match.group(1).strip().strip("\"'")
            lines.setdefault(section, number)
            continue
        if match := _KEY.match(raw):
            key = match.group(1).strip("\"'")
            lines.setdefault(f"{section}.{key}" if section else key, number)
            rest = raw[match.end() :]
            for quote in ('"""', "'''"):
                if rest.count(quote) % 2 == 1:
                    in_multiline = quote
    return lines


def _toml_error_line(exc: tomllib.TOMLDecodeError) -> int | None:
    match = re.search(r"at line (\d+)", str(exc))
    return int(match.group(1)) if match else getattr(exc, "lineno", None)


def check_pack_toml(
    pack: DomainPack, settings: Settings | None = None
) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The raw pack.toml data (None if unreadable) and the problems found in it, its partial
    sections checked on top of `settings` (default: the packaged defaults)."""
    file = str(pack.pack_toml)
    try:
        raw = pack.pack_toml.read_bytes()
    except FileNotFoundError:
        return None, [Problem(file, None, None, "pack.toml is missing: every pack needs one")]
    except OSError as exc:
        return None, [Problem(file, None, None, f"cannot read pack.toml: {exc.strerror}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        message = f"not valid UTF-8 (byte {exc.start}); re-save the file as UTF-8"
        return None, [Problem(file, line, None, message)]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [Problem(file, _toml_error_line(exc), None, f"not valid TOML: {exc}")]
    except RecursionError:  # tomllib recurses once per nested array or inline table
        return None, [Problem(file, None, None, TOO_DEEP)]
    line_of = _key_lines(text)
    problems: list[Problem] = []
    try:
        PackConfig.model_validate(data, context={"settings": settings})
    except ValidationError as exc:
        problems.extend(pydantic_problems(exc, file, line_of))
    name = data.get("name")
    if isinstance(name, str) and name != pack.root.name:
        message = f"name {name!r} must equal the pack's folder name {pack.root.name!r}"
        problems.append(Problem(file, line_of.get("name"), "name", message))
    return (None if problems else data), problems


def load_pack_config(pack: DomainPack, loaded: LoadedSettings | None = None) -> PackConfig:
    """The pack's validated pack.toml; the retrieval/generation keys it leaves out take the
    values of `loaded` (the global settings), else the packaged defaults. Raises
    AssistantError naming file, line and key."""
    settings = loaded.settings if loaded is not None else packaged_settings()
    data, problems = check_pack_toml(pack, settings)
    if problems or data is None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more; run `assistant pack validate {pack.name}`)"
        raise AssistantError(f"{first}{more if len(problems) > 1 else ''}")
    return PackConfig.model_validate(data, context={"settings": settings})
