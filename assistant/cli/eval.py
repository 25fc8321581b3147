"""`assistant eval`: scripted Q&A evaluation, ablations, reports and threshold calibration."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from assistant.cli.context import INTERRUPTED_EXIT, Context, pass_context
from assistant.errors import AssistantError, NotFoundError

HELP = """Evaluate PACK on its eval/qa.jsonl (or --qa FILE), the router on a file (--auto), or
every pack (--all). Lines: question, answer, source, facts, out_of_scope (and domain for
--auto: the pack that should answer, null if every pack should decline). A bad line is
reported with its number and skipped.

\b
Metrics (means over the items where they apply; docs/eval/METRICS.md):
  hit_at_k             the source document is among the k retrieved passages
  mrr                  1/rank of the first passage from the source document (0 if none)
  context_fact_recall  share of facts present in the retrieved passages
  answer_fact_recall   share of facts present in the answer (case, whitespace and
                       punctuation normalized; numbers compared as written)
  own_words_fact_recall  share of facts in the model's own words (before the evidence)
  evidence_fact_recall share of facts in the quoted evidence
  unsupported_sentence_rate  sentences the model wrote that the claim check does not
                       support (left out of the answer with grounding = "strict")
  unsupported_number_rate  numbers in its own words that neither the passages nor the
                       question state, of all numbers it wrote
  token_f1, rouge_l    word-overlap F1 and longest-common-subsequence F1 vs the reference
  citation_precision   cited passages from the source document or holding a fact
  uncited_answer_rate  answered in-scope questions that cite no passage
  source_cited_rate    answers citing a passage of the source document
  style_rate           the pack's style check holds (pack.toml [style])
  oos_decline_rate     out-of-scope questions declined
  in_scope_answer_rate in-scope questions answered (not declined)
  routing_accuracy     --auto: routed to the expected pack (or declined when null)
  latency_p50/p95_ms, first_token_p50_ms, tokens_per_s   cost

