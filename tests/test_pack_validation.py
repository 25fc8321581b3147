"""validate_pack reports every problem with its file, line and key; load_pack_config refuses a
broken pack.toml with one AssistantError naming the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_pack_helpers import line_of, new_pack, read_jsonl, replace_in, write_jsonl

from assistant.errors import AssistantError
from assistant.packs.format import PackConfig, load_pack_config
from assistant.packs.locate import DomainPack, check_name, find_pack
from assistant.packs.validation import Problem, validate_pack


@pytest.fixture
def pack(tmp_path: Path) -> DomainPack:
    return new_pack(tmp_path / "domains")


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def test_scaffolded_pack_is_valid_and_loads(pack: DomainPack) -> None:
    assert validate_pack(pack) == []
    config = load_pack_config(pack)
    assert isinstance(config, PackConfig)
    assert config.name == "demo"
    assert config.answer_mode == "generate"
    assert config.training.target_modules[:4] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert config.training.layers == 10 and config.training.decline_share == 0.05


def test_bad_toml_reports_its_line(pack: DomainPack) -> None:
    replace_in(pack.pack_toml, 'answer_mode = "generate"', "answer_mode = ")
    problem = only(validate_pack(pack))
    assert problem.file == str(pack.pack_toml)
    assert problem.line == line_of(pack.pack_toml, "answer_mode =")
    assert "not valid TOML" in problem.message


def test_missing_key(pack: DomainPack) -> None:
    text = pack.pack_toml.read_text("utf-8")
    start = text.index("scope = ")
    end = text.index("\n", start)
    pack.pack_toml.write_text(text[:start] + text[end + 1 :], "utf-8")
    problem = only(validate_pack(pack))
    assert problem.key == "scope"
    assert "missing required key 'scope'" in problem.message


def test_unknown_key_has_its_line(pack: DomainPack) -> None:
    replace_in(pack.pack_toml, "[retrieval]\n", "[retrieval]\ncolour = 'red'\n")
    problem = only(validate_pack(pack))
    assert problem.key == "retrieval.colour"
    assert problem.line == line_of(pack.pack_toml, "colour =")
    assert "unknown key" in problem.message
    assert str(problem).startswith(f"{pack.pack_toml}:{problem.line}:")


def test_unknown_section(pack: DomainPack) -> None:
    pack.pack_toml.write_text(pack.pack_toml.read_text("utf-8") + "\n[colours]\nx = 1\n", "utf-8")
    problem = only(validate_pack(pack))
    assert problem.key == "colours"
    assert problem.line == line_of(pack.pack_toml, "[colours]")


def test_wrong_type(pack: DomainPack) -> None:
    replace_in(pack.pack_toml, "seed = 7", 'seed = "seven"')
    problem = only(validate_pack(pack))
    assert problem.key == "training.seed"
    assert problem.line == line_of(pack.pack_toml, "seed =")


def test_bad_literal_and_range(pack: DomainPack) -> None:
    replace_in(pack.pack_toml, 'answer_mode = "generate"', 'answer_mode = "poetry"')
    replace_in(pack.pack_toml, "p_right_passage = 0.95", "p_right_passage = 1.5")
    keys = {p.key for p in validate_pack(pack)}
    assert keys == {"answer_mode", "training.p_right_passage"}


def test_empty_persona(pack: DomainPack) -> None:
    text = pack.pack_toml.read_text("utf-8")
    start = text.index('persona = """')
    end = text.index('"""', start + 13) + 3
    pack.pack_toml.write_text(text[:start] + 'persona = "   "' + text[end:], "utf-8")
    problem = only(validate_pack(pack))
    assert problem.key == "persona"
    assert "must not be empty" in problem.message


def test_name_must_equal_folder(pack: DomainPack) -> None:
    replace_in(pack.pack_toml, 'name = "demo"', 'name = "other"')
    problem = only(validate_pack(pack))
    assert problem.key == "name"
    assert problem.line == line_of(pack.pack_toml, 'name = "other"')
    assert "folder name" in problem.message


def test_invalid_utf8_pack_toml(pack: DomainPack) -> None:
    raw = pack.pack_toml.read_bytes()
    pack.pack_toml.write_bytes(raw.replace(b"[training]", b"[training]\n# caf\xe9", 1))
    problem = only(validate_pack(pack))
    assert "not valid UTF-8" in problem.message
    assert problem.line == raw[: raw.index(b"[training]")].count(b"\n") + 2


def test_missing_pack_toml(pack: DomainPack) -> None:
    pack.pack_toml.unlink()
    assert "pack.toml is missing" in only(validate_pack(pack)).message


