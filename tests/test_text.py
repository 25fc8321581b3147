"""The shared text rules: the fact match that eval scores with and training picks passages by,
the sentence and clause splitters, and the term set."""

from __future__ import annotations

from assistant.text import clauses, fact_in, numbers_in, reply_sentences, sentences, terms


def test_fact_in_ignores_case_punctuation_and_line_breaks() -> None:
    text = "The sapwood is 15–25 mm wide,\npale Grey; it dries at 3.5 % and costs 1,000 units."
    assert fact_in("pale grey", text)  # other case, punctuation after
    assert not fact_in("dark grey", text)  # absent
    assert fact_in("wide pale grey", text)  # split by a line break and a comma
    assert fact_in("15-25 mm", text)  # en dash vs hyphen
    assert fact_in("3.5", text) and not fact_in("35", text)  # as written
    assert fact_in("1,000 units", text) and not fact_in("1000 units", text)
    assert fact_in("doesn't", "it doesnt") and fact_in("far", "far [1]")
    assert fact_in("ﬁre", "Fire") and not fact_in("", text)  # NFKC; an empty fact is never found


def test_a_number_is_never_found_inside_a_longer_number_or_word() -> None:
    # The rule training used before (a lowercase substring) found "5" in all of these.
    assert not fact_in("5", "Set it to 50 mm.")
    assert not fact_in("5", "a pH of 3.5")
    assert not fact_in("5 mm", "The sapwood is 25 mm wide.")
    assert not fact_in("1,000", "11,000 units")
    assert not fact_in("oak", "cloak")
    assert fact_in("5", "Set it to 5 mm, or 5.")
    assert fact_in("5", "between 5-10 minutes")  # a dash separates two numbers


def test_sentences_end_at_stops_and_line_breaks_but_not_inside_numbers_or_names() -> None:
    text = "Set 2.5 s in config.xml now.  Restart!\nSteps:\n1. Open it\nDone? yes"
    assert sentences(text) == [
        "Set 2.5 s in config.xml now.",
        "Restart!",
        "Steps:",
        "1.",
        "Open it",
        "Done?",
        "yes",
    ]
    assert sentences("  One.  Two  ") == ["One.", "Two"] and sentences(" \n ") == []


def test_a_reply_sentence_keeps_its_quote_and_its_lines() -> None:
    reply = 'What it says: "the Software ..." What it means: it is licensed.\nRisk: none. Ask.'
    assert reply_sentences(reply) == [
        'What it says: "the Software ..." What it means: it is licensed.',
        "Risk: none.",
        "Ask.",
    ]


def test_a_step_number_opens_its_sentence() -> None:
    reply = "Steps:\n1. Open it. Then wait.\n  2. Click Save.\nSet it to 2. Done."
    assert reply_sentences(reply) == [
        "Steps:\n1. Open it.",
        "Then wait.",
        "2. Click Save.",
        "Set it to 2.",
        "Done.",
    ]


def test_clauses_also_break_after_semicolons_and_colons() -> None:
    text = "Dry it: slowly; evenly.\n\nThen 2.5 cm cuts."
    assert clauses(text) == ["Dry it:", "slowly;", "evenly.", "Then 2.5 cm cuts."]


def test_terms_are_stemmed_content_words() -> None:
    assert terms("What are the symptoms of a dry Cough?") == {"sympt", "dry", "cough"}


def test_numbers_in_reads_figures_as_written_in_one_form():
    """Thousands separators and trailing zeros do not make a new number; names with digits,
    citation markers and list numbers are not figures."""
    text = "1. An A1C of 6.0 [2] or 5.7–6.4 [1, 3]; 1,000 mg in v2 at 0.50 mm, version 10.2.1."
    assert numbers_in(text) == ["6", "5.7", "6.4", "1000", "0.5", "10.2.1"]
    assert numbers_in("1000 and 6") == ["1000", "6"]
