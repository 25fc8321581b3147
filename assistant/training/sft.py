"""The SFT run: LoRA on the top layers of the float32 base model, trained with transformers'
Trainer on the chat examples, the loss on the reply tokens only.

Training uses transformers' Trainer with PEFT rather than TRL's SFTTrainer: TRL 1.16 always
swaps in a fused, chunked LM-head kernel written for GPUs, which on this CPU made a step several
times slower (bench/RESULTS.md). The masking is the same: labels only on the assistant's reply.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError
from assistant.packs.format import PackTraining
from assistant.packs.locate import DomainPack
from assistant.settings import LoadedSettings, cache_dir
from assistant.training.raft import TrainExample
from assistant.training.report import Progress


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


def _lora_model(base_path: Path, settings: PackTraining) -> Any:
    """The float32 base model with fresh LoRA layers, seeded by the pack's training seed."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from assistant.runtime.adapters import peft_wrapping_quietly

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
        return get_peft_model(model, lora)


def _training_arguments(
    work: Path, settings: PackTraining, share: float, max_steps: int | None
) -> Any:
    from transformers import TrainingArguments

    return TrainingArguments(
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


def run_sft(
    pack: DomainPack,
    loaded: LoadedSettings,
    settings: PackTraining,
    examples: list[TrainExample],
    tokenizer: Any,
    *,
    share: float,
    max_steps: int | None,
    progress: Progress | None,
    stop: threading.Event | None,
) -> tuple[Any, list[float], float]:
    """Train over `share` of the examples (or `max_steps` steps): the trained Trainer, the loss
    of each step and the wall seconds. Ctrl-C or `stop` is an AssistantError that names the
    last checkpoint; the pack's adapter is not touched here."""
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, PrinterCallback

    from assistant.runtime.models import resolve_base_path

    model = _lora_model(resolve_base_path(loaded), settings)
    dataset = Dataset.from_list([tokenize_example(tokenizer, ex) for ex in examples])
    work = cache_dir(loaded.settings) / "training" / pack.name
    work.mkdir(parents=True, exist_ok=True)
    stop = stop or threading.Event()
    tracker = _ProgressCallback(progress, stop)
    trainer = _reply_only_trainer()(
        model=model,
        args=_training_arguments(work, settings, share, max_steps),
        train_dataset=dataset,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
        callbacks=[tracker.callback()],
    )
    adapter_dir = pack.adapter_dir_for(loaded.settings.models.base_model)
    trainer.model_accepts_loss_kwargs = False  # the loss above is already a per-batch mean
    trainer.remove_callback(PrinterCallback)  # it prints raw log dicts into --json output
    start = time.perf_counter()
    try:
        trainer.train()
    except KeyboardInterrupt:
        raise AssistantError(
            f"training interrupted; the adapter in {adapter_dir} is unchanged and the last"
            f" checkpoint is in {work / 'checkpoints'}"
        ) from None
    if stop.is_set():
        raise AssistantError(
            f"training stopped; the adapter in {adapter_dir} is unchanged and the last"
            f" checkpoint is in {work / 'checkpoints'}"
        )
    return trainer, tracker.losses, round(time.perf_counter() - start, 1)
