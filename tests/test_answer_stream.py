"""`AnswerStream`, the object every face reads an answer from (a fake steps generator stands in
for the router: the stream's bookkeeping does not depend on the model)."""

from __future__ import annotations

from assistant.answering.answers import Answer, AnswerStream


def _steps():
    yield "Hello"
    yield ", world"
    return Answer("q", "Hello, world", "support")


def test_a_loop_left_early_and_finish_give_the_whole_answer() -> None:
    stream = AnswerStream(_steps())
    assert next(iter(stream)) == "Hello"  # the temporary iterator is dropped here
    assert not stream.done
    assert stream.finish().answer == "Hello, world"
    assert stream.done and list(stream) == []


def test_closing_stops_the_answer() -> None:
    closed = []

    def steps():
        try:
            yield "a"
            yield "b"
        finally:
            closed.append(True)
        return Answer("q", "ab", None)

    stream = AnswerStream(steps())
    next(stream)
    stream.close()
    assert closed and not stream.done
