"""`assistant train PACK`: RAFT-style chat data from the pack's examples and index, LoRA SFT
(loss on the reply only), and an adapter folder written atomically.

Training uses transformers' Trainer with PEFT rather than TRL's SFTTrainer: TRL 1.16 always
swaps in a fused, chunked LM-head kernel written for GPUs, which on this CPU made a step several
times slower (bench/RESULTS.md). The masking is the same: labels only on the assistant's reply.

The adapter folder holds PEFT's safetensors and adapter_config.json, `training.json` (base model
and its fingerprint, data hash, settings, steps, wall time, loss curve) and `loss.png`. It is
written to a hidden folder beside adapter/ and swapped in with one atomic rename (Linux
renameat2 RENAME_EXCHANGE, else two renames that the next run repairs), so a process killed at
any moment leaves the old adapter or the new one; the next run sweeps what a killed one left. A
save that fails (a full disk) is one AssistantError and the old adapter stays.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError
from assistant.fsio import swap_folder
from assistant.packs.format import PackConfig, SftLine, load_pack_config
from assistant.packs.locate import ADAPTER_CONFIG, DomainPack
from assistant.settings import LoadedSettings, cache_dir
from assistant.training.raft import TrainExample, build_training_set

TRAINING_FILE = "training.json"
# Seconds per trained token on 2 CPU cores in float32 with LoRA on the attention projections,
# measured on SmolLM2-135M; only used for the --dry-run estimate.
SECONDS_PER_TOKEN = 0.006

Progress = Callable[[int, int, float | None], None]


@dataclass
class TrainReport:
    pack: str
    examples: int
    with_right_passage: int
    tokens: int
    steps: int
    estimated_seconds: float
    dry_run: bool = False
    wall_seconds: float = 0.0
    final_loss: float | None = None
    adapter_dir: str = ""
    losses: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_sft_lines(pack: DomainPack) -> list[SftLine]:
    """The pack's SFT examples; a malformed line is an error pointing at `pack validate`."""
    if not pack.sft_file.is_file():
        raise AssistantError(f"{pack.sft_file} is missing: add training examples first")
    lines = []
    # Lines end at "\n" only, as in validate_pack (str.splitlines() also breaks at U+2028).
    for number, raw in enumerate(pack.sft_file.read_text(encoding="utf-8").split("\n"), 1):
        if not raw.strip():
            continue
        try:
            lines.append(SftLine.model_validate_json(raw))
        except ValueError:
            raise AssistantError(
                f"{pack.sft_file}:{number} is not a valid example: run"
                f" `assistant pack validate {pack.name}` for details"
            ) from None
    if not lines:
        raise AssistantError(f"{pack.sft_file} has no examples")
    return lines


def data_hash(pack: DomainPack, config: PackConfig) -> str:
    """What the adapter was trained from: the examples, the persona and the training settings."""
    digest = hashlib.sha256(pack.sft_file.read_bytes())
    digest.update(config.persona.encode())
    settings = config.training.model_dump()
    # Settings added after adapters shipped hash as before while they keep the old behaviour.
    for name, old_behaviour in (
        ("targets", "rewrite"),
        ("style_repeat", 1),
        ("trimmed_answer", "decline"),
    ):
        if settings.get(name) == old_behaviour:
            del settings[name]
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


def count_tokens(tokenizer: Any, messages: list[dict[str, str]], completion: str) -> int:
    full = [*messages, {"role": "assistant", "content": completion}]
    return len(tokenizer.apply_chat_template(full, tokenize=True, return_dict=True)["input_ids"])


def prepare(pack: DomainPack, loaded: LoadedSettings) -> tuple[PackConfig, list[TrainExample], Any]:
    """Config, RAFT examples that fit max_length (one pass per started epoch, each with its
    own passages), and the tokenizer."""
    from transformers import AutoTokenizer

    from assistant.knowledge import open_pack_index
    from assistant.runtime.models import resolve_base_path

    config = load_pack_config(pack, loaded)
    lines = read_sft_lines(pack)
    index = open_pack_index(pack, loaded)
    # the tokenizer alone: training loads its own float32 model (the inference model would be
    # converted to models.quantize for nothing)
    tokenizer = AutoTokenizer.from_pretrained(resolve_base_path(loaded))
    limit = config.training.max_length

    def fits(messages: list[dict[str, str]], completion: str) -> bool:
        return count_tokens(tokenizer, messages, completion) <= limit

    rounds = math.ceil(config.training.epochs)
    examples = build_training_set(lines, config, index, fits, rounds=rounds)
    return config, examples, tokenizer


