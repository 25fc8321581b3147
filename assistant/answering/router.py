"""The router: question -> pack (or decline) -> retrieve -> compose -> generate -> check -> cite.

`Router.stream()` returns an `AnswerStream`: iterate it for the text pieces as they are
generated; its `answer` then holds the `Answer`. `Router.answer()` returns the `Answer` alone.
Each stage is one short method below, in the order an answer passes through them; the engine
that generates is chosen once from the settings (`assistant.runtime.engine`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from typing import Any

from assistant.answering.answers import Answer, AnswerStream, Source, Timings, check_citations
from assistant.answering.claims import ClaimFilter
from assistant.answering.compose import history_messages, prompt_messages, sources_from_hits
from assistant.answering.evidence import evidence_block, extractive_answer
from assistant.answering.focus import focused_hits
from assistant.answering.prompts import says_not_covered
from assistant.answering.routing import PackHandle, RouteDecision, decide, pack_score
from assistant.errors import AssistantError
from assistant.knowledge import open_index
from assistant.knowledge.embedding import Embedding
from assistant.packs.format import load_pack_config
from assistant.packs.locate import DomainPack, find_pack, list_packs
from assistant.packs.style import rule_marker
from assistant.runtime.bases import pack_adapter
from assistant.runtime.engine import CONTEXT_TOKENS, generator_for
from assistant.runtime.engine import Generator as Engine
from assistant.runtime.generation import GenerationOptions, GenerationStats, chat_token_ids
from assistant.settings import LoadedSettings

MAX_QUESTION_TOKENS = 1000
Steps = Generator[str, None, Answer]


class _Draft:
    """What an answer collects on its way through the stages, until it becomes an `Answer`."""

    def __init__(self, question: str, started: float) -> None:
        self.question = question
        self.started = started
        self.timings = Timings()
        self.notices: list[str] = []
        self.fields: dict[str, Any] = {}
        self.reason: str | None = None  # why the router declined, when it did
        self.vectors: dict[str, Any] = {}  # query text -> its vector: each embedded once
        self.grounding: str | None = None  # the caller's override of the pack's grounding
        self.routed = False  # the router picked the pack (it cleared its route threshold)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def finish(self, text: str, pack: str | None, **fields: Any) -> Answer:
        self.timings.total_ms = self.elapsed_ms()
        return Answer(
            self.question,
            text,
            pack,
            timings=self.timings,
            notices=self.notices,
            **self.fields,
            **fields,
        )


class Router:
    """Answers questions from the packs with the one shared base model and its adapters."""

    def __init__(self, loaded: LoadedSettings, packs: Sequence[DomainPack] | None = None) -> None:
        self.loaded = loaded
        self._packs = list(packs) if packs is not None else None
        self._handles: dict[str, PackHandle] = {}
        self._lock = threading.RLock()
        self._embedding: Embedding | None = None
        self._engine: Engine | None = None
        self._warming: threading.Thread | None = None

    # ----- packs, models ------------------------------------------------------------------

    def packs(self) -> list[DomainPack]:
        return self._packs if self._packs is not None else list_packs()

    def handle(self, name: str) -> PackHandle:
        with self._lock:
            if name not in self._handles:
                known = {p.name: p for p in self.packs()}
                pack = known.get(name) or find_pack(name)
                config = load_pack_config(pack, self.loaded)
                index = open_index(pack, self.loaded, embedder=self.embedding().model)
                self._handles[name] = PackHandle(pack, config, index)
            return self._handles[name]

    def embedding(self) -> Embedding:
        """The shared embedder (loaded on first use), handed to every pack's index too."""
        with self._lock:
            if self._embedding is None:
                self._embedding = Embedding(self.loaded)
            return self._embedding

    def embed(self, texts: list[str]) -> Any:
        """Normalised vectors of `texts` (one row each)."""
        return self.embedding().embed(texts)

    def _vector(self, draft: _Draft, text: str) -> Any:
        """The query's vector, embedded once per answer however many packs search with it."""
        if text not in draft.vectors:
            draft.vectors[text] = self.embed([text])[0]
        return draft.vectors[text]

    def engine(self) -> Engine:
        """The generation engine the settings choose (its model loads on first use)."""
        with self._lock:
            if self._engine is None:
                self._engine = generator_for(self.loaded)
            return self._engine

    def warm_up(self) -> None:
        """Load the generator of the configured engine, with the adapters of every pack where
        the engine loads them up front (seconds on the first call)."""
        self.engine().warm_up([p for p in self.packs() if pack_adapter(p, self.loaded).trained])

    def _warm_up_meanwhile(self) -> None:
        """Start `warm_up` in a background thread (once per router), so the model loads while
        the question is routed and its passages retrieved; generation waits for it."""
        with self._lock:
            if self._warming is not None:
                return
            # not a daemon: an early exit waits for it rather than stop native code midway
            self._warming = threading.Thread(target=self._warm_up_quietly)
            self._warming.start()

    def _warm_up_quietly(self) -> None:
        # a failure is raised again by the answer's own call, where it is handled
        with contextlib.suppress(Exception):
            self.warm_up()

    def load_adapter(self, pack: DomainPack) -> str:
        """Load the pack's adapter into the engine (once); returns its name."""
        return self.engine().load_adapter(pack)

    def tokenizer(self) -> Any:
        """The base model's tokenizer and chat template (no torch)."""
        from assistant.runtime.models import load_tokenizer

        return load_tokenizer(self.loaded)

    # ----- routing ------------------------------------------------------------------------

    def route(self, question: str, question_vector: Any = None) -> RouteDecision:
        """Score every pack for the question; decline when no pack is confident enough."""
        handles = [self.handle(p.name) for p in self.packs()]
        if not handles:
            raise AssistantError("there are no packs: create one with `assistant pack new NAME`")
        self._describe(handles)
        if question_vector is None:
            question_vector = self.embed([question])[0]
        return decide(handles, question, question_vector)

    def _describe(self, handles: Sequence[PackHandle]) -> None:
        """Embed the descriptions of the packs that do not have their vector yet."""
        missing = [h for h in handles if h.description_vector is None]
        if missing:
            vectors = self.embed([h.config.description for h in missing])
            for h, vector in zip(missing, vectors, strict=True):
                h.description_vector = vector

    def decline_all_message(self) -> str:
        covered = "; ".join(f"{p.name} ({self.handle(p.name).config.title})" for p in self.packs())
        return f"I can only answer questions the packs cover: {covered}."

    # ----- answering ----------------------------------------------------------------------

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
        grounding: str | None = None,
        cancel: threading.Event | None = None,
    ) -> AnswerStream:
        """The answer to `question` from `pack` (None: the router picks one, or declines).
        `mode` and `grounding` override the pack's answer_mode and grounding."""
        draft = _Draft(question, time.perf_counter())
        draft.question = self._checked_question(question, draft.notices)
        self._warm_up_meanwhile()
        draft.grounding = grounding
        steps = self._steps(
            draft, pack, history_messages(history), rag, adapter, k, max_tokens, mode, cancel
        )
        return AnswerStream(steps)

    def answer(
        self, question: str, pack: str | None = None, history: Sequence[Any] = (), **options: Any
    ) -> Answer:
        return self.stream(question, pack, history, **options).finish()

    def _checked_question(self, question: str, notices: list[str]) -> str:
        """The question stripped, refused when empty, cut to MAX_QUESTION_TOKENS."""
        question = (question or "").strip()
        if not question:
            raise AssistantError("the question is empty")
        tokenizer = self.tokenizer()
        ids = tokenizer(question)["input_ids"]
        if len(ids) > MAX_QUESTION_TOKENS:
            question = tokenizer.decode(ids[:MAX_QUESTION_TOKENS])
            notices.append(
                f"the question was {len(ids)} tokens; only the first"
                f" {MAX_QUESTION_TOKENS} were used"
            )
        return question

    def _steps(
        self,
        draft: _Draft,
        pack: str | None,
        turns: list[dict[str, str]],
        rag: bool,
        adapter: bool,
        k: int | None,
        max_tokens: int | None,
        mode: str | None,
        cancel: threading.Event | None,
    ) -> Steps:
        """The stages in order; each may end the answer early (a decline)."""
        question = draft.question
        if pack is None:
            pack = self._pick_pack(draft, turns)
            if pack is None:
                text = self.decline_all_message()
                yield text
                return draft.finish(text, None, declined=True, decline_reason=draft.reason)
        handle = self._handle_with_k(pack, k)
        draft.fields["mode"] = mode = mode or handle.config.answer_mode
        sources: list[Source] = []
        if rag:
            sources, reason = self._retrieve(draft, handle, turns)
            if reason:
                yield handle.config.decline_message
                return draft.finish(
                    handle.config.decline_message, pack, declined=True, decline_reason=reason
                )
        if mode == "extractive" and sources:
            text = extractive_answer(self.embed, question, sources, handle.config)
            yield text
            answer_text, cited, removed = check_citations(text, sources)
            return draft.finish(
                answer_text, pack, sources=sources, citations=cited, removed_citations=removed
            )
        pieces: list[str] = []
        generated = self._generate(draft, handle, sources if rag else None, turns, adapter,
                                   max_tokens, cancel)  # fmt: skip
        grounding = draft.fields["grounding"] = (
            (draft.grounding or handle.config.grounding) if sources else "off"
        )
        style = handle.config.style
        check = ClaimFilter(sources, question, grounding, rule_marker(style.kind, style.marker))
        for piece in check.run(self._timed(draft, generated)) if sources else generated:
            if not pieces:
                draft.timings.first_shown_ms = draft.elapsed_ms()
                draft.timings.first_token_ms = draft.timings.first_token_ms or draft.elapsed_ms()
            pieces.append(piece)
            yield piece
        draft.fields["claims"] = [claim.to_dict() for claim in check.claims]
        return (yield from self._cite(draft, handle, sources, pieces, mode, generated.stats))

    @staticmethod
    def _timed(draft: _Draft, generated: Any) -> Iterator[str]:
        """The engine's pieces, noting when the first one came (the claim check holds each
        back until its sentence is complete)."""
        for piece in generated:
            if not draft.timings.first_token_ms:
                draft.timings.first_token_ms = draft.elapsed_ms()
            yield piece

    def _pick_pack(self, draft: _Draft, turns: list[dict[str, str]]) -> str | None:
        """Route the question; a follow-up that no pack covers routes with its context."""
        previous = [t["content"] for t in turns if t["role"] == "user"]
        decision = self.route(draft.question, self._vector(draft, draft.question))
        if decision.pack is None and previous:
            combined = f"{previous[-1]} {draft.question}"
            decision = self.route(combined, self._vector(draft, combined))
        draft.fields["route_scores"] = decision.scores
        draft.routed = decision.pack is not None
        draft.timings.routing_ms = draft.elapsed_ms()
        draft.reason = decision.reason
        return decision.pack

    def _handle_with_k(self, pack: str, k: int | None) -> PackHandle:
        handle = self.handle(pack)
        if k is None:
            return handle
        retrieval = handle.config.retrieval.model_copy(update={"k": k})
        config = handle.config.model_copy(update={"retrieval": retrieval})
        return PackHandle(handle.pack, config, handle.index, handle.description_vector)

    def _retrieve(
        self, draft: _Draft, handle: PackHandle, turns: list[dict[str, str]]
    ) -> tuple[list[Source], str | None]:
        """The numbered sources, or the reason to decline when the best passage scores below
        the pack's decline threshold. For a follow-up, the previous question joins the query
        when that retrieves better (so "and at night?" finds what the full question would)."""
        started = time.perf_counter()
        k = handle.config.retrieval.k
        hits = handle.index.search(
            draft.question, k=k, query_vector=self._vector(draft, draft.question)
        )
        queries = [draft.question]
        previous = [t["content"] for t in turns if t["role"] == "user"]
        if previous:
            combined = f"{previous[-1]} {draft.question}"
            queries.append(combined)
            combined_hits = handle.index.search(
                combined, k=k, query_vector=self._vector(draft, combined)
            )
            if _best_dense(combined_hits) > _best_dense(hits):
                hits = combined_hits
        reason = self._out_of_scope(draft, handle, hits, queries)
        if reason:
            draft.timings.retrieval_ms = (time.perf_counter() - started) * 1000
            return [], reason
        hits = focused_hits(
            handle.index, handle.document_heads(), draft.question, hits, k,
            self._vector(draft, draft.question),
        )  # fmt: skip
        draft.timings.retrieval_ms = (time.perf_counter() - started) * 1000
        return sources_from_hits(handle.pack.name, hits), None

    def _out_of_scope(
        self, draft: _Draft, handle: PackHandle, hits: Sequence[Any], queries: list[str]
    ) -> str | None:
        """Why the pack should decline the question, if it should: its best passage scores
        below the decline threshold, or the question (or, for a follow-up, the question with
        the one before) scores below the route threshold against the pack as a whole (its
        best passage, its description and the question's words found in its passages), as
        auto-routing would have found. An explicit pack is no licence to answer off-topic."""
        retrieval = handle.config.retrieval
        best = _best_dense(hits)
        if best < retrieval.decline_threshold:
            return (
                f"best passage scored {best:.2f}, below the pack's decline threshold"
                f" {retrieval.decline_threshold:.2f}"
            )
        if draft.routed:  # auto-routing has just held the question against this pack
            return None
        self._describe([handle])
        scope = max(pack_score(handle, q, self._vector(draft, q)) for q in queries)
        if scope < retrieval.route_threshold:
            return (
                f"the question scored {scope:.2f} against the pack, below its route threshold"
                f" {retrieval.route_threshold:.2f}"
            )
        return None

    def _generate(
        self,
        draft: _Draft,
        handle: PackHandle,
        sources: list[Source] | None,
        turns: list[dict[str, str]],
        use_adapter: bool,
        max_tokens: int | None,
        cancel: threading.Event | None,
    ) -> Any:
        """Compose the prompt (history trimmed to fit) and start the engine with the pack's
        adapter; returns the engine's `TextStream`."""
        config, pack = handle.config, handle.pack
        adapter_name = None
        if use_adapter:
            if pack_adapter(pack, self.loaded).trained:
                adapter_name = self.load_adapter(pack)
            else:
                base = self.loaded.settings.models.base_model
                draft.notices.append(
                    f"pack {pack.name!r} has no trained adapter for base {base} yet; the base"
                    f" model answers alone (train one with `assistant train {pack.name}`)"
                )
        draft.fields["adapter"] = adapter_name
        options = GenerationOptions.from_settings(config.generation, max_new_tokens=max_tokens)
        tokenizer = self.tokenizer()
        budget = CONTEXT_TOKENS - options.max_new_tokens
        messages, trimmed = prompt_messages(
            config, draft.question, sources, turns, tokenizer, budget
        )
        if trimmed:
            draft.notices.append("older turns of the conversation were left out to fit the model")
        return self.engine().generate(
            chat_token_ids(tokenizer, messages), options, adapter=adapter_name, cancel=cancel
        )

    def _cite(
        self,
        draft: _Draft,
        handle: PackHandle,
        sources: list[Source],
        pieces: list[str],
        mode: str,
        stats: GenerationStats,
    ) -> Steps:
        """Check the reply's citations against the sources; in hybrid mode quote the evidence
        after it, unless the model said the documents do not cover the question."""
        written, cited, _removed = check_citations("".join(pieces).strip(), sources)
        declined_by_model = says_not_covered(written) and not cited
        # With every sentence left out as unsupported, the answer leads with the evidence.
        nothing_left = not written and draft.fields["grounding"] == "strict"
        # Quoting evidence under "the documents do not cover this" would contradict the reply
        # and would hide the decline from the eval's in-scope answer rate.
        if (mode == "hybrid" or nothing_left) and sources and not declined_by_model:
            extra = evidence_block(self.embed, draft.question, sources)
            if extra:
                if not pieces:
                    draft.timings.first_shown_ms = draft.elapsed_ms()
                pieces.append(extra)
                yield extra
        answer_text, cited, removed = check_citations("".join(pieces).strip(), sources)
        draft.timings.tokens_per_s = round(stats.decode_tokens_per_s, 2)
        draft.timings.prompt_tokens = stats.prompt_tokens
        draft.timings.answer_tokens = stats.new_tokens
        return draft.finish(
            answer_text,
            handle.pack.name,
            declined=declined_by_model,
            decline_reason="the model found no answer in the passages"
            if declined_by_model
            else None,
            sources=sources,
            citations=cited,
            removed_citations=removed,
            cancelled=stats.cancelled,
        )

    # ----- the base model alone -------------------------------------------------------------

    def stream_base(self, question: str, max_tokens: int | None = None) -> AnswerStream:
        """The base model alone on the question: no pack, no retrieval, no adapter (a quick
        check of what the model knows by itself)."""
        draft = _Draft(question, time.perf_counter())
        draft.notices.append("no retrieval and no pack: the base model answered alone")
        options = GenerationOptions.from_settings(
            self.loaded.settings.generation, max_new_tokens=max_tokens
        )
        ids = chat_token_ids(self.tokenizer(), [{"role": "user", "content": question}])

        def steps() -> Steps:
            generated = self.engine().generate(ids, options)
            pieces: list[str] = []
            for piece in generated:
                pieces.append(piece)
                yield piece
            stats = generated.stats
            draft.timings = Timings(
                first_token_ms=stats.first_token_s * 1000,
                total_ms=stats.total_s * 1000,
                tokens_per_s=round(stats.decode_tokens_per_s, 2),
                prompt_tokens=stats.prompt_tokens,
                answer_tokens=stats.new_tokens,
            )
            return Answer(
                question,
                "".join(pieces).strip(),
                None,
                timings=draft.timings,
                notices=draft.notices,
                cancelled=stats.cancelled,
            )

        return AnswerStream(steps())


def _best_dense(hits: Sequence[Any]) -> float:
    return max((h.dense_score or 0.0 for h in hits), default=0.0)
