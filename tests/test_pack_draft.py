"""`assistant pack draft`: training and eval lines drafted from a folder of documents
(tests/fixtures/draft: two small manuals and a note with no sentence). Pure text rules, no
model: every drafted fact is copied from its source, every line validates, a second draft
keeps the lines a person wrote or edited, and a pack with nothing to draft from is exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from assistant.errors import AssistantError
from assistant.knowledge.loaders import load_document
from assistant.packs.scaffold import create_pack
from assistant.packs.validation import validate_pack
from assistant.training.draft_pack import draft_pack

FIXTURE = Path(__file__).parent / "fixtures" / "draft"


def lines(path: Path) -> list[dict]:
    return [json.loads(text) for text in path.read_text("utf-8").splitlines() if text.strip()]


@pytest.fixture
def pack(tmp_path: Path):
    return create_pack("appliances", parent=tmp_path / "domains", from_dir=FIXTURE).pack


def test_every_drafted_fact_is_in_its_source_and_every_line_validates(pack) -> None:
    report = draft_pack(pack, count=10)
    assert report.sft_drafted >= 4 and report.eval_drafted >= 4
    assert any("empty-notes.txt" in path for path, _ in report.skipped)
    drafted = [*lines(pack.sft_file), *lines(pack.eval_file)]
    drafted = [line for line in drafted if line.get("origin") == "drafted"]
    for line in drafted:
        if line.get("source"):
            text = load_document(pack.root / line["source"]).text
            flat = " ".join(text.split())
            assert line["facts"], line
            assert all(" ".join(fact.split()) in flat for fact in line["facts"]), line
    problems = [p for p in validate_pack(pack) if p.file.endswith(("train.jsonl", "qa.jsonl"))]
    assert problems == []
    evals = lines(pack.eval_file)
    assert {line["split"] for line in evals if line.get("origin") == "drafted"} == {"dev", "test"}
    assert any(line.get("out_of_scope") for line in evals)
    # eval questions come from documents training never sees
    trained = {line.get("source") for line in lines(pack.sft_file) if line.get("origin")}
    asked = {line.get("source") for line in evals if line.get("source") and line.get("origin")}
    assert asked and not asked & trained
    questions = [line["question"] for line in evals]
    assert len(questions) == len(set(questions))


def test_a_second_draft_keeps_what_a_person_wrote_or_edited(pack) -> None:
    draft_pack(pack, count=10)
    evals = lines(pack.eval_file)
    edited = next(line for line in evals if line.get("origin") == "drafted" and line.get("facts"))
    edited["question"] = "My own better wording of this question?"
    mine = {"question": "Written by hand?", "source": edited["source"], "facts": ["kettle"]}
    others = [line for line in evals if line is not edited]
    pack.eval_file.write_text(
        "".join(json.dumps(line) + "\n" for line in [edited, mine, *others]), "utf-8"
    )
    report = draft_pack(pack, count=10)
    again = lines(pack.eval_file)
    assert report.kept >= 2
    assert edited in again and mine in again
    assert len([line for line in again if line["question"] == edited["question"]]) == 1


def test_nothing_to_draft_from_is_one_line_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "binary.txt").write_bytes(b"\x00\x01\x02" * 10)
    pack = create_pack("nothing", parent=tmp_path / "domains", from_dir=empty).pack
    for path in pack.docs_dir.iterdir():
        path.unlink()
    (pack.docs_dir / "binary.txt").write_bytes(b"\x00\x01\x02" * 10)
    sft_before = pack.sft_file.read_bytes()
    with pytest.raises(AssistantError, match="no document to draft from"):
        draft_pack(pack)
    assert pack.sft_file.read_bytes() == sft_before  # nothing half-written
    result = CliRunner().invoke(cli, ["pack", "draft", str(pack.root)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("heading", "question"),
    [
        ("Installing Syncthing", "How do I install Syncthing?"),
        ("Filling the kettle", "How do I fill the kettle?"),
        ("Descaling", "How do I descale?"),
        ("Browning control", "What should I know about browning control in Toaster?"),
        ("Why is it slow?", "Why is it slow?"),
        ("How to reset the clock", "How do I reset the clock?"),
        ("Preparing your program", "How do I prepare my program?"),
        ("Differencing Profiles with cg_diff", "How do I difference Profiles with cg_diff?"),
        ("Merging Profiles with cg_merge", "How do I merge Profiles with cg_merge?"),
    ],
)
def test_a_heading_becomes_the_question_a_user_would_ask(heading: str, question: str) -> None:
    from assistant.training.drafting import heading_question

    assert heading_question(heading, "Toaster") == question


@pytest.mark.parametrize(
    ("term", "defined"),
    [
        ("The crumb tray", "the crumb tray"),
        ("Memcheck", "Memcheck"),
        ("DHAT", "DHAT"),
        ("The information", None),
        ("In that sense it", None),
        ("Note that inferior function calls", None),
        ("The second part", None),
        ("Andreas Arnez", "Andreas Arnez"),
    ],
)
def test_only_a_named_thing_makes_a_what_is_question(term: str, defined: str | None) -> None:
    """Read on a manual I did not write: "What is in that sense it?" and "What is the
    information?" were drafted from sentences that define nothing."""
    from assistant.training.drafting import defined_term

    assert defined_term(term) == defined