def test_malformed_jsonl_line(pack: DomainPack) -> None:
    rows = read_jsonl(pack.eval_file)
    write_jsonl(pack.eval_file, [rows[0], rows[1], "{not json", "[1, 2]"])
    problems = validate_pack(pack)
    assert [(p.file, p.line) for p in problems] == [
        (str(pack.eval_file), 3),
        (str(pack.eval_file), 4),
    ]
    assert "not valid JSON" in problems[0].message
    assert "JSON object" in problems[1].message


def test_blank_lines_are_skipped_but_counted(pack: DomainPack) -> None:
    rows = read_jsonl(pack.eval_file)
    write_jsonl(pack.eval_file, [rows[0], "", {"question": "q?", "source": "docs/none.md"}])
    problem = only(validate_pack(pack))
    assert problem.line == 3


def test_missing_source_document(pack: DomainPack) -> None:
    rows = read_jsonl(pack.eval_file)
    rows[0]["source"] = "docs/missing.md"
    write_jsonl(pack.eval_file, rows)
    problem = only(validate_pack(pack))
    assert (problem.file, problem.line, problem.key) == (str(pack.eval_file), 1, "source")
    assert "does not exist" in problem.message


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("../outside.md", "'..'"),
        ("docs/../../outside.md", "'..'"),
        ("/etc/passwd", "relative"),
        ("C:/x.md", "relative"),
        ("pack.toml", "under docs/"),
    ],
)
def test_escaping_source_paths(pack: DomainPack, source: str, words: str) -> None:
    (pack.root.parent / "outside.md").write_text("secret", "utf-8")
    rows = read_jsonl(pack.sft_file)
    rows[0]["source"] = source
    write_jsonl(pack.sft_file, rows)
    problem = only(validate_pack(pack))
    assert (problem.file, problem.line) == (str(pack.sft_file), 1)
    assert words in problem.message


def test_symlinked_source_leaving_docs(pack: DomainPack, tmp_path: Path) -> None:
    (tmp_path / "secret.md").write_text("secret", "utf-8")
    (pack.docs_dir / "link.md").symlink_to(tmp_path / "secret.md")
    rows = read_jsonl(pack.sft_file)
    rows[0]["source"] = "docs/link.md"
    write_jsonl(pack.sft_file, rows)
    assert "outside" in only(validate_pack(pack)).message


def test_duplicate_question(pack: DomainPack) -> None:
    rows = read_jsonl(pack.eval_file)
    duplicate = dict(rows[0], question="  " + rows[0]["question"].upper() + " ")
    write_jsonl(pack.eval_file, [*rows, duplicate])
    problem = only(validate_pack(pack))
    assert (problem.line, problem.key) == (3, "question")
    assert "same as line 1" in problem.message


def test_fact_must_occur_in_source(pack: DomainPack) -> None:
    rows = read_jsonl(pack.eval_file)
    rows[0]["facts"] = ["ANSWERS questions\n from   the documents", "the moon is cheese"]
    write_jsonl(pack.eval_file, rows)
    problem = only(validate_pack(pack))
    assert (problem.line, problem.key) == (1, "facts")
    assert "the moon is cheese" in problem.message


def test_facts_in_html_and_markdown_emphasis(pack: DomainPack) -> None:
    (pack.docs_dir / "page.html").write_text(
        "<html><script>var hidden=1</script><p>Check your <b>blood&nbsp;sugar</b> daily.</p>",
        "utf-8",
    )
    (pack.docs_dir / "notes.md").write_text("Always **rest** after exercise.", "utf-8")
    rows = read_jsonl(pack.eval_file)
    rows.append({"question": "h?", "source": "docs/page.html", "facts": ["blood sugar daily"]})
    rows.append({"question": "m?", "source": "docs/notes.md", "facts": ["always rest after"]})
    rows.append({"question": "s?", "source": "docs/page.html", "facts": ["var hidden"]})
    write_jsonl(pack.eval_file, rows)
    problem = only(validate_pack(pack))
    assert problem.line == 5


def test_eval_source_required_unless_out_of_scope(pack: DomainPack) -> None:
    rows = read_jsonl(pack.eval_file)
    del rows[0]["source"]
    rows[1]["extra_field"] = "ignored"
    write_jsonl(pack.eval_file, rows)
    problem = only(validate_pack(pack))
    assert problem.line == 1
    assert "source is required" in problem.message


