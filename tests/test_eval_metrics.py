"""Unit tests of the eval metric logic on hand-made items with known values.

The `Answer`s here are hand-built stand-ins (no model runs): these tests check only the metric
arithmetic, eval-file parsing, threshold choice and the pack.toml edit. The end-to-end runs with
the real router are in test_eval_cli.py."""

from __future__ import annotations

import json
import tomllib

import pytest

from assistant.answering.answers import Answer, Source, Timings
from assistant.errors import AssistantError
from assistant.evaluation import metrics as m
from assistant.evaluation.run import (
    EvalCase,
    EvalReport,
    aggregate,
    confusion,
    in_split,
    load_cases,
    sample_cases,
    score_item,
    set_toml_value,
)
from assistant.packs.style import style_applies


def test_fact_recall_counts_the_facts_found():
    text = "The sapwood is 15–25 mm wide,\npale Grey; it dries at 3.5 % and costs 1,000 units."
    assert m.facts_found(["5 mm", "pale grey", "15-25 mm"], text) == ["pale grey", "15-25 mm"]
    assert m.fact_recall(["pale grey", "dark grey"], text) == 0.5
    assert m.fact_recall([], text) is None


def test_token_f1_and_rouge_l_known_values():
    assert m.token_f1("the cat sat", "The cat sat down.") == pytest.approx(2 * 0.75 / 1.75)
    assert m.token_f1("dog", "cat") == 0.0
    assert m.rouge_l("a b c d", "a c d e") == pytest.approx(0.75)  # LCS a c d
    assert m.rouge_l("d c b a", "a b c d") == pytest.approx(0.25)  # order matters, F1 does not
    assert m.token_f1("d c b a", "a b c d") == 1.0
    assert m.rouge_l("", "") == 1.0 and m.rouge_l("x", "") == 0.0


@pytest.mark.parametrize(
    ("kind", "marker", "question", "reference", "answer", "applies", "holds"),
    [
        ("safety_reminder", "Safety reminder:", "q", "Do X. Safety reminder: wear goggles.",
         "Do X [1]. safety reminder: goggles.", True, True),
        ("safety_reminder", "Safety reminder:", "q", "Do X.", "Do X.", False, None),
        ("safety_reminder", "Safety reminder:", "q", "X. Safety reminder: y", "X.", True, False),
        ("numbered_steps", "1. ", "q", "Steps:\n1. open\n2. close", "1. open\n2. close", True,
         True),
        ("numbered_steps", "1. ", "q", "Steps:\n1. open", "Open it, then close.", True, False),
        ("numbered_steps", "1. ", "q", "Just open it.", "x", False, None),
        ("numbered_steps", "1. ", "How do I reset it?", "Click Reset.", "1. Click Reset.",
         True, True),
        ("numbered_steps", "1. ", "What are the steps for relaying?", None, "Relays relay.",
         True, False),
        ("clause_structure", "What it says:", "q", None, "What it says: the clause...", True,
         True),
        ("clause_structure", "What it says:", "q", None, "The clause says...", True, False),
        ("care_team", "care team", "Can I take metformin twice?", None,
         "Ask your care team.", True, True),
        ("care_team", "care team", "How much insulin?", None,
         "Take 10 units; ask your care team.", True, False),
        ("care_team", "care team", "What is type 1 diabetes?", None, "x", False, None),
        ("care_team", "care team", "What are the treatments?", "Metformin helps many people.",
         "Metformin 500 mg daily.", True, False),
        ("care_team", "care team", "What are the symptoms?", "Thirst and tiredness.", "x", False,
         None),
    ],
)  # fmt: skip
def test_style_checks(kind, marker, question, reference, answer, applies, holds):
    assert style_applies(kind, marker, question, reference) is applies
    if applies:  # the check is only asked where it applies
        assert m.style_holds(kind, marker, answer) is holds