def test_the_placeholder_description_and_scope_are_drafted_and_a_person_s_kept(pack) -> None:
    """Routing compares a question with the description: the scaffold's placeholder names
    nothing. A draft names the documents; a description a person wrote stays."""
    from assistant.packs.format import load_pack_config
    from assistant.packs.scaffold import DEFAULT_SCOPE, DESCRIPTION_TAIL

    assert DESCRIPTION_TAIL in pack.pack_toml.read_text("utf-8")
    draft_pack(pack, count=10)
    config = load_pack_config(pack)
    assert "Kettle manual" in config.description and "Toaster guide" in config.description
    assert "Kettle manual" in config.scope and DEFAULT_SCOPE not in config.scope
    assert "empty-notes" not in config.description  # it gave nothing to draft
    assert "an expert in Kettle manual; Toaster guide" in config.persona
    assert all(
        line["messages"][0]["content"] == config.persona for line in lines(pack.sft_file)
    )  # training learns with the persona the pack answers with
    text = pack.pack_toml.read_text("utf-8").replace("Kettle manual", "My own words on kettles")
    pack.pack_toml.write_text(text, "utf-8")
    draft_pack(pack, count=10)
    assert "My own words on kettles" in load_pack_config(pack).description


def test_the_scaffold_examples_and_welcome_page_give_way_to_the_draft(pack) -> None:
    draft_pack(pack, count=10)
    drafted = [*lines(pack.sft_file), *lines(pack.eval_file)]
    assert not any("welcome.md" in str(line.get("source")) for line in drafted)
    assert not any("pack do?" in json.dumps(line) for line in drafted)
    assert all(line.get("origin") == "drafted" for line in drafted)


def test_eval_questions_are_those_whose_facts_retrieval_finds(pack) -> None:
    # A stand-in for the index (the rule does not depend on the model): retrieval finds the
    # kettle's passages and nothing of the toaster's.
    kettle = load_document(pack.docs_dir / "kettle.md").text
    asked: list[str] = []

    def search(question: str) -> list[str]:
        asked.append(question)
        return [kettle]

    seen: list[tuple[int, int]] = []
    report = draft_pack(
        pack, count=10, search=search, progress=lambda done, total, _: seen.append((done, total))
    )
    in_scope = [line for line in lines(pack.eval_file) if line.get("source")]
    assert in_scope and {line["source"] for line in in_scope} == {"docs/kettle.md"}
    assert report.unanswerable == 0  # the toaster's questions went to training whole
    assert seen and seen[-1][0] == seen[-1][1] == len(asked)


