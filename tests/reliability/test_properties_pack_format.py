"""Property-based tests of the pack file parsers (hypothesis, 1,000 generated cases each):
pack.toml as any text or bytes and as the scaffolded file with random edits, and the JSONL files
(`sft/train.jsonl`, `eval/qa.jsonl`) as any mix of JSON values, near-valid records, text and
bytes. The parsers never raise: `validate_pack` reports problems (file, line within the file,
message), `load_pack_config` raises AssistantError naming pack.toml, and `load_cases` (the eval
runner's reader) raises nothing but AssistantError."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from generated import property_settings
from hypothesis import given
from hypothesis import strategies as st
from test_pack_helpers import new_pack

from assistant.errors import AssistantError
from assistant.evaluation.run import load_cases
from assistant.packs.format import EvalLine, PackConfig, load_pack_config
from assistant.packs.locate import DomainPack
from assistant.packs.validation import Problem, check_eval, check_pack_toml, validate_pack

PROPERTY = property_settings()


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> DomainPack:
    return new_pack(tmp_path_factory.mktemp("packs"))


@pytest.fixture(scope="module")
def scaffold(pack: DomainPack) -> dict[str, bytes]:
    """The scaffolded pack's files, restored after the module's edits."""
    files = {"toml": pack.pack_toml, "sft": pack.sft_file, "eval": pack.eval_file}
    return {key: path.read_bytes() for key, path in files.items()}


def check_problems(problems: list[Problem], path: Path, lines: int) -> None:
    for problem in problems:
        assert problem.file == str(path) and problem.message.strip()
        assert problem.line is None or 1 <= problem.line <= lines + 1, problem
        assert str(problem).startswith(str(path))


def check_toml(pack: DomainPack, raw: bytes) -> None:
    pack.pack_toml.write_bytes(raw)
    data, problems = check_pack_toml(pack)
    assert (data is None) == bool(problems)
    check_problems(problems, pack.pack_toml, raw.count(b"\n") + 1)
    try:
        config = load_pack_config(pack)
    except AssistantError as exc:
        assert problems and str(pack.pack_toml) in str(exc)
    else:
        assert not problems and isinstance(config, PackConfig) and config.name == pack.name


TOML_VALUES = st.one_of(
    st.sampled_from(
        ['"x"', '""', "0", "-1", "1e999", "nan", "inf", "true", "[]", '[1, "a"]', "{a = 1}",
         '"""two\nlines"""', "'literal'", "2024-01-01", "0x10", '"\\u0000"', "9" * 30, '"é"']
    ),
    st.text(max_size=20),
)  # fmt: skip
EDITS = st.one_of(
    st.tuples(st.just("value"), st.integers(0, 200), TOML_VALUES),
    st.tuples(st.just("delete"), st.integers(0, 200), st.just("")),
    st.tuples(st.just("insert"), st.integers(0, 200), st.one_of(st.text(max_size=30), TOML_VALUES)),
    st.tuples(st.just("duplicate"), st.integers(0, 200), st.just("")),
    st.tuples(st.just("truncate"), st.integers(0, 5000), st.just("")),
    st.tuples(st.just("bytes"), st.integers(0, 5000), st.binary(min_size=1, max_size=4)),
)


def edit(raw: bytes, edits: list[tuple[str, int, object]]) -> bytes:
    for kind, at, value in edits:
        lines = raw.split(b"\n")
        i = at % len(lines)
        if kind == "value" and b"=" in lines[i]:
            lines[i] = lines[i].split(b"=", 1)[0] + b"= " + str(value).encode("utf-8")
        elif kind == "delete":
            del lines[i]
        elif kind == "insert":
            lines.insert(i, str(value).encode("utf-8"))
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        raw = b"\n".join(lines)
        if kind == "truncate":
            raw = raw[: at % (len(raw) + 1)]
        elif kind == "bytes":
            pos = at % (len(raw) + 1)
            raw = raw[:pos] + bytes(value) + raw[pos + 1 :]  # type: ignore[call-overload]
    return raw


@PROPERTY
@given(raw=st.one_of(st.binary(max_size=500), st.text(max_size=500).map(str.encode)))
def test_pack_toml_of_any_content(pack: DomainPack, scaffold: dict, raw: bytes) -> None:
    check_toml(pack, raw)


@PROPERTY
@given(edits=st.lists(EDITS, min_size=1, max_size=3))
def test_pack_toml_with_random_edits(pack: DomainPack, scaffold: dict, edits: list) -> None:
    check_toml(pack, edit(scaffold["toml"], edits))


# ----- JSONL ------------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "robot"]), "content": JSON}
)
RECORD = st.fixed_dictionaries(
    {},
    optional={
        "messages": st.one_of(st.lists(MESSAGE, max_size=4), JSON),
        "question": st.one_of(st.text(max_size=30), JSON),
        "source": st.one_of(
            st.sampled_from(["docs/welcome.md", "../x.md", "/etc/passwd", "docs/", "docs/#a"]),
            JSON,
        ),
        "facts": st.one_of(st.lists(st.text(max_size=20), max_size=3), JSON),
        "out_of_scope": JSON,
        "context": JSON,
        "domain": JSON,
    },
)
LINE = st.one_of(
    st.tuples(st.one_of(RECORD, JSON), st.booleans()).map(
        lambda pair: json.dumps(pair[0], ensure_ascii=pair[1]).encode("utf-8")
    ),
    st.text(max_size=40).map(str.encode),
    st.binary(max_size=40),
    st.just(b""),
).map(lambda line: line.replace(b"\n", b" "))


@PROPERTY
@given(sft=st.lists(LINE, max_size=5), qa=st.lists(LINE, max_size=5))
def test_jsonl_files_of_any_lines(
    pack: DomainPack, scaffold: dict, sft: list[bytes], qa: list[bytes]
) -> None:
    pack.pack_toml.write_bytes(scaffold["toml"])
    pack.sft_file.write_bytes(b"\n".join(sft))
    pack.eval_file.write_bytes(b"\n".join(qa))
    problems = validate_pack(pack)
    for path, lines in ((pack.sft_file, sft), (pack.eval_file, qa)):
        mine = [p for p in problems if p.file == str(path)]
        check_problems(mine, path, len(lines))
        reported = {p.line for p in mine}
        for number, line in enumerate(lines, start=1):
            try:
                text = line.decode("utf-8")
                value = json.loads(text) if text.strip() else {}  # blank lines are skipped
            except (UnicodeDecodeError, ValueError):
                text, value = "?", None
            if not isinstance(value, dict):
                assert number in reported, f"line {number} of {path.name} is not an object"
            if not text.strip():
                assert number not in reported
    with contextlib.suppress(AssistantError):
        load_cases(pack.eval_file)


# Any text, with the line breaks of Unicode that JSON leaves unescaped made likely.
QUESTION = st.text(
    st.one_of(st.characters(exclude_categories=["Cs"]), st.sampled_from("\x85\u2028\u2029")),
    min_size=1,
    max_size=40,
).filter(str.strip)


@PROPERTY
@given(
    questions=st.lists(
        QUESTION, min_size=1, max_size=5, unique_by=lambda q: " ".join(q.casefold().split())
    )
)
def test_eval_lines_written_by_the_scaffold_read_back(
    pack: DomainPack, questions: list[str]
) -> None:
    """What the project writes (ensure_ascii=False, like pack_scaffold) reads back as written,
    by validate_pack and by the eval runner alike."""
    rows = [{"question": q, "out_of_scope": True} for q in questions]
    pack.eval_file.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8"
    )
    assert check_eval(pack) == []
    cases, problems = load_cases(pack.eval_file)
    assert not problems
    assert [c.question for c in cases] == [EvalLine.model_validate(r).question for r in rows]