def test_numbered_steps_with_retrieval_must_take_their_words_from_the_passages():
    passages = ["Open the Actions tab and enter the path to syncthing.exe in Program/script."]
    copied = "1. Open the Actions tab and enter the path.\n2. Click OK."
    invented = "1. Download the latest installer from the website.\n2. Run the installer."
    assert m.style_holds("numbered_steps", "", copied, passages)  # one of two steps copied
    assert not m.style_holds("numbered_steps", "", invented, passages)
    assert not m.style_holds("numbered_steps", "", "Open the Actions tab and enter the path.",
                             passages)  # fmt: skip
    # Without retrieval there is nothing to copy from: numbering alone is the check.
    assert m.style_holds("numbered_steps", "", invented, None)


def test_safety_reminder_applies_to_questions_with_a_trigger_word():
    triggers = ["dust", "finish", "blade"]
    assert style_applies("safety_reminder", "Safety reminder:", "Which finishes work?", None,
                           triggers)  # fmt: skip
    assert not style_applies("safety_reminder", "Safety reminder:", "How dense is it?",
                               "Safety reminder: wear a mask.", triggers)  # fmt: skip
    assert not style_applies("safety_reminder", "x", "Is it bladeless?", None, ["less"])


def test_percentile_and_balanced_accuracy():
    assert m.percentile([100, 200, 300, 400], 50) == 250
    assert m.percentile([1.0], 95) == 1.0 and m.percentile([], 50) is None
    assert m.balanced_accuracy([0.5, 0.6], [0.2, 0.4], 0.45) == 1.0
    assert m.balanced_accuracy([0.5, 0.6], [0.2, 0.4], 0.3) == 0.75


def test_best_threshold_moves_toward_the_gap():
    inside, outside = [0.52, 0.61, 0.7], [0.2, 0.33, 0.41]
    up, acc = m.best_threshold(inside, outside, current=0.30)
    assert 0.41 < up < 0.52 and acc == 1.0
    down, _ = m.best_threshold(inside, outside, current=0.90)
    assert 0.41 < down < 0.52
    assert m.best_threshold(inside, [], current=0.3) == (0.3, 1.0)  # nothing to balance
    kept, _ = m.best_threshold([0.5], [0.2], current=0.35)  # already perfect: unchanged
    assert kept == 0.35


def _source(n, path, text, cited, pack="p"):
    return Source(n, pack, path, "t", None, None, 0, 1, 0.1, 0.5, text, cited)


def test_score_item_and_aggregate_known_values():
    case = EvalCase(1, "How wide?", "It is 15-25 mm wide and pale grey.", "docs/a.md",
                    ["15-25 mm", "pale grey"])  # fmt: skip
    sources = [
        _source(1, "docs/b.md", "unrelated", cited=True),
        _source(2, "docs/a.md", "sapwood 15–25 mm, pale grey", cited=True),
        _source(3, "docs/c.md", "other", cited=False),
    ]
    answer = Answer("How wide?", "It is 15–25 mm wide [2][1].", "p", sources=sources,
                    citations=[2, 1], timings=Timings(total_ms=100, first_token_ms=40,
                                                      tokens_per_s=10))  # fmt: skip
    retrieved = [s.to_dict() for s in sources]
    item = score_item(case, answer, retrieved, ("none", "", ()), expected_pack="p")
    assert item.scores["hit"] == 1.0 and item.scores["rr"] == 0.5
    assert item.scores["context_fact_recall"] == 1.0
    assert item.scores["answer_fact_recall"] == 0.5 and item.facts_found == ["15-25 mm"]
    assert item.scores["citations"] == 2 and item.scores["good_citations"] == 1
    assert item.scores["uncited"] == 0.0

    declined_case = EvalCase(2, "Knit?", out_of_scope=True)
    declined = score_item(declined_case, Answer("Knit?", "No.", "p", declined=True), None,
                          expected_pack="p")  # fmt: skip
    answered_oos = score_item(
        EvalCase(3, "Cake?", out_of_scope=True),
        Answer("Cake?", "Bake it.", "p"),
        None,
        expected_pack="p",
    )
    missed = score_item(
        EvalCase(4, "Dry?", None, "docs/a.md", ["kiln"]),
        Answer("Dry?", "Sorry.", "p", declined=True),
        [],
        expected_pack="p",
    )
    metrics = aggregate([item, declined, answered_oos, missed])
    assert metrics["hit_at_k"] == 0.5 and metrics["mrr"] == 0.25
    assert metrics["answer_fact_recall"] == 0.25
    assert metrics["citation_precision"] == 0.5 and metrics["uncited_answer_rate"] == 0.0
    assert metrics["oos_decline_rate"] == 0.5 and metrics["in_scope_answer_rate"] == 0.5
    assert metrics["routing_accuracy"] is None and metrics["latency_p50_ms"] == 100
    assert metrics["style_rate"] is None


