"""The domain pack file formats as typed models: `pack.toml`, `sft/train.jsonl` lines and
`eval/qa.jsonl` lines, plus `load_pack_config`, which loads a pack's settings for use.

Every section of pack.toml except the identity keys at the top has defaults; the retrieval and
generation keys that also exist in the global settings default to the global values. Unknown keys
are errors (a typo must not be silently ignored). Checking a whole pack, with every problem at
once, lives in `assistant.packs.validation`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from assistant.errors import AssistantError
from assistant.packs.locate import DomainPack
from assistant.settings import LoadedSettings

# A string that must hold something other than whitespace.
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

AnswerMode = Literal["generate", "extractive", "hybrid"]
StyleKind = Literal["none", "safety_reminder", "numbered_steps", "clause_structure", "care_team"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PackRetrieval(_Strict):
    k: int = Field(default=4, ge=1, le=50)
    chunk_tokens: int = Field(default=200, ge=16, le=2048)
    chunk_overlap: int = Field(default=30, ge=0, le=1024)
    decline_threshold: float = Field(default=0.30, ge=-1.0, le=1.0)
    route_threshold: float = Field(default=0.35, ge=-1.0, le=1.0)
    # Each passage in a prompt is cut to the words that best match the question (0: whole).
    passage_words: int = Field(default=80, ge=0, le=2000)

    @model_validator(mode="after")
    def _overlap_below_chunk(self) -> PackRetrieval:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError("chunk_overlap must be smaller than chunk_tokens")
        return self


class PackGeneration(_Strict):
    max_new_tokens: int = Field(default=200, ge=1, le=4096)
    temperature: float = Field(default=0.0, ge=0.0, le=5.0)
    top_p: float = Field(default=0.9, gt=0.0, le=1.0)
    repetition_penalty: float = Field(default=1.05, ge=1.0, le=3.0)
    decline_min_prob: float = Field(default=0.5, ge=0.0, le=1.0)
    no_repeat_ngram: int = Field(default=8, ge=0, le=64)


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
    # Answer targets: "rewrite" keeps the written reply (citation after its fact sentence);
    # "quote_first" opens it with the passage's own fact sentences, verbatim and cited.
    targets: Literal["rewrite", "quote_first"] = "rewrite"
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
    base_model: str | None = None


class PackAttribution(_Strict):
    text: str = ""
    license: str = ""
    url: str = ""


class PackConfig(_Strict):
    """The contents of a pack.toml."""

    name: Text
    title: Text
    description: Text
    persona: Text
    scope: Text
    decline_message: Text
    answer_mode: AnswerMode = "generate"
    retrieval: PackRetrieval = Field(default_factory=PackRetrieval)
    generation: PackGeneration = Field(default_factory=PackGeneration)
    training: PackTraining = Field(default_factory=PackTraining)
    style: PackStyle = Field(default_factory=PackStyle)
    adapter: PackAdapter = Field(default_factory=PackAdapter)
    attribution: PackAttribution = Field(default_factory=PackAttribution)


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

    @model_validator(mode="after")
    def _source_unless_out_of_scope(self) -> EvalLine:
        if not self.out_of_scope and not self.source:
            raise ValueError("source is required unless out_of_scope is true")
        return self


def apply_global_defaults(data: dict[str, Any], loaded: LoadedSettings | None) -> dict[str, Any]:
    """A copy of raw pack.toml data whose missing retrieval/generation keys take global values."""
    if loaded is None:
        return data
    merged = dict(data)
    for section in ("retrieval", "generation"):
        body = merged.get(section, {})
        if not isinstance(body, dict):
            continue
        body = dict(body)
        global_values = getattr(loaded.settings, section).model_dump()
        model = PackRetrieval if section == "retrieval" else PackGeneration
        for key, value in global_values.items():
            if key in model.model_fields:
                body.setdefault(key, value)
        merged[section] = body
    return merged


def load_pack_config(pack: DomainPack, loaded: LoadedSettings | None = None) -> PackConfig:
    """The pack's validated pack.toml; missing retrieval/generation keys take the values of
    `loaded` (the global settings) when given. Raises AssistantError naming file, line and key."""
    from assistant.packs.validation import check_pack_toml

    data, problems = check_pack_toml(pack)
    if problems or data is None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more; run `assistant pack validate {pack.name}`)"
        raise AssistantError(f"{first}{more if len(problems) > 1 else ''}")
    try:
        return PackConfig.model_validate(apply_global_defaults(data, loaded))
    except Exception as exc:  # global values out of a pack's range: name the pack file
        raise AssistantError(f"{pack.pack_toml}: {exc}") from None
