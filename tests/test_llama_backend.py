"""The optional llama.cpp answer backend (`models.backend = "llama_cpp"`): it answers through the
router with each pack's adapter, reuses the cached system turn only when that is exact, and
stops on cancel. Without llama-cpp-python installed (the default install, and CI, which does not
compile llama.cpp) the setting must fail in one line that says what to install; the tests that
run llama.cpp skip there."""

from __future__ import annotations

import importlib.util
import sys
import threading

import pytest
from click.testing import CliRunner
from settings_helpers import with_models

from assistant.cli import commands  # noqa: F401  (registers the commands)
from assistant.cli.app import cli
from assistant.errors import AssistantError, MissingDependencyError
from assistant.packs.locate import find_pack
from assistant.runtime import llama_cpp as llama_backend

needs_llama = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None, reason="the llama extra is not installed"
)


@pytest.fixture
def llama_settings(settings):
    return with_models(settings, backend="llama_cpp")


def test_without_llama_cpp_the_backend_fails_in_one_line(monkeypatch, embedder) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import raises ImportError
    monkeypatch.setattr(llama_backend, "_engines", {})
    monkeypatch.setenv("ASSISTANT_BACKEND", "llama_cpp")
    result = CliRunner().invoke(cli, ["ask", "diabetes", "What is insulin?"])
    assert result.exit_code == MissingDependencyError.exit_code  # 4: a package is missing
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "assistant[llama]" in lines[0] and "models.backend" in lines[0]


def test_a_non_gguf_base_model_is_refused_in_one_line(settings, tmp_path) -> None:
    from assistant.runtime.llama_cpp import base_gguf

    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(AssistantError, match="needs a GGUF base model"):
        base_gguf(with_models(settings, base_model=str(tmp_path)))


@pytest.fixture
def router(llama_settings):
    from assistant.answering.router import Router

    return Router(llama_settings)


@pytest.fixture
def engine(router):
    from assistant.runtime.engine import CONTEXT_TOKENS

    return llama_backend.engine_for(router.loaded, CONTEXT_TOKENS)


def _answer(router, pack: str, question: str, **options):
    return router.answer(question, pack, max_tokens=options.pop("max_tokens", 48), **options)


@needs_llama
def test_a_pack_answers_with_its_adapter_and_cites_a_passage(router) -> None:
    answer = _answer(router, "contracts", "What does the indemnification clause require?")
    assert answer.adapter == "contracts"
    assert answer.answer.strip()
    assert answer.citations
    without = _answer(router, "contracts", "What does the indemnification clause require?",
                      adapter=False)  # fmt: skip
    assert without.adapter is None
    assert without.answer != answer.answer


def _counting_evals(engine, monkeypatch) -> list[int]:
    """Record how many tokens each llama.cpp eval call gets."""
    evaluated: list[int] = []
    real_eval = engine.llm.eval

    def counting_eval(tokens):
        evaluated.append(len(tokens))
        return real_eval(tokens)

    monkeypatch.setattr(engine.llm, "eval", counting_eval)
    return evaluated


@needs_llama
def test_switching_packs_gives_each_pack_its_own_answer_again(router, engine, monkeypatch) -> None:
    question = "How do I add a folder to share?"
    first = _answer(router, "support", question)
    _answer(router, "penguin-wood", "How thick should a penguin-wood panel be?")
    evaluated = _counting_evals(engine, monkeypatch)
    again = _answer(router, "support", question)
    assert again.answer == first.answer
    # back from another pack: the support system turn came from its saved copy
    assert evaluated[0] < first.timings.prompt_tokens - 100


@needs_llama
def test_the_system_turn_is_reused_and_gives_the_same_answer(router, engine, monkeypatch) -> None:
    question = "What is a normal blood sugar level before meals?"
    engine.llm.reset()
    engine._system_turns.clear()
    evaluated = _counting_evals(engine, monkeypatch)
    cold = _answer(router, "diabetes", question, max_tokens=24)
    cold_prefill = evaluated[0] + evaluated[1]  # the system turn, then the rest
    evaluated.clear()
    _answer(router, "diabetes", "What should I do when my sugar is low?", max_tokens=4)
    warm_prefill = evaluated[0]
    evaluated.clear()
    again = _answer(router, "diabetes", question, max_tokens=24)
    assert cold_prefill == cold.timings.prompt_tokens
    assert warm_prefill < cold_prefill - 100  # the persona and rules were not evaluated again
    assert again.answer == cold.answer