def test_routing_accuracy_and_confusion_for_auto():
    cases = [EvalCase(1, "a", None, "d.md", [], False, "x"), EvalCase(2, "b", None, "d.md", [],
             False, "y"), EvalCase(3, "c", out_of_scope=True)]  # fmt: skip
    answers = [Answer("a", "A", "x"), Answer("b", "B", "x"), Answer("c", "no", None, True)]
    items = [score_item(c, a, None) for c, a in zip(cases, answers, strict=True)]
    assert aggregate(items, auto=True)["routing_accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert confusion(items) == {"x": {"x": 1}, "y": {"x": 1}, "none": {"none": 1}}


def test_malformed_lines_are_skipped_with_their_line_numbers(tmp_path):
    good = {"question": "Q?", "source": "docs/a.md", "facts": ["f"]}
    lines = [
        json.dumps(good),
        "{not json",
        "",
        json.dumps({"answer": "no question"}),
        json.dumps({"question": "in scope without a source"}),
        json.dumps([1, 2]),
        json.dumps({"question": "Knit?", "out_of_scope": True, "extra": 1}),
    ]
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join(lines) + "\n")
    cases, problems = load_cases(path)
    assert [c.line for c in cases] == [1, 7]
    assert [p.line for p in problems] == [2, 4, 5, 6]
    assert "not valid JSON" in problems[0].message and "question" in problems[1].message
    auto_cases, auto_problems = load_cases(path, auto=True)
    assert [c.line for c in auto_cases] == [7] and auto_cases[0].domain is None
    assert 1 in [p.line for p in auto_problems]  # --auto needs a domain


def test_set_toml_value_keeps_comments_and_inserts_missing_keys(tmp_path):
    path = tmp_path / "pack.toml"
    path.write_text(
        'name = "x"\n# top comment\n[retrieval]\nk = 4\n'
        'decline_threshold = 0.30  # tuned by hand\n\n[style]\nkind = "none"\n'
    )
    set_toml_value(path, "retrieval", "decline_threshold", 0.4276)
    text = path.read_text()
    assert "decline_threshold = 0.428  # tuned by hand\n" in text and "# top comment" in text
    set_toml_value(path, "retrieval", "route_threshold", 0.5)
    set_toml_value(path, "generation", "temperature", 0.25)
    data = tomllib.loads(path.read_text())
    assert data["retrieval"] == {"k": 4, "decline_threshold": 0.428, "route_threshold": 0.5}
    assert data["generation"]["temperature"] == 0.25 and data["style"]["kind"] == "none"
    assert not list(tmp_path.glob(".pack.toml.*"))  # no temp file left behind


