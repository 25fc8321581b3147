"""`assistant ask`: one answer, streamed to the terminal."""

from __future__ import annotations

import sys

import click

from assistant.cli.app import Context, cli, pass_context
from assistant.errors import AssistantError


def read_question(question: str | None) -> str:
    """The question from the argument, or from stdin when it is '-' or absent and piped."""
    if question in (None, "-"):
        if sys.stdin is None or sys.stdin.isatty():
            raise AssistantError('no question given: assistant ask [PACK] "your question"')
        data = sys.stdin.buffer.read()
        try:
            question = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AssistantError(
                f"stdin is not UTF-8 text (byte {exc.start}); convert it, e.g. with iconv"
            ) from None
    question = question.strip()
    if not question:
        raise AssistantError('the question is empty: assistant ask [PACK] "your question"')
    return question


@cli.command()
@click.argument("question", required=False)
@click.option("--no-rag", is_flag=True, help="Answer from the model alone, without retrieval.")
@click.option("--max-tokens", type=click.IntRange(1, 4096), help="Most tokens in the answer.")
@pass_context
def ask(ctx: Context, question: str | None, no_rag: bool, max_tokens: int | None) -> None:
    """Answer one QUESTION, streamed to the terminal ('-' or a pipe reads it from stdin)."""
    from assistant.generation import GenerationOptions, GenerationStats, stream_chat
    from assistant.models import load_base_model

    if not no_rag:
        raise AssistantError("answers with retrieval need a domain pack; for now use --no-rag")
    text = read_question(question)
    loaded = ctx.settings
    handle = load_base_model(loaded)
    options = GenerationOptions.from_settings(loaded.settings.generation, max_new_tokens=max_tokens)
    stats = GenerationStats()
    for piece in stream_chat(handle, [{"role": "user", "content": text}], options, stats=stats):
        click.echo(piece, nl=False)
    click.echo()
    click.secho(
        f"{stats.new_tokens} tokens, first after {stats.first_token_s:.2f} s,"
        f" {stats.decode_tokens_per_s:.1f} tokens/s",
        err=True,
        dim=True,
    )
