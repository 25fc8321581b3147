"""The router on the shipped packs: auto routing, declines (everywhere and inside a pack),
citations that map to real document spans, invented citations removed, and follow-up questions
that retrieve with the previous question. Generation is kept to a few tokens or avoided
(extractive mode), so these tests check the plumbing, not the model's prose."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant.answering.answers import Answer, Source, check_citations
from assistant.answering.claims import UNSUPPORTED_MARK
from assistant.answering.router import Router
from assistant.packs.locate import list_packs, pack_at
from assistant.runtime.generation import GenerationStats, TextStream

SHIPPED = ("contracts", "diabetes", "penguin-wood", "support")

# Clear questions from each pack's eval/qa.jsonl (plus one phrased by hand per pack).
CLEAR = {
    "diabetes": [
        "What is Hypoglycemia?",
        "What causes Diabetic Neuropathies: The Nerve Damage of Diabetes?",
        "How is gestational diabetes diagnosed?",
    ],
    "support": [
        "Am I able to nest shared folders in Syncthing?",
        "How do I upgrade Syncthing?",
        "How do I set up a relay server for Syncthing?",
    ],
    "penguin-wood": [
        "How long does 50 mm penguin wood stock take in the kiln?",
        "What is the compressive strength of penguin wood across the grain?",
        "Which glue should I use for a penguin wood glue-up?",
    ],
    "contracts": [
        "Which jurisdiction's law governs the Joint Venture Agreement between KIROMIC BIOPHARMA"
        " Inc and MOLIPHARMA S.R.L?",
        "Does the Promotion Agreement between Go Call, Inc and PageMaster Corporation cap"
        " liability for breach?",
        "What does a force majeure clause usually say?",
    ],
}

EVERYDAY = [
    "What's a good recipe for banana bread?",
    "Who won the 2018 World Cup?",
    "Will it rain in London this weekend?",
    "Can you suggest a name for my goldfish?",
]

# (pack, first question, follow-up that only makes sense after it, the document it is about)
FOLLOW_UPS = [
    (
        "penguin-wood",
        "What glue works for penguin wood?",
        "How long should it cure?",
        "docs/07_adhesives.md",
    ),
    ("diabetes", "What is gastroparesis?", "How is it treated?", "docs/niddk_gastroparesis.md"),
    (
        "support",
        "How do I set up a relay server?",
        "Which port does it listen on?",
        ("docs/users__relaying.md", "docs/users__strelaysrv.md"),
    ),
    (
        "contracts",
        "What is a mutual NDA?",
        "How long does it last?",
        (
            "docs/standard_forms/commonpaper_Mutual-NDA.md",
            "docs/standard_forms/commonpaper_Mutual-NDA-coverpage.md",
        ),
    ),
]


def _shipped_packs() -> list:
    packs = [p for p in list_packs() if p.name in SHIPPED]
    missing = [p.name for p in packs if not (p.index_dir / "CURRENT").is_file()]
    if missing:
        pytest.skip(f"no index yet for {missing}: run `assistant index rebuild NAME`")
    return packs


@pytest.fixture(scope="module", autouse=True)
def one_thread(base_model, embedder):
    """One torch thread while these tests run: the CI box has 2 cores shared with other jobs,
    and 2 spinning OpenMP threads make each query embed ~30x slower there (see bench/RESULTS.md).
    The models are loaded first so that loading does not reset the count."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def router(settings, embedder) -> Router:
    return Router(settings, packs=_shipped_packs())


# ----- routing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pack", "question"), [(pack, q) for pack, questions in CLEAR.items() for q in questions]
)
def test_clear_questions_route_to_their_pack(router: Router, pack: str, question: str) -> None:
    decision = router.route(question)
    assert decision.pack == pack, decision.scores
    assert decision.reason is None
    assert set(decision.scores) == set(SHIPPED)


@pytest.mark.parametrize("question", EVERYDAY)
def test_everyday_questions_are_declined(router: Router, question: str) -> None:
    decision = router.route(question)
    assert decision.pack is None, decision.scores
    assert decision.reason


def test_auto_decline_lists_the_packs(router: Router, base_model) -> None:
    answer = router.answer("Who won the 2018 World Cup?")
    assert answer.declined and answer.pack is None and not answer.sources
    for name in SHIPPED:
        assert name in answer.answer
    assert answer.route_scores and answer.timings.routing_ms > 0


# ----- declines inside a pack -------------------------------------------------------------------


