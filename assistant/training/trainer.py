"""`assistant train PACK`: RAFT-style chat data from the pack's examples and index
(`chat_data`), LoRA SFT with the loss on the reply only (`sft`), and the adapter folder written
and swapped in atomically (`save`, `install`). A dry run stops after the data, with an estimate.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from assistant.packs.locate import DomainPack
from assistant.settings import LoadedSettings
from assistant.training.chat_data import count_tokens, prepare
from assistant.training.report import Progress, TrainReport
from assistant.training.save import save_adapter
from assistant.training.sft import run_sft


def seconds_per_token(loaded: LoadedSettings) -> float:
    """Training's pace for the configured base (the estimate shown before a run)."""
    from assistant.runtime.bases import BASES, TRAIN_SECONDS_PER_TOKEN

    known = BASES.get(loaded.settings.models.base_model)
    return known.train_seconds_per_token if known else TRAIN_SECONDS_PER_TOKEN


def train(
    pack: DomainPack,
    loaded: LoadedSettings,
    *,
    max_steps: int | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    planned: Callable[[TrainReport], None] | None = None,
) -> TrainReport:
    """Train the pack's adapter (or, with dry_run, only build the data and estimate).
    `planned` gets the report with the examples, steps and estimate before training starts."""
    config, examples, tokenizer = prepare(pack, loaded)
    settings = config.training
    rounds = math.ceil(settings.epochs)
    # The examples hold one freshly drawn pass per started epoch; train over `share` of them.
    share = settings.epochs / rounds
    tokens = sum(count_tokens(tokenizer, ex.prompt, ex.completion) for ex in examples)
    steps_per_pass = -(-len(examples) // settings.batch_size)
    steps = max_steps or max(1, round(steps_per_pass * share))
    trained_tokens = tokens * steps / steps_per_pass
    report = TrainReport(
        pack=pack.name,
        examples=len(examples) // rounds,
        with_right_passage=sum(ex.right_included for ex in examples) // rounds,
        tokens=round(tokens * share),
        steps=steps,
        estimated_seconds=round(trained_tokens * seconds_per_token(loaded), 1),
        dry_run=dry_run,
    )
    if dry_run:
        return report
    if planned:
        planned(report)
    trainer, losses, wall_seconds = run_sft(
        pack,
        loaded,
        settings,
        examples,
        tokenizer,
        share=share,
        max_steps=max_steps,
        progress=progress,
        stop=stop,
    )
    report.wall_seconds = wall_seconds
    report.losses = losses
    report.final_loss = losses[-1] if losses else None
    report.steps = trainer.state.global_step
    save_adapter(pack, loaded, config, trainer.model, report)
    report.adapter_dir = str(pack.adapter_dir_for(loaded.settings.models.base_model))
    return report