def top_layers(model: Any, count: int) -> list[int] | None:
    """Indices of the top `count` transformer layers, or None for all."""
    total = model.config.num_hidden_layers
    return None if count <= 0 or count >= total else list(range(total - count, total))


def tokenize_example(tokenizer: Any, example: TrainExample) -> dict[str, list[int]]:
    """Token ids of prompt + reply with labels on the reply only (the prompt is masked with
    -100), encoded by the same chat template the router uses at answer time."""
    prompt_ids = tokenizer.apply_chat_template(
        example.prompt, add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]
    full = [*example.prompt, {"role": "assistant", "content": example.completion}]
    full_ids = tokenizer.apply_chat_template(full, tokenize=True, return_dict=True)["input_ids"]
    if full_ids[: len(prompt_ids)] != prompt_ids:
        raise AssistantError("the chat template does not extend the prompt with the reply")
    labels = [-100] * len(prompt_ids) + full_ids[len(prompt_ids) :]
    return {"input_ids": full_ids, "attention_mask": [1] * len(full_ids), "labels": labels}


def reply_only_loss(model: Any, inputs: dict[str, Any]) -> Any:
    """Mean next-token loss over the reply tokens, projecting only those positions onto the
    vocabulary: the LM head and softmax over 49k tokens at every prompt position were about a
    fifth of a training step on CPU, and the prompt positions carry no loss anyway."""
    import torch

    labels = inputs["labels"]
    targets = labels[:, 1:]
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = targets != -100
    outputs = model(
        input_ids=inputs["input_ids"],
        attention_mask=inputs["attention_mask"],
        logits_to_keep=keep,
        use_cache=False,
    )
    return torch.nn.functional.cross_entropy(outputs.logits.float(), targets[targets != -100])


def _reply_only_trainer() -> Any:
    from transformers import Trainer

    class ReplyOnlyTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
            return reply_only_loss(model, inputs)

    return ReplyOnlyTrainer