def test_in_pack_decline_for_a_question_far_from_the_docs(router: Router, base_model) -> None:
    answer = router.answer("Who won the 2018 World Cup?", "penguin-wood", max_tokens=8)
    assert answer.declined and answer.pack == "penguin-wood"
    assert answer.answer == router.handle("penguin-wood").config.decline_message
    assert "below the pack's decline threshold 0.30" in answer.decline_reason
    assert answer.timings.first_token_ms == 0  # nothing was generated


def _copy_pack(name: str, parent: Path, **retrieval: float) -> object:
    """A copy of a shipped pack and its built index under `parent`, with `[retrieval]` keys
    set (the shipped pack.toml holds only what differs from the defaults, so a key may be new)."""
    source = next(p for p in list_packs() if p.name == name)
    shutil.copytree(
        source.root, parent / "domains" / name, ignore=shutil.ignore_patterns("adapter")
    )
    shutil.copytree(source.index_dir, parent / "indexes" / name)
    toml = parent / "domains" / name / "pack.toml"
    lines = [
        line
        for line in toml.read_text("utf-8").splitlines()
        if line.split("=")[0].strip() not in retrieval
    ]
    if "[retrieval]" not in lines:
        lines.append("[retrieval]")
    at = lines.index("[retrieval]") + 1
    lines[at:at] = [f"{key} = {value}" for key, value in retrieval.items()]
    toml.write_text("\n".join(lines) + "\n", "utf-8")
    return pack_at(parent / "domains" / name)


def test_in_pack_decline_below_a_raised_threshold(settings, base_model, tmp_path: Path) -> None:
    question = "How long does 50 mm penguin wood stock take in the kiln?"
    strict = _copy_pack("penguin-wood", tmp_path, decline_threshold=0.99)
    answer = Router(settings, packs=[strict]).answer(question, "penguin-wood", max_tokens=8)
    assert answer.declined and "below the pack's decline threshold 0.99" in answer.decline_reason
    assert not answer.sources

    # The same copy with a route threshold no question reaches: auto mode declines it too.
    deaf = _copy_pack("penguin-wood", tmp_path / "deaf", route_threshold=1.0)
    decision = Router(settings, packs=[deaf]).route(question)
    assert decision.pack is None and decision.scores["penguin-wood"] > 0.5, decision.scores


# ----- citations --------------------------------------------------------------------------------


def _assert_real_spans(router: Router, answer: Answer) -> None:
    index = router.handle(answer.pack).index
    pack_root = router.handle(answer.pack).pack.root
    assert answer.citations, answer.answer
    for source in answer.sources:
        assert index.document_text(source.path)[source.start : source.end] == source.text
        assert source.cited == (source.number in answer.citations)
    for number in answer.citations:
        source = answer.sources[number - 1]
        on_disk = " ".join((pack_root / source.path).read_text("utf-8").split())
        assert " ".join(source.text.split()) in on_disk


@pytest.mark.parametrize(
    ("pack", "question"),
    [
        ("penguin-wood", "How long does 50 mm penguin wood stock take in the kiln?"),
        ("diabetes", "What are the symptoms of Hypoglycemia?"),
        ("support", "How do I upgrade Syncthing?"),
    ],
)
def test_extractive_citations_map_to_real_spans(router: Router, pack: str, question: str) -> None:
    answer = router.answer(question, pack, mode="extractive")
    assert not answer.declined and answer.mode == "extractive"
    assert answer.answer.startswith("Here is what the documents say:")
    _assert_real_spans(router, answer)
    # Every quoted sentence is in the passage it cites.
    for number in answer.citations:
        assert f"[{number}]" in answer.answer


def test_generated_answer_citations_are_checked(router: Router, base_model) -> None:
    answer = router.answer(
        "How long does 50 mm penguin wood stock take in the kiln?", "penguin-wood", max_tokens=12
    )
    assert answer.pack == "penguin-wood" and len(answer.sources) == 4
    assert set(answer.citations) <= {s.number for s in answer.sources}
    assert answer.timings.first_token_ms > 0 and answer.timings.answer_tokens <= 12
    for source in answer.sources:
        index = router.handle("penguin-wood").index
        assert index.document_text(source.path)[source.start : source.end] == source.text


def _sources(count: int) -> list[Source]:
    return [
        Source(n, "p", f"docs/{n}.md", "t", None, None, 0, 5, 0.1, 0.5, "text.")
        for n in range(1, count + 1)
    ]


