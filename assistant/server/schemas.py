"""Request and response models of the HTTP API (the OpenAI chat format, plus `/v1/ask`).

Requests accept unknown fields (OpenAI clients send many: top_p, n, user...) and ignore them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Messages (or history turns) one request may carry: far more than the model's context holds
# (the answer uses the newest that fit, at most compose.MAX_TURNS), few enough that a 1 MB body
# of tiny turns is refused before any work.
MAX_MESSAGES = 1000


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ChatMessage(_Open):
    role: str
    # a string, or OpenAI content parts ([{"type": "text", "text": ...}]); None for tool calls
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if not self.content:
            return ""
        return "".join(
            str(part.get("text", "")) for part in self.content if part.get("type") == "text"
        )


class ChatRequest(_Open):
    model: str
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=4096)
    temperature: float | None = Field(default=None, ge=0, le=2)  # accepted, not used

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class HistoryTurn(_Open):
    role: Literal["user", "assistant"]
    content: str


class AskRequest(_Open):
    pack: str | None = None  # None or "auto": the router picks the pack (or declines)
    question: str
    history: list[HistoryTurn] = Field(default_factory=list, max_length=MAX_MESSAGES)
    max_tokens: int | None = Field(default=None, ge=1, le=4096)


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: ResponseMessage
    finish_reason: str


class ChatResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    # extras beyond OpenAI's format: what `assistant ask --json` reports
    pack: str | None
    declined: bool
    decline_reason: str | None
    sources: list[dict[str, Any]]
    citations: list[int]


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "assistant"
    title: str
    description: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def error_body(
    message: str,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """OpenAI's error JSON."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
