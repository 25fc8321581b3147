"""The answer path's tokenizers without transformers give the ids transformers gives: the chat
prompt of every eval question of every pack (with its pack's persona and passages), for SmolLM2
and on a few prompts for Qwen2.5 (another tokenizer and chat template), and the embedder's word
pieces of the packs' documents."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from settings_helpers import with_models

from assistant.packs.locate import list_packs

QWEN = "qwen2.5-coder-0.5b"


@pytest.fixture(scope="module")
def tokenizers(settings):
    from transformers import AutoTokenizer

    from assistant.runtime.models import load_tokenizer, resolve_base_path

    return load_tokenizer(settings), AutoTokenizer.from_pretrained(resolve_base_path(settings))


def _prompts(pack):
    from assistant.answering.prompts import PromptPassage, build_messages
    from assistant.packs.format import load_pack_config

    config = load_pack_config(pack)
    docs = sorted(p for p in pack.docs_dir.rglob("*") if p.is_file())[:3]
    passages = [PromptPassage(p.read_text(errors="replace")[:1500], p.name, "") for p in docs]
    for line in pack.eval_file.read_text().splitlines():
        question = json.loads(line)["question"]
        yield build_messages(config.persona, question, passages, (), 120)


def _assert_same_ids(light, reference, messages, add_generation_prompt: bool = True) -> None:
    ours = light.apply_chat_template(messages, add_generation_prompt=add_generation_prompt)
    theirs = reference.apply_chat_template(
        messages, add_generation_prompt=add_generation_prompt, return_dict=True
    )["input_ids"]
    assert ours == list(theirs)
    assert light.decode(ours, skip_special_tokens=True) == reference.decode(
        ours, skip_special_tokens=True
    )


def test_chat_prompts_tokenize_as_transformers_does(tokenizers) -> None:
    light, reference = tokenizers
    count = 0
    for pack in list_packs():
        for messages in _prompts(pack):
            _assert_same_ids(light, reference, messages)
            count += 1
    assert count > 150
    assert light.eos_token_id == reference.eos_token_id
    assert light.convert_tokens_to_ids("<|im_end|>") == reference.convert_tokens_to_ids(
        "<|im_end|>"
    )


def test_qwen_chat_prompts_tokenize_as_transformers_does(settings) -> None:
    from transformers import AutoTokenizer

    from assistant.runtime.bases import BASES, installed
    from assistant.runtime.models import load_tokenizer, resolve_base_path

    if not installed(BASES[QWEN], settings):
        pytest.skip(f"{QWEN} is not installed: {BASES[QWEN].install}")
    loaded = with_models(settings, base_model=QWEN)
    light = load_tokenizer(loaded)
    reference = AutoTokenizer.from_pretrained(resolve_base_path(loaded))
    conversations = [m for pack in list_packs() for m in itertools.islice(_prompts(pack), 3)]
    conversations += [
        # no system turn: Qwen's template writes its own
        [{"role": "user", "content": "Größe? 漢字 — tabs\tand  spaces\n\nend"}],
        [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "What is a kiln?"},
            {"role": "assistant", "content": "An oven for drying wood [1]."},
            {"role": "user", "content": "How hot?"},
        ],
    ]
    for messages in conversations:
        _assert_same_ids(light, reference, messages)
    _assert_same_ids(light, reference, conversations[-1], add_generation_prompt=False)
    assert (
        light.eos_token_id
        == reference.eos_token_id
        == reference.convert_tokens_to_ids("<|im_end|>")
    )
    assert light.pad_token_id == reference.pad_token_id


def test_the_embedders_word_pieces_are_the_same(settings) -> None:
    from transformers import AutoTokenizer

    from assistant.runtime.models import resolve_embedder_path
    from assistant.runtime.onnx_embedder import WordPieceTokenizer

    folder = resolve_embedder_path(settings)
    reference = AutoTokenizer.from_pretrained(folder)
    ours = WordPieceTokenizer(folder, 256)
    texts = ["héllo wörld ﬁne", "", "x " * 600]
    for pack in list_packs():
        for path in sorted(p for p in pack.docs_dir.rglob("*") if p.is_file())[:5]:
            text = path.read_text(errors="replace")
            texts += [text[i : i + 1500] for i in range(0, min(len(text), 6000), 1500)]
    for start in range(0, len(texts), 16):
        batch = texts[start : start + 16]
        expected = reference(
            batch, padding=True, truncation=True, max_length=256, return_tensors="np"
        )
        got = ours.batch(batch)
        for name in ("input_ids", "attention_mask", "token_type_ids"):
            assert np.array_equal(expected[name], got[name]), name
        assert [ours.tokenize(t) for t in batch] == [reference.tokenize(t) for t in batch]