class _ProgressCallback:
    """Reports steps and loss to the caller, and stops training when `stop` is set."""

    def __init__(self, progress: Progress | None, stop: threading.Event) -> None:
        self.progress = progress
        self.stop = stop
        self.losses: list[float] = []

    def callback(self) -> Any:
        from transformers import TrainerCallback

        outer = self

        class Callback(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
                if logs and "loss" in logs:
                    outer.losses.append(float(logs["loss"]))

            def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
                if outer.progress:
                    loss = outer.losses[-1] if outer.losses else None
                    outer.progress(state.global_step, state.max_steps, loss)
                if outer.stop.is_set():
                    control.should_training_stop = True
                    control.should_save = True

        return Callback()


def _peak_rss_mb() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def _plot_losses(losses: list[float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(1, len(losses) + 1), losses)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _portable_adapter_config(path: Path, loaded: LoadedSettings) -> None:
    """Record the base model by its configured name, not this machine's cache path."""
    config = json.loads(path.read_text())
    config["base_model_name_or_path"] = loaded.settings.models.base_model
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


STAGED_PREFIX = ".adapter.tmp-"
OLD_PREFIX = ".adapter.old-"


def install_adapter(staged: Path, target: Path) -> None:
    """Swap a fully written adapter folder into place (`fsio.swap_folder`)."""
    swap_folder(staged, target)


def _dead(name: str, prefix: str) -> bool:
    """Whether the process whose id follows `prefix` in `name` has ended."""
    pid = name[len(prefix) :].split("-")[0]
    if not pid.isdigit() or int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def sweep_adapter_leftovers(root: Path, target: Path) -> None:
    """Put back an old adapter that a killed two-rename install left aside, and remove the
    staged and old folders of training runs that were killed."""
    for path in sorted(root.glob(f"{OLD_PREFIX}*")):
        if path.is_dir() and _dead(path.name, OLD_PREFIX):
            if not target.exists():
                path.rename(target)
            else:
                shutil.rmtree(path, ignore_errors=True)
    for path in root.glob(f"{STAGED_PREFIX}*"):
        if path.is_dir() and _dead(path.name, STAGED_PREFIX):
            shutil.rmtree(path, ignore_errors=True)


def _save_failed(pack: DomainPack, exc: Exception) -> AssistantError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return AssistantError(
        f"cannot write the adapter of pack {pack.name!r} in {pack.root}:"
        f" {' '.join(reason.split())}; the adapter in {pack.adapter_dir} is unchanged; free some"
        f" disk space and run `assistant train {pack.name}` again"
    )


def train(
    pack: DomainPack,
    loaded: LoadedSettings,
    *,
    max_steps: int | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> TrainReport:
    """Train the pack's adapter (or, with dry_run, only build the data and estimate)."""
    from assistant.runtime.models import base_model_fingerprint, resolve_base_path

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
        estimated_seconds=round(trained_tokens * SECONDS_PER_TOKEN, 1),
        dry_run=dry_run,
    )
    if dry_run:
        return report

    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        DataCollatorForSeq2Seq,
        PrinterCallback,
        TrainingArguments,
    )

    from assistant.runtime.adapters import peft_wrapping_quietly

    base_path = resolve_base_path(loaded)
    torch.manual_seed(settings.seed)
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    lora = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        task_type="CAUSAL_LM",
        layers_to_transform=top_layers(model, settings.layers),
    )
    with peft_wrapping_quietly():
        model = get_peft_model(model, lora)
    dataset = Dataset.from_list([tokenize_example(tokenizer, ex) for ex in examples])
    work = cache_dir(loaded.settings) / "training" / pack.name
    work.mkdir(parents=True, exist_ok=True)
    args = TrainingArguments(
        output_dir=str(work / "checkpoints"),
        num_train_epochs=share,
        max_steps=max_steps or -1,
        per_device_train_batch_size=settings.batch_size,
        # Batches of similar lengths: padding to the longest of four random examples wasted
        # about a fifth of every step.
        train_sampling_strategy="group_by_length",
        learning_rate=settings.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        logging_steps=1,
        save_strategy="steps",
        save_steps=25,
        save_total_limit=1,
        seed=settings.seed,
        data_seed=settings.seed,
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
        dataloader_num_workers=0,
    )
    stop = stop or threading.Event()
    tracker = _ProgressCallback(progress, stop)
    trainer = _reply_only_trainer()(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
        callbacks=[tracker.callback()],
    )
    trainer.model_accepts_loss_kwargs = False  # the loss above is already a per-batch mean
    trainer.remove_callback(PrinterCallback)  # it prints raw log dicts into --json output
    start = time.perf_counter()
    try:
        trainer.train()
    except KeyboardInterrupt:
        raise AssistantError(
            f"training interrupted; the adapter in {pack.adapter_dir} is unchanged and the last"
            f" checkpoint is in {work / 'checkpoints'}"
        ) from None
    if stop.is_set():
        raise AssistantError(
            f"training stopped; the adapter in {pack.adapter_dir} is unchanged and the last"
            f" checkpoint is in {work / 'checkpoints'}"
        )
    report.wall_seconds = round(time.perf_counter() - start, 1)
    report.losses = tracker.losses
    report.final_loss = tracker.losses[-1] if tracker.losses else None
    report.steps = trainer.state.global_step

    from safetensors import SafetensorError

    try:
        sweep_adapter_leftovers(pack.root, pack.adapter_dir)
        staged = Path(tempfile.mkdtemp(prefix=f"{STAGED_PREFIX}{os.getpid()}-", dir=pack.root))
    except OSError as exc:
        raise _save_failed(pack, exc) from None
    try:
        staged.chmod(0o755)
        trainer.model.save_pretrained(staged)
        _portable_adapter_config(staged / ADAPTER_CONFIG, loaded)
        (staged / "README.md").unlink(missing_ok=True)  # PEFT's empty model card
        info = {
            "pack": pack.name,
            "base_model": loaded.settings.models.base_model,
            "base_fingerprint": base_model_fingerprint(loaded),
            "data_hash": data_hash(pack, config),
            "settings": settings.model_dump(),
            "examples": report.examples,
            "with_right_passage": report.with_right_passage,
            "tokens": report.tokens,
            "steps": report.steps,
            "wall_seconds": report.wall_seconds,
            "peak_rss_mb": _peak_rss_mb(),
            "final_loss": report.final_loss,
            "loss_curve": [round(x, 4) for x in tracker.losses],
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (staged / TRAINING_FILE).write_text(json.dumps(info, indent=2) + "\n")
        if tracker.losses:
            _plot_losses(tracker.losses, staged / "loss.png", f"{pack.name} adapter")
        install_adapter(staged, pack.adapter_dir)
    except (OSError, SafetensorError) as exc:
        shutil.rmtree(staged, ignore_errors=True)
        raise _save_failed(pack, exc) from None
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    report.adapter_dir = str(pack.adapter_dir)
    return report
