"""`assistant train PACK`: train the pack's LoRA style adapter, with a progress bar and loss."""

from __future__ import annotations

import json
import signal
import threading

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from assistant.cli.context import Context, pass_context
from assistant.packs.locate import pack_from_argument
from assistant.training.report import TrainReport


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


@click.command()
@click.argument("pack")
@click.option(
    "--dry-run", is_flag=True, help="Build the data and print examples, tokens and a time estimate."
)
@click.option(
    "--max-steps", type=click.IntRange(1), help="Stop after this many optimizer steps (quick runs)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_context
def train(ctx: Context, pack: str, dry_run: bool, max_steps: int | None, as_json: bool) -> None:
    """Train PACK's style adapter on its sft/train.jsonl with retrieved passages (RAFT-style).

    Each example's prompt holds passages from the pack's index: the one with the answer (with
    probability p_right_passage from pack.toml) and distractors; the target cites it as [n], or
    says the documents do not cover the question. Settings come from pack.toml [training].
    Ctrl-C stops cleanly: the old adapter stays, the last checkpoint is kept in the cache.
    """
    from assistant.training.trainer import train as run_training

    domain = pack_from_argument(pack)
    stop = threading.Event()
    console = Console(stderr=True)
    if dry_run:
        report = run_training(domain, ctx.settings, dry_run=True, max_steps=max_steps)
    else:
        columns = (
            TextColumn("[bold]training {task.fields[pack]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console, disable=as_json) as bar:
            task = bar.add_task("train", total=None, pack=domain.name, loss="-")

            def progress(step: int, total: int, loss: float | None) -> None:
                shown = f"{loss:.3f}" if loss is not None else "-"
                bar.update(task, completed=step, total=total, loss=shown)

            def interrupt(signum: int, frame: object) -> None:
                stop.set()
                console.print("stopping after this step…")

            def planned(plan: TrainReport) -> None:
                if not as_json:
                    console.print(
                        f"{plan.examples} examples, {plan.steps} steps: about"
                        f" {_minutes(plan.estimated_seconds)} on this CPU (an estimate; the bar"
                        " shows the real pace)"
                    )

            previous = signal.signal(signal.SIGINT, interrupt)
            try:
                report = run_training(
                    domain,
                    ctx.settings,
                    max_steps=max_steps,
                    progress=progress,
                    stop=stop,
                    planned=planned,
                )
            finally:
                signal.signal(signal.SIGINT, previous)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    click.echo(
        f"{report.examples} examples ({report.with_right_passage} with the right passage),"
        f" {report.tokens} tokens, {report.steps} steps"
    )
    if report.dry_run:
        click.echo(f"estimated time: {_minutes(report.estimated_seconds)} on this machine's CPU")
    else:
        click.echo(
            f"trained in {report.wall_seconds / 60:.1f} min, final loss {report.final_loss:.3f};"
            f" adapter written to {report.adapter_dir}"
        )