@needs_llama
def test_the_token_limit_and_cancel_stop_generation(router) -> None:
    from assistant.runtime.engine import CONTEXT_TOKENS
    from assistant.runtime.generation import GenerationOptions, GenerationStats, chat_token_ids
    from assistant.runtime.llama_cpp import engine_for, stream_tokens

    engine = engine_for(router.loaded, CONTEXT_TOKENS)
    ids = chat_token_ids(engine.tokenizer, [{"role": "user", "content": "Count to fifty."}])
    stats = GenerationStats()
    options = GenerationOptions.plain(max_new_tokens=12, extra={"min_new_tokens": 12})
    text = "".join(stream_tokens(engine, ids, options, adapter=None, stats=stats))
    assert text and stats.new_tokens == 12 and stats.finish_reason == "length"

    cancel = threading.Event()
    stats = GenerationStats()
    pieces = stream_tokens(
        engine, ids, GenerationOptions.plain(max_new_tokens=200), adapter=None, cancel=cancel,
        stats=stats,
    )  # fmt: skip
    next(pieces)
    cancel.set()
    list(pieces)
    assert stats.finish_reason == "cancelled" and stats.new_tokens < 200


def test_a_retrained_adapter_of_the_same_size_is_exported_again(settings, tmp_path) -> None:
    import shutil

    from assistant.packs.locate import DomainPack

    source = find_pack("penguin-wood")
    pack = DomainPack("penguin-wood", tmp_path / "penguin-wood")
    shutil.copytree(source.adapter_dir, pack.adapter_dir)
    before = llama_backend.exported_lora_path(pack, settings)
    weights = pack.adapter_dir / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of the last weight
    weights.write_bytes(bytes(data))
    assert llama_backend.exported_lora_path(pack, settings) != before


@needs_llama
def test_an_adapter_is_exported_once_and_reused(engine, llama_settings) -> None:
    from assistant.settings import cache_dir

    pack = find_pack("penguin-wood")
    folder = cache_dir(llama_settings.settings) / "gguf-lora"
    folder.mkdir(parents=True, exist_ok=True)
    stale = folder / "penguin-wood-0123456789abcdef.gguf"  # from an earlier training
    stale.write_bytes(b"old")
    exported = llama_backend.exported_lora_path(pack, llama_settings)
    exported.unlink(missing_ok=True)
    engine.adapters.pop(pack.name, None)
    engine.load_adapter(pack)
    assert exported.is_file() and not stale.exists()
    stamp = exported.stat().st_mtime_ns
    engine.adapters.pop(pack.name)
    engine.load_adapter(pack)
    assert exported.stat().st_mtime_ns == stamp


@needs_llama
def test_llama_cpp_answers_as_the_transformers_path_does(router, settings) -> None:
    """The F16 re-encoding, the GGUF LoRA export, the prompt and the decoding rules together
    reproduce the transformers answer (measured: 42 of 42 penguin-wood eval answers); a drift
    in any of them (a rope permutation, a processor left out) changes the tokens."""
    from assistant.answering.router import Router

    question = "How long can jointed edges sit before I glue them?"
    llama = _answer(router, "penguin-wood", question, max_tokens=40)
    torch_answer = _answer(Router(settings), "penguin-wood", question, max_tokens=40)
    assert llama.answer == torch_answer.answer


@needs_llama
def test_an_answer_in_a_real_process_prints_nothing_but_the_answer() -> None:
    """No llama.cpp log lines (it logs every tensor it loads unless told not to) and no
    loading bars on stderr."""
    import json
    import os
    import subprocess
    from pathlib import Path

    done = subprocess.run(
        [str(Path(sys.executable).parent / "assistant"), "ask", "penguin-wood",
         "How long does 50 mm penguin wood stock take in the kiln?", "--max-tokens", "8",
         "--json"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300,
        env={**os.environ, "ASSISTANT_BACKEND": "llama_cpp"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["pack"] == "penguin-wood" and answer["adapter"] == "penguin-wood"
    assert done.stderr == "", done.stderr