@pytest.mark.parametrize(
    ("messages", "words"),
    [
        ([{"role": "user", "content": "hi"}, {"role": "user", "content": "hi"}], "last message"),
        (
            [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}],
            "user message",
        ),
        ([{"role": "robot", "content": "x"}, {"role": "assistant", "content": "a"}], "role"),
        ([{"role": "user", "content": "x"}, {"role": "assistant", "content": " "}], "empty"),
    ],
)
def test_sft_message_rules(pack: DomainPack, messages: list, words: str) -> None:
    rows = read_jsonl(pack.sft_file)
    rows[1]["messages"] = messages
    write_jsonl(pack.sft_file, rows)
    problems = validate_pack(pack)
    assert problems and all(p.line == 2 for p in problems)
    assert any(words in p.message for p in problems), [str(p) for p in problems]


def test_sft_unknown_field_is_an_error(pack: DomainPack) -> None:
    rows = read_jsonl(pack.sft_file)
    rows[0]["fact"] = ["typo of facts"]
    write_jsonl(pack.sft_file, rows)
    problem = only(validate_pack(pack))
    assert problem.key == "fact" and "unknown key" in problem.message


def test_every_problem_is_reported_at_once(pack: DomainPack) -> None:
    replace_in(pack.pack_toml, "[retrieval]\n", "[retrieval]\nbogus = 1\n")
    replace_in(pack.pack_toml, "seed = 7", "seed = 'x'")
    write_jsonl(pack.sft_file, ["nope", {"messages": []}])
    rows = read_jsonl(pack.eval_file)
    rows[0]["source"] = "docs/gone.md"
    write_jsonl(pack.eval_file, [*rows, rows[1]])
    problems = validate_pack(pack)
    files = [Path(p.file).name for p in problems]
    assert files.count("pack.toml") == 2
    assert files.count("train.jsonl") == 2
    assert files.count("qa.jsonl") == 2


def test_missing_files_and_empty_docs(pack: DomainPack) -> None:
    pack.sft_file.unlink()
    for doc in pack.docs_dir.iterdir():
        doc.unlink()
    messages = [p.message for p in validate_pack(pack)]
    assert any("docs/ holds no documents" in m for m in messages)
    assert any("training examples file is missing" in m for m in messages)


def test_load_pack_config_names_file_and_key(pack: DomainPack) -> None:
    replace_in(pack.pack_toml, "[retrieval]\n", "[retrieval]\nkk = 3\n")
    with pytest.raises(AssistantError) as info:
        load_pack_config(pack)
    assert str(pack.pack_toml) in str(info.value)
    assert "retrieval.kk" in str(info.value)


def test_global_defaults_fill_unset_keys(pack: DomainPack, monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.settings import load_settings

    monkeypatch.setenv("ASSISTANT_K", "9")
    monkeypatch.setenv("ASSISTANT_MAX_NEW_TOKENS", "77")
    loaded = load_settings()
    config = load_pack_config(pack, loaded)
    assert config.retrieval.k == 9
    assert config.generation.max_new_tokens == 77
    replace_in(pack.pack_toml, "[retrieval]\n", "[retrieval]\nk = 3\n")
    assert load_pack_config(pack, loaded).retrieval.k == 3


def test_a_pack_that_sets_nothing_gets_the_global_generation_settings(
    pack: DomainPack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assistant.settings import load_settings

    monkeypatch.setenv("ASSISTANT_NO_REPEAT_NGRAM", "5")
    loaded = load_settings()
    assert load_pack_config(pack, loaded).generation == loaded.settings.generation
    replace_in(pack.pack_toml, "[generation]\n", "[generation]\nmax_new_tokens = 99\n")
    generation = load_pack_config(pack, loaded).generation
    assert generation == loaded.settings.generation.model_copy(update={"max_new_tokens": 99})


def test_overlap_must_be_below_chunk(pack: DomainPack) -> None:
    replace_in(
        pack.pack_toml, "[retrieval]\n", "[retrieval]\nchunk_tokens = 50\nchunk_overlap = 50\n"
    )
    assert "chunk_overlap must be smaller" in only(validate_pack(pack)).message


@pytest.mark.parametrize("name", ["Bad", "a_b", "..", "a/b", "-x", "", "x" * 70, "é"])
def test_bad_names_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(AssistantError, match="invalid pack name"):
        check_name(name)
    with pytest.raises(AssistantError, match="invalid pack name"):
        find_pack(name)
    with pytest.raises(AssistantError, match="invalid pack name"):
        new_pack(tmp_path, name)
    assert list(tmp_path.iterdir()) == []


def test_find_pack_accepts_a_path(pack: DomainPack) -> None:
    assert find_pack(pack.root) == pack
    with pytest.raises(AssistantError, match="unknown pack 'demo'"):
        find_pack("demo")
