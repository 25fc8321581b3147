"""`assistant ask`: one answer, streamed to the terminal, then its sources."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console

from assistant.cli.context import Context, pass_context
from assistant.errors import AssistantError


def read_question(question: str | None) -> str:
    """The question from the argument, or from stdin when it is '-' or absent and piped."""
    if question in (None, "-"):
        if sys.stdin is None or sys.stdin.isatty():
            raise AssistantError('no question given: assistant ask PACK "your question"')
        data = sys.stdin.buffer.read()
        try:
            question = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AssistantError(
                f"stdin is not UTF-8 text (byte {exc.start}); convert it, e.g. with iconv"
            ) from None
    question = question.strip()
    if not question:
        raise AssistantError('the question is empty: assistant ask PACK "your question"')
    return question


def pack_and_question(
    arguments: tuple[str, ...], auto: bool, no_rag: bool
) -> tuple[str | None, str | None]:
    """The PACK and QUESTION arguments (None: the router picks / read stdin), or a usage error."""
    if len(arguments) > 2:
        raise AssistantError('too many arguments: quote the question, assistant ask PACK "..."')
    if auto or (no_rag and len(arguments) <= 1):
        if len(arguments) == 2:
            raise AssistantError("--auto picks the pack itself: give only the question")
        return None, (arguments[0] if arguments else None)
    if len(arguments) == 2:
        return arguments[0], arguments[1]
    if len(arguments) == 1 and not sys.stdin.isatty():
        return arguments[0], None
    raise AssistantError(
        'give a pack and a question: assistant ask PACK "question" (or --auto "question")'
    )


@click.command()
@click.argument("arguments", nargs=-1, metavar="[PACK] QUESTION")
@click.option("--auto", is_flag=True, help="Let the router pick the pack (or decline).")
@click.option("--json", "as_json", is_flag=True, help="Print the Answer as JSON (no streaming).")
@click.option("--no-rag", is_flag=True, help="No retrieval: the model (and adapter) alone.")
@click.option("--no-adapter", is_flag=True, help="The base model without the pack's adapter.")
@click.option("-k", type=click.IntRange(1, 20), help="Passages to retrieve (default: pack.toml).")
@click.option("--max-tokens", type=click.IntRange(1, 4096), help="Most tokens in the answer.")
@click.option(
    "--mode",
    type=click.Choice(["generate", "extractive", "hybrid"]),
    help="generate: the model writes the answer; extractive: quote the best passage sentences;"
    " hybrid: both. Default: the pack's answer_mode.",
)
@click.option(
    "--grounding",
    type=click.Choice(["strict", "mark", "off"]),
    help="Generated sentences the passages do not support: strict leaves them out, mark shows"
    " them marked, off shows them as written. Default: the pack's grounding.",
)
@pass_context
def ask(
    ctx: Context,
    arguments: tuple[str, ...],
    auto: bool,
    as_json: bool,
    no_rag: bool,
    no_adapter: bool,
    k: int | None,
    max_tokens: int | None,
    mode: str | None,
    grounding: str | None,
) -> None:
    """Answer QUESTION from PACK, citing the passages it used.

    \b
    assistant ask diabetes "What is hypoglycemia?"
    assistant ask --auto "How do I share a folder?"
    echo "What is a force majeure clause?" | assistant ask contracts -
    assistant ask --no-rag "What is insulin?"        (the base model alone)
    """
    from assistant.answering.router import Router

    pack, question = pack_and_question(arguments, auto, no_rag)
    text = read_question(question)
    loaded = ctx.settings
    router = Router(loaded)
    if pack is not None:
        from assistant.packs.locate import find_pack

        find_pack(pack)  # unknown pack: one line with the packs and the closest name
    if no_rag and pack is None:
        stream = router.stream_base(text, max_tokens)
    else:
        stream = router.stream(
            text,
            pack,
            rag=not no_rag,
            adapter=not no_adapter,
            k=k,
            max_tokens=max_tokens,
            mode=mode,
            grounding=grounding,
        )
    for piece in stream:
        if not as_json:
            click.echo(piece, nl=False)
    answer = stream.answer
    if as_json:
        click.echo(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
        return
    click.echo()
    _print_sources(answer)


def _print_sources(answer) -> None:
    console = Console(stderr=False, highlight=False)
    for notice in answer.notices:
        console.print(f"[yellow]note:[/] {notice}")
    if answer.declined:
        console.print(f"[dim]declined: {answer.decline_reason}[/]")
    shown = [s for s in answer.sources if s.cited] or answer.sources[:0]
    if shown:
        console.print("[bold]Sources[/]")
    for source in shown:
        where = source.path + (f" § {source.section}" if source.section else "")
        snippet = " ".join(source.text.split())[:140]
        console.print(f" [{source.number}] [cyan]{where}[/]  [dim]{snippet}…[/]")
    if not shown and answer.sources and not answer.declined:
        console.print(
            "[dim]no passage was cited; retrieved: "
            + ", ".join(sorted({s.path for s in answer.sources}))
            + "[/]"
        )
    t = answer.timings
    console.print(
        f"[dim]{answer.pack or 'no pack'} · adapter {answer.adapter or 'none'} · routing"
        f" {t.routing_ms:.0f} ms · retrieval {t.retrieval_ms:.0f} ms · first token"
        f" {t.first_token_ms:.0f} ms · {t.tokens_per_s:.1f} tok/s[/]"
    )