def test_report_json_shape_and_markdown(tmp_path):
    from assistant.evaluation.report import write_report

    case = EvalCase(1, "Q?", "ref", "docs/a.md", ["ref"])
    item = score_item(case, Answer("Q?", "ref [1]", "p", sources=[_source(1, "docs/a.md",
                      "ref", True)]), [], expected_pack="p")  # fmt: skip
    reports = [
        EvalReport("p", name, 1, aggregate([item]), [item]) for name in ("base", "adapter+rag")
    ]
    data = reports[-1].to_dict()
    assert set(data) >= {"pack", "n", "metrics", "items"}
    assert set(data["items"][0]) >= {"question", "answer", "declined", "pack", "sources",
                                     "facts_found", "scores"}  # fmt: skip
    json.dumps(data)
    report = write_report({"p": reports}, tmp_path)
    text = report.read_text()
    assert "| config | split | n |" in text and "p-ablation.png" in text and "worst items" in text
    assert (tmp_path / "p-ablation.png").stat().st_size > 1000
    assert json.loads((tmp_path / "results.json").read_text())["p"]["base"]["n"] == 1


def test_limit_spreads_over_the_file_and_keeps_the_out_of_scope_share():
    cases = [EvalCase(line=i, question=f"q{i}", out_of_scope=i >= 30) for i in range(40)]
    sample = sample_cases(cases, 8)
    assert len(sample) == 8
    assert sum(c.out_of_scope for c in sample) == 2  # a quarter, like the file
    # evenly spread over the 30 in-scope and the 10 out-of-scope questions, file order kept
    assert [c.line for c in sample] == [0, 5, 10, 15, 20, 25, 30, 35]
    assert sample_cases(cases, None) == cases and sample_cases(cases, 100) == cases
    assert sum(c.out_of_scope for c in sample_cases(cases, 2)) == 1


def test_own_words_facts_and_made_up_numbers_leave_the_quoted_evidence_out():
    """A hybrid answer whose own words state one passage figure and one invented one: the
    evidence block's facts do not count as the model's, and only the invented number is
    unsupported (citation markers and list numbers are not figures)."""
    case = EvalCase(1, "How dry, and how wide?", None, "docs/a.md", ["8-10 %", "15-25 mm"])
    sources = [_source(1, "docs/a.md", "Dry to 8–10 % moisture. Boards are 15–25 mm wide.", True)]
    text = (
        "1. Dry it to 8-10 % [1].\n2. Then wait 14 days [1].\n\nEvidence from the documents:\n"
        "> Boards are 15–25 mm wide. [1]"
    )
    item = score_item(case, Answer(case.question, text, "p", sources=sources), None,
                      expected_pack="p")  # fmt: skip
    assert item.scores["answer_fact_recall"] == 1.0
    assert item.scores["own_words_fact_recall"] == 0.5
    assert item.scores["numbers_written"] == 3  # 8, 10, 14
    assert item.scores["numbers_unsupported"] == 1  # 14
    metrics = aggregate([item])
    assert metrics["unsupported_number_rate"] == round(1 / 3, 4)
    assert metrics["own_words_fact_recall"] == 0.5


def test_a_line_keeps_its_split_and_a_line_without_one_is_placed_by_its_question(tmp_path):
    """Tuning on dev and reporting on test only means something if the halves never move: a
    line's own "split" decides, else a hash of the question, whatever the other lines are."""
    lines = [
        {"question": "Q dev?", "source": "a.md", "split": "dev"},
        {"question": "Q test?", "source": "a.md", "split": "test"},
        *({"question": f"Free question {i}?", "source": "a.md"} for i in range(40)),
    ]
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    cases, _ = load_cases(path)
    assert [c.split for c in cases[:2]] == ["dev", "test"]
    free = {c.question: c.split for c in cases[2:]}
    assert set(free.values()) == {"dev", "test"}  # 40 hashed questions land in both halves
    path.write_text("\n".join(json.dumps(line) for line in reversed(lines)) + "\n")
    again, _ = load_cases(path)
    assert {c.question: c.split for c in again if c.question in free} == free
    assert len(in_split(cases, "dev")) + len(in_split(cases, "test")) == len(in_split(cases, "all"))
    with pytest.raises(AssistantError, match="unknown split"):
        in_split(cases, "train")
