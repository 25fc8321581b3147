"""The chat data of a training run: the pack's SFT examples read and checked, turned into
RAFT prompts with passages from the pack's index, each kept only if it fits max_length."""

from __future__ import annotations

import math
from typing import Any

from assistant.errors import AssistantError
from assistant.packs.format import PackConfig, SftLine, load_pack_config
from assistant.packs.locate import DomainPack
from assistant.settings import LoadedSettings
from assistant.training.raft import TrainExample, build_training_set


def read_sft_lines(pack: DomainPack) -> list[SftLine]:
    """The pack's SFT examples; a malformed line is an error pointing at `pack validate`."""
    if not pack.sft_file.is_file():
        raise AssistantError(f"{pack.sft_file} is missing: add training examples first")
    lines = []
    # Lines end at "\n" only, as in validate_pack (str.splitlines() also breaks at U+2028).
    for number, raw in enumerate(pack.sft_file.read_text(encoding="utf-8").split("\n"), 1):
        if not raw.strip():
            continue
        try:
            lines.append(SftLine.model_validate_json(raw))
        except ValueError:
            raise AssistantError(
                f"{pack.sft_file}:{number} is not a valid example: run"
                f" `assistant pack validate {pack.name}` for details"
            ) from None
    if not lines:
        raise AssistantError(f"{pack.sft_file} has no examples")
    return lines


def count_tokens(tokenizer: Any, messages: list[dict[str, str]], completion: str) -> int:
    full = [*messages, {"role": "assistant", "content": completion}]
    return len(tokenizer.apply_chat_template(full, tokenize=True, return_dict=True)["input_ids"])


def prepare(pack: DomainPack, loaded: LoadedSettings) -> tuple[PackConfig, list[TrainExample], Any]:
    """Config, RAFT examples that fit max_length (one pass per started epoch, each with its
    own passages), and the tokenizer."""
    from transformers import AutoTokenizer

    from assistant.knowledge import open_index
    from assistant.runtime.models import resolve_base_path

    config = load_pack_config(pack, loaded)
    lines = read_sft_lines(pack)
    index = open_index(pack, loaded)
    # the tokenizer alone: training loads its own float32 model (the inference model would be
    # converted to models.quantize for nothing)
    tokenizer = AutoTokenizer.from_pretrained(resolve_base_path(loaded))
    limit = config.training.max_length

    def fits(messages: list[dict[str, str]], completion: str) -> bool:
        return count_tokens(tokenizer, messages, completion) <= limit

    rounds = math.ceil(config.training.epochs)
    examples = build_training_set(lines, config, index, fits, rounds=rounds)
    return config, examples, tokenizer