def test_check_citations_removes_invented_numbers() -> None:
    sources = _sources(3)
    text, cited, removed = check_citations(
        "Dry it first [2]. Then glue [9] and clamp [2][1].", sources
    )
    assert text == "Dry it first [2]. Then glue and clamp [2][1]."
    assert cited == [2, 1] and removed == [9]
    assert [s.cited for s in sources] == [True, True, False]
    text, cited, removed = check_citations("Nothing [0] here [12].", _sources(0))
    assert (text, cited, removed) == ("Nothing here.", [], [0, 12])


class ScriptedEngine:
    """A fake engine that replies with fixed pieces: for the router's own logic (citations,
    declines), which does not depend on what the model writes."""

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces

    def load_adapter(self, pack) -> str:
        return pack.name

    def generate(self, token_ids, options, *, adapter=None, cancel=None) -> TextStream:
        stats = GenerationStats(prompt_tokens=len(token_ids), new_tokens=len(self.pieces))
        return TextStream(iter(self.pieces), stats)


def test_router_removes_an_invented_citation(router: Router, monkeypatch) -> None:
    engine = ScriptedEngine(["Kiln dry it ", "for ten days [1]", " and check it [9]."])
    monkeypatch.setattr(router, "engine", lambda: engine)
    answer = router.answer(
        "How long does 50 mm penguin wood stock take in the kiln?",
        "penguin-wood",
        mode="generate",
        grounding="off",  # the reply is made up: the claim check would leave it out
    )
    assert answer.answer == "Kiln dry it for ten days [1] and check it."
    assert answer.citations == [1] and answer.removed_citations == [9]
    assert answer.sources[0].cited and not any(s.cited for s in answer.sources[1:])


KILN = "How long does 50 mm penguin wood stock take in the kiln?"


def _true_and_made_up(router: Router) -> tuple[str, str]:
    """A sentence copied from the first passage the question retrieves, and one with a number
    that no passage holds."""
    from assistant.text import sentences

    first = router.handle("penguin-wood").index.search(KILN, k=4)[0].text
    true = next(s for s in sentences(first) if len(s.split()) > 5 and not s.startswith("#"))
    return true.rstrip(".") + " [1].", "Drying 50 mm stock takes 977 days in the kiln [1]."


def test_strict_grounding_leaves_out_a_made_up_sentence_and_says_why(router, monkeypatch):
    true, made_up = _true_and_made_up(router)
    monkeypatch.setattr(router, "engine", lambda: ScriptedEngine([true, " ", made_up]))
    answer = router.answer(KILN, "penguin-wood", mode="generate")
    assert answer.grounding == "strict"
    assert "977" not in answer.answer and answer.answer == true
    assert [c["supported"] for c in answer.claims] == [True, False]
    assert "977" in answer.claims[1]["reason"] and answer.claims[0]["passage"] == 1

    monkeypatch.setattr(router, "engine", lambda: ScriptedEngine([true, " ", made_up]))
    marked = router.answer(KILN, "penguin-wood", mode="generate", grounding="mark")
    assert f"{UNSUPPORTED_MARK}{made_up}" in marked.answer


def test_with_nothing_supported_a_strict_answer_leads_with_the_evidence(router, monkeypatch):
    _, made_up = _true_and_made_up(router)
    monkeypatch.setattr(router, "engine", lambda: ScriptedEngine([made_up]))
    answer = router.answer(KILN, "penguin-wood", mode="generate")
    assert answer.answer.startswith("Evidence from the documents:\n> ")
    assert "977" not in answer.answer and not answer.declined and answer.citations


def test_a_hybrid_answer_the_model_declines_quotes_no_evidence(router: Router, monkeypatch) -> None:
    from assistant.answering.prompts import NOT_COVERED

    monkeypatch.setattr(router, "engine", lambda: ScriptedEngine([NOT_COVERED]))
    answer = router.answer(
        "How long does 50 mm penguin wood stock take in the kiln?", "penguin-wood", mode="hybrid"
    )
    assert answer.answer == NOT_COVERED and "Evidence" not in answer.answer
    assert answer.declined and answer.citations == []


@pytest.mark.parametrize(
    ("reply", "declines"),
    [
        ("Sorry, the documents I have do not cover this question.", True),
        ("The documents I have do not cover this question.", True),
        ("The documents in this pack do not say how long that takes.", True),
        ("The warranty does not cover water damage [1].", False),
        ("Kiln dry it for ten days [1].", False),
    ],
)
def test_the_model_declines_in_the_wordings_it_learned(reply: str, declines: bool) -> None:
    from assistant.answering.prompts import says_not_covered

    assert says_not_covered(reply) is declines


# ----- follow-ups -------------------------------------------------------------------------------


