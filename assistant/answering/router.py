"""The router: question -> pack (or decline) -> retrieval -> prompt -> generation -> Answer.

`Router.stream()` yields text pieces as they are generated and ends with the `Answer`;
`Router.answer()` returns the `Answer` alone. With no pack given, every pack is scored (its best
dense and BM25 retrieval, and the question's similarity to its description) and the best one
answers, unless none is confident enough. A pack loses up to `LEXICAL_WEIGHT` when the
question's words are missing from its best BM25 passages.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from assistant.answering.answers import Answer, Source, Timings, check_citations
from assistant.answering.prompts import PromptPassage, build_messages, says_not_covered
from assistant.errors import AssistantError
from assistant.packs.format import PackConfig, load_pack_config
from assistant.packs.locate import DomainPack, find_pack, list_packs
from assistant.settings import LoadedSettings
from assistant.text import terms

MAX_QUESTION_TOKENS = 1000
CONTEXT_TOKENS = 4096  # prompt + answer budget; SmolLM2 allows 8192, the CPU makes less wise
DESCRIPTION_WEIGHT = 0.25  # how much the pack description counts next to the best passage
# How much is taken off a pack's score when the question's words are missing from its best
# BM25 passages: an everyday question ("How do I knit a scarf?") can sit close to a pack in
# embedding space while sharing none of its words; in-pack questions nearly always share most.
LEXICAL_WEIGHT = 0.2
LEXICAL_PASSAGES = 3


@dataclass
class PackHandle:
    pack: DomainPack
    config: PackConfig
    index: Any
    description_vector: Any = None


@dataclass
class RouteDecision:
    pack: str | None
    scores: dict[str, float]
    reason: str | None = None


class _QueryCache:
    """The shared embedder, remembering the last few single-text encodings. Routing searches
    every pack with the same question and retrieval searches once more; without this the
    question was embedded once per pack plus twice more (the embed dominates routing time)."""

    SIZE = 32

    def __init__(self, model: Any) -> None:
        self.model = model
        self._vectors: dict[tuple, Any] = {}
        self._lock = threading.Lock()

    def encode(self, texts: Any, **kwargs: Any) -> Any:
        single = isinstance(texts, list | tuple) and len(texts) == 1 and isinstance(texts[0], str)
        if not single:
            return self.model.encode(texts, **kwargs)
        key = (
            texts[0],
            bool(kwargs.get("normalize_embeddings")),
            bool(kwargs.get("convert_to_numpy", True)),
        )
        with self._lock:
            found = self._vectors.get(key)
        if found is None:
            found = self.model.encode(list(texts), **kwargs)
            with self._lock:
                if len(self._vectors) >= self.SIZE:
                    self._vectors.pop(next(iter(self._vectors)))
                self._vectors[key] = found
        return found.copy() if hasattr(found, "copy") else found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)


def _sources(pack: str, hits: Sequence[Any]) -> list[Source]:
    """The answer's numbered sources, one per retrieved passage, in prompt order."""
    return [
        Source(
            number=i,
            pack=pack,
            path=h.path,
            title=h.title,
            section=h.section,
            page=h.page,
            start=h.start,
            end=h.end,
            score=round(h.score, 5),
            dense_score=None if h.dense_score is None else round(h.dense_score, 4),
            text=h.text,
        )
        for i, h in enumerate(hits, start=1)
    ]


def _history_messages(history: Sequence[Any]) -> list[dict[str, str]]:
    turns = []
    for turn in history:
        role = turn.get("role") if isinstance(turn, dict) else getattr(turn, "role", None)
        content = turn.get("content") if isinstance(turn, dict) else getattr(turn, "content", "")
        if role in ("user", "assistant") and content:
            turns.append({"role": role, "content": str(content)})
    return turns


