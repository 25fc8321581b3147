"""The base model's tokenizer and chat template without transformers (which imports torch: ~3 s
before an answer could start). The `tokenizers` library reads the same tokenizer.json, and the
chat template is rendered by Jinja the way transformers renders it, so the token ids are the
same (tests/test_tokenizer.py compares them on every eval question's prompt).

`ChatTokenizer` offers the part of the transformers tokenizer interface the answer path uses.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.errors import DamagedDataError


class ChatTokenizer:
    """Encode, decode and apply the chat template of a model folder's tokenizer."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        try:
            self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            config = json.loads((folder / "tokenizer_config.json").read_text("utf-8"))
            template = config.get("chat_template")
            template_file = folder / "chat_template.jinja"
            if template_file.is_file():
                template = template_file.read_text("utf-8")
        except Exception as exc:  # noqa: BLE001  tokenizers raises a plain Exception, not OSError
            raise DamagedDataError(
                f"the tokenizer in {folder} cannot be read ({exc}): delete that folder to have"
                " it made again"
            ) from None
        if not template:
            raise DamagedDataError(
                f"{folder} has no chat template: delete it to have it made again"
            )
        self._template = _compile(template)
        self._special = {
            name: config.get(name) for name in ("bos_token", "eos_token", "pad_token", "unk_token")
        }
        self.eos_token_id = self.convert_tokens_to_ids(self._special["eos_token"])
        pad = self._special["pad_token"]
        self.pad_token_id = self.convert_tokens_to_ids(pad) if pad else None

    def convert_tokens_to_ids(self, token: str | None) -> int | None:
        return self._tokenizer.token_to_id(token) if token else None

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=add_special_tokens).ids

    def __call__(self, text: str) -> dict[str, list[int]]:
        return {"input_ids": self.encode(text)}

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return self._tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def render_chat(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool) -> str:
        return self._template.render(
            messages=list(messages), add_generation_prompt=add_generation_prompt, **self._special
        )

    def apply_chat_template(
        self,
        messages: Sequence[dict[str, str]],
        add_generation_prompt: bool = False,
        tokenize: bool = True,
        return_dict: bool = False,
    ) -> Any:
        text = self.render_chat(messages, add_generation_prompt)
        if not tokenize:
            return text
        ids = self.encode(text, add_special_tokens=False)
        return {"input_ids": ids} if return_dict else ids


def _compile(template: str) -> Any:
    """The template in a sandbox, with the options and helpers transformers gives it."""
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise ValueError(f"chat template: {message}")

    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
    )
    environment.filters["tojson"] = lambda value, **kw: json.dumps(value, ensure_ascii=False, **kw)
    environment.globals["raise_exception"] = raise_exception
    return environment.from_string(template)