\b
assistant eval penguin-wood --limit 5
assistant eval --auto --qa mixed.jsonl --json -
assistant eval --all --ablate --report docs/eval
assistant eval diabetes --calibrate --write
"""


@click.command(name="eval", help=HELP)
@click.argument("pack", required=False)
@click.option("--qa", "qa_file", type=click.Path(path_type=Path), help="Eval file (JSONL).")
@click.option("--auto", is_flag=True, help="Let the router pick the pack; lines need 'domain'.")
@click.option("--all", "all_packs", is_flag=True, help="Every pack, each on its own eval file.")
@click.option(
    "--limit",
    type=click.IntRange(1),
    help="Only N questions of each file (spread evenly over it, keeping its share of"
    " out-of-scope ones).",
)
@click.option("--json", "json_out", help="Write the report(s) as JSON to this file ('-': stdout).")
@click.option("--ablate", is_flag=True, help="Base/adapter x with/without retrieval (4 runs).")
@click.option("--report", "report_dir", type=click.Path(path_type=Path), help="Markdown report.")
@click.option("--calibrate", is_flag=True, help="Choose decline (and --auto route) thresholds.")
@click.option("--write", is_flag=True, help="With --calibrate: update pack.toml in place.")
@click.option(
    "--split",
    type=click.Choice(["dev", "test", "all"]),
    help="Which half of a pack's eval file: tune on dev, report on test (default: test; dev"
    " with --calibrate; all for a --qa FILE). A line's 'split' field decides, else a hash of its"
    " question.",
)
@click.option("--max-tokens", type=click.IntRange(1, 4096), default=96, show_default=True)
@click.option(
    "--mode",
    type=click.Choice(["generate", "extractive", "hybrid"]),
    help="Answer mode for every pack (default: each pack's answer_mode in pack.toml).",
)
@click.option(
    "--grounding",
    type=click.Choice(["strict", "mark", "off"]),
    help="Unsupported generated sentences: left out, marked or shown (default: each pack's).",
)
@pass_context
def eval_command(
    ctx: Context,
    pack: str | None,
    qa_file: Path | None,
    auto: bool,
    all_packs: bool,
    limit: int | None,
    json_out: str | None,
    ablate: bool,
    report_dir: Path | None,
    calibrate: bool,
    write: bool,
    split: str | None,
    max_tokens: int,
    mode: str | None,
    grounding: str | None,
) -> None:
    from assistant.evaluation.run import in_split, load_cases, sample_cases

    if sum([pack is not None, auto, all_packs]) != 1:
        raise AssistantError("give one of: a PACK, --auto --qa FILE, or --all")
    if auto and qa_file is None:
        raise AssistantError("--auto needs --qa FILE with a 'domain' on every line")
    if all_packs and qa_file is not None:
        raise AssistantError("--all uses each pack's own eval/qa.jsonl; drop --qa")
    if write and not calibrate:
        raise AssistantError("--write only goes with --calibrate")
    split = split or ("all" if qa_file else "dev" if calibrate else "test")
    console = Console(stderr=True)
    router, targets = _router_and_targets(ctx, pack, auto, qa_file)
    jobs = []
    for name, target, path in targets:
        if not Path(path).is_file():
            raise NotFoundError(f"no eval file {path}: give one with --qa FILE")
        cases, problems = load_cases(path, auto=target is None)
        for p in problems:
            click.secho(f"{path}:{p.line}: {p.message} (skipped)", fg="yellow", err=True)
        chosen = in_split(cases, split)
        if not chosen:
            raise AssistantError(f"{path} has no {split} questions: try --split all")
        jobs.append((name, target, sample_cases(chosen, limit), problems))

    tables = _tables(json_out == "-")
    if calibrate:
        _calibrate(router, jobs, write, json_out, tables)
        return
    results, interrupted = _run(
        router, jobs, ablate, max_tokens, console, mode=mode, grounding=grounding, split=split
    )
    reports = [r for rs in results.values() for r in rs]
    for name, rs in results.items():
        _print_metrics(name, rs, tables)
    if json_out:
        data = reports[0].to_dict() if len(reports) == 1 else [r.to_dict() for r in reports]
        _write_json(data, json_out)
    if report_dir is not None:
        from assistant.evaluation.report import write_report

        click.echo(f"report: {write_report(results, report_dir)}", err=True)
    if interrupted:
        click.echo("interrupted: the metrics above cover the questions that finished", err=True)
        sys.exit(INTERRUPTED_EXIT)


def _router_and_targets(ctx: Context, pack: str | None, auto: bool, qa_file: Path | None):
    """The router, and (name, pack to expect or None for --auto, eval file) per evaluation."""
    from assistant.answering.router import Router
    from assistant.packs.locate import list_packs, pack_from_argument

    if pack is not None:
        domain = pack_from_argument(pack)
        router = Router(ctx.settings, packs=[domain])
        return router, [(domain.name, domain.name, qa_file or domain.eval_file)]
    router = Router(ctx.settings)
    if auto:
        return router, [("auto", None, qa_file)]
    return router, [(p.name, p.name, p.eval_file) for p in list_packs()]


def _run(
    router, jobs, ablate: bool, max_tokens: int, console: Console, *, mode, grounding, split: str
):
    from assistant.evaluation.metrics import mean
    from assistant.evaluation.run import CONFIGS, evaluate

    stop = threading.Event()
    configs = CONFIGS if ablate else CONFIGS[-1:]
    columns = (
        TextColumn("[bold]eval {task.fields[label]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("answer_fact_recall {task.fields[afr]}"),
        TimeRemainingColumn(),
    )
    results: dict = {}

    def interrupt(signum: int, frame: object) -> None:
        stop.set()
        console.print("stopping: the question in flight is dropped…")

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        with Progress(*columns, console=console) as bar:
            for name, target, cases, problems in jobs:
                results[name] = []
                for config, rag, adapter in configs:
                    task = bar.add_task("eval", total=len(cases), label=f"{name} {config}", afr="-")
                    recalls: list = []

                    def progress(done, total, item, task=task, recalls=recalls):
                        recalls.append(item.scores.get("answer_fact_recall"))
                        running = mean(recalls)
                        shown = "-" if running is None else f"{running:.2f}"
                        bar.update(task, completed=done, afr=shown)

                    report = evaluate(
                        router, cases, target, rag=rag, adapter=adapter, max_tokens=max_tokens,
                        mode=mode, grounding=grounding, config=config, split=split,
                        problems=problems,
                        progress=progress, stop=stop,
                    )  # fmt: skip
                    results[name].append(report)
                    if report.interrupted:
                        return results, True
    finally:
        signal.signal(signal.SIGINT, previous)
    return results, False


def _print_metrics(name: str, reports, tables: Console) -> None:
    from assistant.evaluation.report import fmt
    from assistant.evaluation.run import METRIC_NAMES

    table = Table(title=f"{name} ({reports[-1].split} split, n={reports[-1].n})")
    table.add_column("metric")
    for r in reports:
        table.add_column(r.config, justify="right")
    for metric in METRIC_NAMES:
        values = [r.metrics.get(metric) for r in reports]
        if any(v is not None for v in values):
            table.add_row(metric, *[fmt(v, metric) for v in values])
    tables.print(table)
    confusion = reports[-1].confusion
    if confusion:
        routed = sorted({p for row in confusion.values() for p in row})
        grid = Table(title="routing: expected (rows) -> routed (columns)")
        grid.add_column("expected")
        for p in routed:
            grid.add_column(p, justify="right")
        for expected, row in sorted(confusion.items()):
            grid.add_row(expected, *[str(row.get(p, 0)) for p in routed])
        tables.print(grid)


def _calibrate(router, jobs, write: bool, json_out: str | None, tables: Console) -> None:
    from assistant.evaluation.run import calibrate, write_thresholds

    changes = []
    for _name, target, cases, _problems in jobs:
        changes += calibrate(router, cases, target)
    if write:
        write_thresholds(router, changes)
    table = Table(title="calibration (balanced accuracy: answer in-scope, decline out-of-scope)")
    for column in ("pack", "threshold", "before", "after", "acc before", "acc after", "in/out"):
        table.add_column(column, justify="left" if column in ("pack", "threshold") else "right")
    for c in changes:
        after = f"{c.after:.3f}" + (" (written)" if c.written else "")
        table.add_row(
            c.pack, c.key, f"{c.before:.3f}", after, f"{c.accuracy_before:.2f}",
            f"{c.accuracy_after:.2f}", f"{c.n_in_scope}/{c.n_out_of_scope}",
        )  # fmt: skip
    tables.print(table)
    if not write and any(c.after != c.before for c in changes):
        click.echo("run again with --write to store the new thresholds in pack.toml", err=True)
    if json_out:
        from dataclasses import asdict

        _write_json({"calibration": [asdict(c) for c in changes]}, json_out)


def _write_json(data, out: str) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if out == "-":
        click.echo(text)
    else:
        Path(out).write_text(text + "\n", encoding="utf-8")
        click.echo(f"wrote {out}", err=True)


def _tables(json_on_stdout: bool) -> Console:
    """Where the tables go: stdout, or stderr when stdout carries the JSON (so `--json - | jq`
    works); at least 110 columns wide so tables are not cut when piped."""
    return Console(width=max(Console().width, 110), stderr=json_on_stdout)