class Router:
    """Answers questions from the packs with the one shared base model and its adapters."""

    def __init__(self, loaded: LoadedSettings, packs: Sequence[DomainPack] | None = None) -> None:
        self.loaded = loaded
        self._packs = list(packs) if packs is not None else None
        self._handles: dict[str, PackHandle] = {}
        self._lock = threading.RLock()
        self._embedder: _QueryCache | None = None

    # ----- packs --------------------------------------------------------------------------

    def packs(self) -> list[DomainPack]:
        return self._packs if self._packs is not None else list_packs()

    def handle(self, name: str) -> PackHandle:
        with self._lock:
            if name not in self._handles:
                from assistant.knowledge import open_pack_index

                known = {p.name: p for p in self.packs()}
                pack = known.get(name) or find_pack(name)
                config = load_pack_config(pack, self.loaded)
                index = open_pack_index(pack, self.loaded, embedder=self.embedder())
                self._handles[name] = PackHandle(pack, config, index)
            return self._handles[name]

    def embedder(self) -> _QueryCache:
        """The shared embedder behind a cache of recent questions (one embed per question)."""
        with self._lock:
            if self._embedder is None:
                from assistant.runtime.models import load_embedder

                self._embedder = _QueryCache(load_embedder(self.loaded))
            return self._embedder

    def _embed(self, texts: list[str]) -> Any:
        return self.embedder().encode(
            texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )

    # ----- routing ------------------------------------------------------------------------

    def route(self, question: str) -> RouteDecision:
        """Score every pack for the question; decline when no pack is confident enough."""
        handles = [self.handle(p.name) for p in self.packs()]
        if not handles:
            raise AssistantError("there are no packs: create one with `assistant pack new NAME`")
        missing = [h for h in handles if h.description_vector is None]
        if missing:
            vectors = self._embed([h.config.description for h in missing])
            for h, vector in zip(missing, vectors, strict=True):
                h.description_vector = vector
        qvec = self._embed([question])[0]
        words = terms(question)
        scores: dict[str, float] = {}
        margins: dict[str, float] = {}
        for h in handles:
            hits = h.index.dense_search(question, k=1)
            best = hits[0].dense_score if hits else 0.0
            score = best + DESCRIPTION_WEIGHT * float(h.description_vector @ qvec)
            if words:
                found = set().union(
                    *(terms(x.text) for x in h.index.bm25_search(question, k=LEXICAL_PASSAGES))
                )
                score -= LEXICAL_WEIGHT * (1 - len(words & found) / len(words))
            scores[h.pack.name] = round(score, 4)
            margins[h.pack.name] = score - h.config.retrieval.route_threshold
        best_pack = max(margins, key=lambda name: margins[name])
        if margins[best_pack] < 0:
            return RouteDecision(None, scores, "no pack covers this question")
        return RouteDecision(best_pack, scores)

    def decline_all_message(self) -> str:
        covered = "; ".join(f"{p.name} ({self.handle(p.name).config.title})" for p in self.packs())
        return f"I can only answer questions the packs cover: {covered}."

    # ----- answering ----------------------------------------------------------------------

    def _retrieval_query(self, handle: PackHandle, question: str, history: list[dict]) -> tuple:
        """Hits for the question; for a follow-up, the previous question joins the query when
        that retrieves better (so "and at night?" finds what the full question would)."""
        k = handle.config.retrieval.k
        hits = handle.index.search(question, k=k)
        previous = [t["content"] for t in history if t["role"] == "user"]
        if previous:
            combined = f"{previous[-1]} {question}"
            combined_hits = handle.index.search(combined, k=k)

            def best(found: list) -> float:
                return max((h.dense_score or 0.0 for h in found), default=0.0)

            if best(combined_hits) > best(hits):
                return combined_hits, combined
        return hits, question

    def _fit_history(self, tokenizer: Any, messages_for: Any, history: list[dict], budget: int):
        """Drop the oldest turns until the prompt fits the budget."""
        turns = list(history)
        while True:
            messages = messages_for(turns)
            size = len(
                tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)[
                    "input_ids"
                ]
            )
            if size <= budget or not turns:
                return messages, size
            turns = turns[2:] if len(turns) >= 2 else []

    def stream(
        self,
        question: str,
        pack: str | None = None,
        history: Sequence[Any] = (),
        *,
        rag: bool = True,
        adapter: bool = True,
        k: int | None = None,
        max_tokens: int | None = None,
        mode: str | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[str | Answer]:
        """Yield answer text pieces, then the final `Answer` (always last)."""
        started = time.perf_counter()
        question = (question or "").strip()
        if not question:
            raise AssistantError("the question is empty")
        turns = _history_messages(history)
        tokenizer = self._tokenizer()
        notices: list[str] = []
        ids = tokenizer(question)["input_ids"]
        if len(ids) > MAX_QUESTION_TOKENS:
            question = tokenizer.decode(ids[:MAX_QUESTION_TOKENS])
            notices.append(
                f"the question was {len(ids)} tokens; only the first"
                f" {MAX_QUESTION_TOKENS} were used"
            )
        timings = Timings()
        context = {"timings": timings, "notices": notices}

        def finish(text: str, pack_name: str | None, **fields: Any) -> Answer:
            timings.total_ms = (time.perf_counter() - started) * 1000
            return Answer(question, text, pack_name, **context, **fields)

        if pack is None:
            previous = [t["content"] for t in turns if t["role"] == "user"]
            decision = self.route(question)
            if decision.pack is None and previous:  # a follow-up routes with its context
                decision = self.route(f"{previous[-1]} {question}")
            context["route_scores"] = decision.scores
            timings.routing_ms = (time.perf_counter() - started) * 1000
            if decision.pack is None:
                text = self.decline_all_message()
                yield text
                yield finish(text, None, declined=True, decline_reason=decision.reason)
                return
            pack = decision.pack
        handle = self.handle(pack)
        if k is not None:
            retrieval = handle.config.retrieval.model_copy(update={"k": k})
            config = handle.config.model_copy(update={"retrieval": retrieval})
            handle = PackHandle(handle.pack, config, handle.index, handle.description_vector)
        config = handle.config
        context["mode"] = mode = mode or config.answer_mode

        sources: list[Source] = []
        if rag:
            t0 = time.perf_counter()
            hits, _query = self._retrieval_query(handle, question, turns)
            timings.retrieval_ms = (time.perf_counter() - t0) * 1000
            best = max((h.dense_score or 0.0 for h in hits), default=0.0)
            threshold = config.retrieval.decline_threshold
            if best < threshold:
                reason = (
                    f"best passage scored {best:.2f}, below the pack's decline threshold"
                    f" {threshold:.2f}"
                )
                yield config.decline_message
                yield finish(config.decline_message, pack, declined=True, decline_reason=reason)
                return
            sources = _sources(pack, hits)

        if mode == "extractive" and sources:
            from assistant.answering.evidence import extractive_answer

            text = extractive_answer(self, question, sources, config)
            yield text
            answer_text, cited, removed = check_citations(text, sources)
            yield finish(
                answer_text, pack, sources=sources, citations=cited, removed_citations=removed
            )
            return

        stats, adapter_name, pieces = None, None, []
        generated = self._generate(handle, question, sources if rag else None, turns, adapter,
                                   max_tokens, cancel, notices)  # fmt: skip
        for piece in generated:
            if isinstance(piece, tuple):  # the generator's final (stats, adapter name)
                stats, adapter_name = piece
                continue
            if not pieces:
                timings.first_token_ms = (time.perf_counter() - started) * 1000
            pieces.append(piece)
            yield piece
        written, cited, _removed = check_citations("".join(pieces).strip(), sources)
        declined_by_model = says_not_covered(written) and not cited
        # Quoting evidence under "the documents do not cover this" would contradict the reply
        # and would hide the decline from the eval's in-scope answer rate.
        if mode == "hybrid" and sources and not declined_by_model:
            from assistant.answering.evidence import evidence_block

            extra = evidence_block(self, question, sources)
            if extra:
                pieces.append(extra)
                yield extra
        answer_text, cited, removed = check_citations("".join(pieces).strip(), sources)
        timings.tokens_per_s = round(stats.decode_tokens_per_s, 2)
        timings.prompt_tokens = stats.prompt_tokens
        timings.answer_tokens = stats.new_tokens
        yield finish(
            answer_text,
            pack,
            declined=declined_by_model,
            decline_reason="the model found no answer in the passages"
            if declined_by_model
            else None,
            sources=sources,
            citations=cited,
            removed_citations=removed,
            adapter=adapter_name,
            cancelled=stats.cancelled,
        )

    def _generate(
        self,
        handle: PackHandle,
        question: str,
        sources: list[Source] | None,
        turns: list[dict[str, str]],
        use_adapter: bool,
        max_tokens: int | None,
        cancel: threading.Event | None,
        notices: list[str],
    ) -> Iterator[str | tuple[Any, str | None]]:
        """Build the prompt (history trimmed to fit), switch to the pack's adapter and stream
        the reply; ends with a (GenerationStats, adapter name) tuple."""
        from assistant.runtime.generation import GenerationOptions, GenerationStats, chat_token_ids

        config, pack = handle.config, handle.pack
        adapter_name = None
        if use_adapter:
            if pack.adapter_weights.is_file():
                adapter_name = self.load_adapter(pack)
            else:
                notices.append(
                    f"pack {pack.name!r} has no trained adapter yet; the base model answers"
                    f" (train one with `assistant train {pack.name}`)"
                )
        options = GenerationOptions.from_settings(
            config.generation,
            max_new_tokens=max_tokens,
            reuse_system_prefix=self.loaded.settings.generation.reuse_system_prefix,
        )
        passages = None
        if sources is not None:
            passages = [PromptPassage(s.text, s.path, s.section or "") for s in sources]

        def messages_for(kept: list[dict]) -> list[dict[str, str]]:
            return build_messages(
                config.persona, question, passages, kept, config.retrieval.passage_words
            )

        tokenizer = self._tokenizer()
        budget = CONTEXT_TOKENS - options.max_new_tokens
        messages, _size = self._fit_history(tokenizer, messages_for, turns, budget)
        if len(turns) and len(messages) - 2 < len(turns):
            notices.append("older turns of the conversation were left out to fit the model")
        stats = GenerationStats()
        if self._llama_cpp:
            from assistant.runtime import llama_cpp as llama_backend

            yield from llama_backend.stream_tokens(
                llama_backend.engine_for(self.loaded, CONTEXT_TOKENS),
                chat_token_ids(tokenizer, messages),
                options,
                adapter=adapter_name,
                cancel=cancel,
                stats=stats,
            )
        else:
            from assistant.runtime.adapters import bank_for
            from assistant.runtime.generation import encode_chat, stream_tokens
            from assistant.runtime.models import load_base_model

            base = load_base_model(self.loaded)
            with bank_for(base).using(adapter_name) as model:
                yield from stream_tokens(
                    base, encode_chat(base, messages), options, cancel=cancel, stats=stats,
                    model=model,
                )  # fmt: skip
        yield stats, adapter_name

    @property
    def _llama_cpp(self) -> bool:
        return self.loaded.settings.models.backend == "llama_cpp"

    def _tokenizer(self) -> Any:
        from assistant.runtime.models import load_tokenizer

        return load_tokenizer(self.loaded)

    def warm_up(self) -> None:
        """Load the generator of the configured backend (seconds on the first call)."""
        if self._llama_cpp:
            from assistant.runtime import llama_cpp as llama_backend

            llama_backend.engine_for(self.loaded, CONTEXT_TOKENS)
        else:
            from assistant.runtime.models import load_base_model

            load_base_model(self.loaded)

    def load_adapter(self, pack: DomainPack) -> str:
        """Load the pack's adapter into the configured backend (once); returns its name."""
        if self._llama_cpp:
            from assistant.runtime import llama_cpp as llama_backend

            return llama_backend.engine_for(self.loaded, CONTEXT_TOKENS).load_adapter(pack)
        from assistant.runtime.adapters import bank_for
        from assistant.runtime.models import load_base_model

        return bank_for(load_base_model(self.loaded)).load(pack, self.loaded)

    def answer(
        self, question: str, pack: str | None = None, history: Sequence[Any] = (), **options: Any
    ) -> Answer:
        final = None
        for item in self.stream(question, pack, history, **options):
            if isinstance(item, Answer):
                final = item
        assert final is not None
        return final