def test_train_count_caps_the_drafted_training_lines(pack) -> None:
    report = draft_pack(pack, count=4, train_count=2)
    answers = [line for line in lines(pack.sft_file) if line["kind"] == "answer"]
    assert len(answers) == 2 and report.sft_drafted >= 2


def _folder(tmp_path: Path, files: dict[str, bytes]) -> Path:
    folder = tmp_path / "from"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize(
    ("files", "said"),
    [
        ({"data.txt": b"\x00\x01binary" * 100}, "binary file"),
        ({"huge.txt": b"The pump runs at 0.5 units per hour.\n" * 460_000}, "too large"),
        ({"list.md": b"# Title\n\n- a\n- b\n"}, "no question could be drafted"),
    ],
    ids=["binary-renamed-txt", "17-MiB-text", "no-sentence"],
)
def test_pack_new_from_a_folder_that_makes_nothing_leaves_nothing(
    tmp_path: Path, files: dict[str, bytes], said: str
) -> None:
    home = Path(os.environ["ASSISTANT_HOME"])
    result = CliRunner().invoke(
        cli, ["pack", "new", "nothing", "--from", str(_folder(tmp_path, files))]
    )
    assert result.exit_code == 2, result.output
    error = result.output.strip().splitlines()[-1]
    assert error.startswith("error: ") and said in error and "nothing was created" in error
    assert not (home / "packs" / "nothing").exists()
    assert not (home / "indexes" / "nothing").exists()


def test_pack_new_from_skips_a_bad_file_names_it_and_uses_the_rest(tmp_path: Path) -> None:
    kettle = (FIXTURE / "kettle.md").read_bytes()
    latin1 = "Café crème is served at 8 am every morning in the hall.\n".encode("cp1252")
    folder = _folder(
        tmp_path, {"data.txt": b"\x00binary" * 50, "kettle.md": kettle, "menu.txt": latin1}
    )
    result = CliRunner().invoke(cli, ["pack", "new", "mixed", "--from", str(folder)])
    assert result.exit_code == 0, result.output
    assert f"skipped {folder / 'data.txt'}: binary file" in result.output
    pack = Path(os.environ["ASSISTANT_HOME"]) / "packs" / "mixed"
    assert not (pack / "docs" / "data.txt").exists()  # not kept: nothing can read it
    assert "data.txt" not in (pack / "SOURCES.md").read_text("utf-8")
    assert (folder / "data.txt").is_file()
    assert "Café crème" in (pack / "docs" / "menu.txt").read_bytes().decode("cp1252")
    assert any(line.get("origin") == "drafted" for line in lines(pack / "sft" / "train.jsonl"))


def test_a_question_a_person_s_eval_asks_is_never_trained_on(pack) -> None:
    """Read on the shipped diabetes pack: 12 of its 21 hand-written test questions are its
    documents' own headings, which the draft turned into training lines."""
    draft_pack(pack, count=10, train_count=100)
    trained = [line["messages"][1]["content"] for line in lines(pack.sft_file)]
    mine = {"question": trained[0], "answer": "My answer.", "facts": [], "split": "test"}
    with pack.eval_file.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(mine) + "\n")
    draft_pack(pack, count=10, train_count=100)
    retrained = [line["messages"][1]["content"] for line in lines(pack.sft_file)]
    assert trained[0] not in retrained and len(retrained) == len(trained) - 1


def test_drafted_replies_carry_no_citation_training_would_double(pack) -> None:
    """Training inserts the right passage's [n] into a reply (RAFT shuffles the passages); a
    drafted "[1]" stayed beside it and taught the Valgrind adapter to end "... [1]. [1]"."""
    from assistant.text import CITATION

    draft_pack(pack, count=10)
    replies = [line["messages"][2]["content"] for line in lines(pack.sft_file)]
    assert replies and not any(CITATION.search(reply) for reply in replies)
