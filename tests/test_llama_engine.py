"""The default answer engine: llama.cpp from the prebuilt xllamacpp wheel, with the real packaged
model and the shipped adapters. Each pack answers in a real process with a clean stderr;
alternating packs never borrows another adapter's prompt cache; a cancelled answer leaves the
engine ready; where the native library cannot load, answers come from torch with one notice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from settings_helpers import with_models

from assistant.errors import AssistantError, MissingDependencyError
from assistant.packs.locate import DomainPack, find_pack
from assistant.runtime import llama_engine

ASSISTANT = str(Path(sys.executable).parent / "assistant")
QUESTIONS = {
    "diabetes": "What A1C range means prediabetes?",
    "contracts": "What does the indemnification clause require?",
    "support": "How do I add a folder to share?",
    "penguin-wood": "How long can jointed edges sit before I glue them?",
}


@pytest.fixture
def llama_settings(settings):
    return with_models(settings, backend="llama_cpp")


@pytest.fixture
def router(llama_settings):
    from assistant.answering.router import Router

    return Router(llama_settings)


def _answer(router, pack: str, question: str, **options):
    return router.answer(question, pack, max_tokens=options.pop("max_tokens", 40), **options)


@pytest.mark.parametrize("pack", sorted(QUESTIONS))
def test_each_pack_answers_in_a_real_process_with_a_clean_stderr(pack: str) -> None:
    """No llama.cpp log lines, no loading bars, no notices: stdout is the JSON answer alone."""
    done = subprocess.run(
        [ASSISTANT, "ask", pack, QUESTIONS[pack], "--max-tokens", "24", "--json"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    answer = json.loads(done.stdout)
    assert answer["pack"] == pack and answer["adapter"] == pack
    assert answer["answer"].strip() and not answer["declined"]


def test_alternating_packs_gives_each_the_answer_it_gives_alone(router, llama_settings) -> None:
    """Every request names every adapter, so a prompt cache computed under one pack's adapter
    never serves another's answer: A, B, A each equal that pack's answer in a fresh engine."""
    from assistant.answering.router import Router

    sequence = [("support", QUESTIONS["support"]), ("penguin-wood", QUESTIONS["penguin-wood"])]
    first = [_answer(router, pack, question).answer for pack, question in sequence]
    again = _answer(router, *sequence[0]).answer
    llama_engine._engines.clear()  # a new server: nothing cached, only this pack loaded
    alone = _answer(Router(llama_settings), *sequence[1]).answer
    assert again == first[0]
    assert first[1] == alone


def test_a_cancelled_answer_leaves_the_engine_ready(router) -> None:
    question = QUESTIONS["diabetes"]
    expected = _answer(router, "diabetes", question)
    stream = router.stream(question, "diabetes", max_tokens=200)
    pieces = iter(stream)
    next(pieces)
    stream.close()
    assert not stream.done
    assert _answer(router, "diabetes", question).answer == expected.answer


def test_the_token_limit_and_a_cancel_stop_generation(router) -> None:
    from assistant.runtime.generation import GenerationOptions, chat_token_ids

    generator = router.engine()
    ids = chat_token_ids(generator.tokenizer, [{"role": "user", "content": "Count to fifty."}])
    limited = generator.generate(
        ids, GenerationOptions.plain(12, extra={"min_new_tokens": 12}), adapter=None
    )
    assert limited.text() and limited.stats.new_tokens == 12
    assert limited.stats.finish_reason == "length"

    cancel = threading.Event()
    stream = generator.generate(ids, GenerationOptions.plain(200), adapter=None, cancel=cancel)
    next(iter(stream))
    cancel.set()
    stream.text()
    assert stream.stats.finish_reason == "cancelled" and stream.stats.new_tokens < 200


def test_llama_cpp_answers_as_the_transformers_path_does(router, settings) -> None:
    """The F16 re-encoding, the GGUF LoRA export, the prompt, the repetition penalty, the
    decline margin and the repeat guard together reproduce the torch answer; a drift in any of
    them (a rope permutation, a rule left out) changes the tokens."""
    from assistant.answering.router import Router

    torch_router = Router(with_models(settings, backend="transformers"))
    for pack in ("penguin-wood", "diabetes"):
        llama = _answer(router, pack, QUESTIONS[pack], max_tokens=64)
        torch_answer = _answer(torch_router, pack, QUESTIONS[pack], max_tokens=64)
        assert llama.answer == torch_answer.answer


def test_without_the_native_engine_torch_answers_with_one_notice(tmp_path) -> None:
    """An xllamacpp that cannot load (here a stand-in module that raises ImportError, as the
    real one does on a machine its library does not fit) makes `ask` answer through torch."""
    (tmp_path / "xllamacpp.py").write_text("raise ImportError('libllama.so: wrong ELF class')\n")
    done = subprocess.run(
        [ASSISTANT, "ask", "penguin-wood", QUESTIONS["penguin-wood"], "--max-tokens", "8"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    notices = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(notices) == 1 and "transformers engine" in notices[0], done.stderr
    assert "wrong ELF class" in notices[0]


def test_a_cpu_without_avx2_is_refused_before_the_library_loads(tmp_path, monkeypatch) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse sse2 avx fma\n")
    monkeypatch.setattr(llama_engine.platform, "machine", lambda: "x86_64")
    assert llama_engine.missing_cpu_flags(cpuinfo) == ["avx2", "f16c"]
    monkeypatch.setattr(llama_engine, "missing_cpu_flags", lambda: ["avx2"])
    with pytest.raises(MissingDependencyError, match="AVX2"):
        llama_engine.import_xllamacpp()


def test_a_non_gguf_base_model_is_refused_in_one_line(settings, tmp_path) -> None:
    from assistant.runtime.gguf_files import base_gguf

    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(AssistantError, match="needs a GGUF base model"):
        base_gguf(with_models(settings, base_model=str(tmp_path)))


def test_a_retrained_adapter_is_exported_again_and_the_old_export_removed(
    settings, tmp_path
) -> None:
    import shutil

    from assistant.runtime.gguf_files import exported_lora

    base = settings.settings.models.base_model
    pack = DomainPack("penguin-wood", tmp_path / "penguin-wood")
    shutil.copytree(find_pack("penguin-wood").adapter(base).dir, pack.adapter_dir_for(base))
    before = exported_lora(pack, settings)
    assert before.parent.name == base  # the exports of each base in a folder of their own
    stamp = before.stat().st_mtime_ns
    assert exported_lora(pack, settings) == before and before.stat().st_mtime_ns == stamp
    weights = pack.adapter(base).weights
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of the last weight: the same size, another adapter
    weights.write_bytes(bytes(data))
    after = exported_lora(pack, settings)
    assert after != before and after.is_file() and not before.exists()


def _ask(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}]


def _reply(router, messages, **options) -> str:
    from assistant.runtime.generation import GenerationOptions, chat_token_ids

    generator = router.engine()
    ids = chat_token_ids(generator.tokenizer, messages)
    plain = GenerationOptions.plain(options.pop("max_new_tokens", 12), **options)
    return generator.generate(ids, plain, adapter=None).text()


def test_the_decline_starts_only_when_the_model_is_sure_enough(router, base_model) -> None:
    """The decline margin through llama.cpp's first-token probabilities: the same threshold
    behaviour as the torch engine's test, around the probability torch computes."""
    import torch

    from assistant.answering.prompts import NOT_COVERED, says_not_covered
    from assistant.runtime.adapters import bank_for
    from assistant.runtime.processors import decline_token
    from assistant.runtime.torch_engine import encode_chat

    messages: list[dict[str, str]] = []
    for question in ("What colour is the kiln?",):  # Qwen: 0.69 after one turn, 0.985 after three
        messages += [*_ask(question), {"role": "assistant", "content": NOT_COVERED}]
    messages += _ask("How tall is the tower?")
    token = decline_token(base_model.tokenizer)
    with bank_for(base_model).using(None) as model, torch.inference_mode():
        logits = model(encode_chat(base_model, messages)).logits[0, -1]
    chance = float(logits.softmax(-1)[token])
    assert 0.05 < chance < 0.98, chance
    opening = base_model.tokenizer.decode([token])
    assert _reply(router, messages).startswith(opening)
    assert _reply(router, messages, decline_min_prob=chance - 0.02).startswith(opening)
    assert not _reply(router, messages, decline_min_prob=chance + 0.02).startswith(opening)
    assert not says_not_covered(_reply(router, messages, decline_min_prob=1.0))


def test_no_run_repeats_within_an_answer_but_the_prompt_can_be_copied(router) -> None:
    tokenizer = router.engine().tokenizer

    def repeated(text: str, size: int) -> bool:
        ids = tokenizer.encode(text, add_special_tokens=False)
        runs = [tuple(ids[i : i + size]) for i in range(len(ids) - size + 1)]
        return len(runs) != len(set(runs))

    looping = _ask("What is penguin wood? Penguin wood is penguin wood is penguin wood is")
    text = _reply(router, looping, max_new_tokens=60)
    assert repeated(text, 6), text  # left alone, the model goes round in circles
    text = _reply(router, looping, max_new_tokens=60, no_repeat_ngram=6)
    assert not repeated(text, 6), text
    copy = _ask("Repeat after me: the kiln dries penguin wood slowly.")
    text = _reply(router, copy, max_new_tokens=60, no_repeat_ngram=6)
    assert "kiln dries penguin wood slowly" in text.lower()  # copying the prompt stays allowed