@pytest.mark.parametrize(("pack", "first", "follow_up", "expected"), FOLLOW_UPS)
def test_follow_up_retrieves_with_the_previous_question(
    router: Router, pack: str, first: str, follow_up: str, expected
) -> None:
    expected = (expected,) if isinstance(expected, str) else expected
    alone = router.answer(follow_up, pack, mode="extractive")
    history = [
        {"role": "user", "content": first},
        {"role": "assistant", "content": "(an earlier answer)"},
    ]
    answer = router.answer(follow_up, pack, history, mode="extractive")
    assert answer.sources[0].path in expected, [s.path for s in answer.sources]
    assert alone.declined or alone.sources[0].path not in expected  # context made the difference


def test_auto_follow_up_routes_with_its_context(router: Router) -> None:
    history = [{"role": "user", "content": "What glue works for penguin wood?"}]
    answer = router.answer("And how long should it cure?", None, history, mode="extractive")
    assert answer.pack == "penguin-wood", answer.route_scores
    assert answer.sources[0].path == "docs/07_adhesives.md"


def test_hybrid_answer_ends_with_cited_evidence_quoted_verbatim(router: Router) -> None:
    question = "How long does 50 mm penguin wood stock take in the kiln?"
    answer = router.answer(question, "penguin-wood", mode="hybrid", max_tokens=24)
    assert not answer.declined and answer.mode == "hybrid"
    generated, evidence = answer.answer.split("Evidence from the documents:")
    assert generated.strip()
    quoted = [line[2:].rsplit(" [", 1) for line in evidence.strip().splitlines()]
    assert quoted and answer.citations
    for text, number in quoted:
        source = answer.sources[int(number.rstrip("]")) - 1]
        assert text in " ".join(source.text.split())  # verbatim from the passage it cites


def test_hybrid_evidence_quotes_sentences_not_headings(router: Router) -> None:
    answer = router.answer("What causes Diabetes?", "diabetes", mode="hybrid", max_tokens=8)
    evidence = answer.answer.split("Evidence from the documents:")[1].strip().splitlines()
    assert evidence
    for line in evidence:
        quoted = line[2:].rsplit(" [", 1)[0]
        assert not quoted.startswith("#") and not quoted.endswith("?"), line


def test_a_question_naming_a_contract_gets_its_clauses_not_its_header(router: Router) -> None:
    """The parties' names pull the title-and-parties header and the preamble to the top; the
    focused search keeps the named contract, the header at most once, and finds the clause."""
    from assistant.answering.focus import focused_hits

    handle = router.handle("contracts")
    question = (
        "Does the Promotion Agreement between Go Call, Inc and PageMaster Corporation cap"
        " liability for breach?"
    )
    plain = handle.index.search(question, k=4)
    focused = focused_hits(handle.index, handle.document_heads(), question, plain, 4)
    assert len(focused) == 4
    assert {h.path for h in focused} == {plain[0].path} and "GOCALLINC" in plain[0].path
    assert sum(h.start == 0 for h in focused) <= 1
    liability = [h for h in focused if "liab" in h.text.lower()]
    assert len(liability) > len([h for h in plain if "liab" in h.text.lower()])


def test_a_question_naming_no_document_keeps_its_own_passages(router: Router) -> None:
    from assistant.answering.focus import focused_hits

    handle = router.handle("penguin-wood")
    question = "What is penguin wood like to work with?"  # every document's head names it
    plain = handle.index.search(question, k=4)
    assert len({h.path for h in plain}) > 1
    assert focused_hits(handle.index, handle.document_heads(), question, plain, 4) == plain


@pytest.mark.parametrize(
    ("pack", "question"),
    [
        ("penguin-wood", "How do I bake chocolate chip cookies?"),
        ("contracts", "What's the population of Canada?"),
    ],
)
def test_an_off_topic_question_to_a_named_pack_is_declined_before_generation(
    router: Router, monkeypatch, pack: str, question: str
) -> None:
    """Their best passages clear the decline threshold (0.37 and 0.35 against 0.30), so the
    pack used to answer them with made-up advice; against the pack as a whole they score below
    its route threshold, as auto-routing would find."""
    engine = ScriptedEngine(["Mix the butter and sugar [1]."])
    monkeypatch.setattr(router, "engine", lambda: engine)
    asked = []
    monkeypatch.setattr(engine, "generate", lambda *a, **k: asked.append(a))
    answer = router.answer(question, pack)
    assert not asked  # the model was not asked
    assert answer.declined and "route threshold" in answer.decline_reason
    assert answer.answer == router.handle(pack).config.decline_message
