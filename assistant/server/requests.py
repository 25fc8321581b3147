"""Reading a request: its JSON body as a schema, and a chat's messages as question + history."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ValidationError

from assistant.server.errors import ApiError, validation_error
from assistant.server.schemas import ChatMessage


async def parse(request: Request, model: type[BaseModel]) -> Any:
    """The JSON body as `model`, whatever the Content-Type (curl -d sends a form type)."""
    raw = await request.body()
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"the request body is not valid JSON ({exc})") from None
    except RecursionError:  # json recurses once per nested array or object
        raise ApiError(400, "the request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc.errors()) from None


def split_messages(messages: list[ChatMessage]) -> tuple[str, list[dict[str, str]]]:
    """The last user message is the question; the user/assistant turns before it, the history.
    System (and tool) messages are ignored: each pack brings its own persona."""
    last = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last is None:
        raise ApiError(400, "messages need at least one user message", param="messages")
    question = messages[last].text().strip()
    if not question:
        raise ApiError(400, "the last user message is empty", param="messages")
    history = [
        {"role": m.role, "content": m.text()}
        for m in messages[:last]
        if m.role in ("user", "assistant") and m.text()
    ]
    return question, history
