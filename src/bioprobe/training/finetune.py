"""Fine-tuning a model on a task subset with the Hugging Face Trainer.

Checkpoints live outside the declared Snakemake output (`checkpoint_dir`), so a killed job resumes
from its last checkpoint instead of step 0; a fingerprint of everything that defines the run
guards against resuming a checkpoint that belongs to other settings.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import math
import resource
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from transformers import (
    PrinterCallback,
    TrainingArguments,
    set_seed,
)

from bioprobe import methods, tasks
from bioprobe.data import read_subset
from bioprobe.data.task_data import TaskData
from bioprobe.io import atomic_path, read_json, write_json
from bioprobe.methods import (
    FULL,
    effective_training,
    load_for_training,
    save_method,
    training_collator,
)
from bioprobe.models import load_tokenizer_for
from bioprobe.pipeline.jobs import JobContext
from bioprobe.pipeline.oom import (
    cpu_micro_batches,
    explain_out_of_memory,
    finetune_advice,
    resume_key,
    training_for_attempt,
)
from bioprobe.settings import TrainingSettings
from bioprobe.training import distributed, launch
from bioprobe.training.evaluate import score_model
from bioprobe.training.features import build_features, log_truncation, make_collator
from bioprobe.training.memory import advice, fits, plan_training_memory
from bioprobe.training.model_card import model_card
from bioprobe.training.progress import ProgressLogCallback
from bioprobe.training.resume import ResumableTrainer, last_complete_checkpoint

log = logging.getLogger("bioprobe.train")


_SCHEDULERS = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


def cpu_computes_bf16() -> bool:
    """The CPU multiplies bf16 natively (AVX512-BF16 or AMX); elsewhere it is emulated, slower."""
    native = (
        getattr(torch.cpu, n, None) for n in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )
    return any(bool(check()) for check in native if check is not None)


#: On a CPU, below this hidden size autocast's casts cost more than bf16 saves (bench/RESULTS.md)
CPU_BF16_MIN_HIDDEN = 128


def precision_flags(precision: str, hidden_size: int | None = None) -> dict[str, bool]:
    """`auto`: bf16 where the GPU supports it, else fp16; on CPU bf16 mixed precision where the
    CPU computes bf16 natively (faster, same scores: bench/RESULTS.md) and the model is at least
    `CPU_BF16_MIN_HIDDEN` wide, else full precision."""
    if precision == "auto":
        if not torch.cuda.is_available():
            wide = hidden_size is None or hidden_size >= CPU_BF16_MIN_HIDDEN
            return {"bf16": wide and cpu_computes_bf16(), "fp16": False}
        bf16 = torch.cuda.is_bf16_supported()
        return {"bf16": bf16, "fp16": not bf16}
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}


def training_half(training: TrainingSettings) -> str | None:
    """The half type a GPU run computes in (its frozen weights load in it); None on the CPU,
    where weights stay float32 and autocast alone decides (:func:`precision_flags`)."""
    if not torch.cuda.is_available():
        return None
    flags = precision_flags(training.precision)
    return "bfloat16" if flags["bf16"] else "float16" if flags["fp16"] else None


def selection_metric(task_type: str) -> str:
    return tasks.get(task_type).selection_metric


#: tensorboard's event files (`training.report_to: tensorboard`), under the checkpoint
#: directory while training and the run directory after
RUNS_DIR = "runs"


def run_fingerprint(**parts) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def prepare_checkpoint_dir(checkpoint_dir: Path, fingerprint: str) -> str | None:
    """Return the checkpoint to resume from, wiping checkpoints of a different run."""
    stamp = checkpoint_dir / "fingerprint.json"
    if checkpoint_dir.exists():
        same = stamp.exists() and read_json(stamp).get("fingerprint") == fingerprint
        if not same:
            log.info("discarding checkpoints of other settings in %s", checkpoint_dir)
            shutil.rmtree(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    write_json(stamp, {"fingerprint": fingerprint})
    last = last_complete_checkpoint(checkpoint_dir)
    if last:
        log.info("resuming from checkpoint %s", last)
    return last


def training_arguments(
    training: TrainingSettings,
    seed: int,
    checkpoint_dir: Path,
    task_type: str,
    hidden_size: int | None = None,
    model: Any = None,
) -> TrainingArguments:
    """`model`: the model to train, whose transformer blocks FSDP wraps (strategy: fsdp)."""
    select = training.select_best
    every = "steps" if training.save_steps else "epoch"
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=training.epochs,
        learning_rate=training.learning_rate,
        per_device_train_batch_size=training.batch_size,
        per_device_eval_batch_size=training.eval_batch_size,
        gradient_accumulation_steps=training.gradient_accumulation,
        warmup_steps=float(training.warmup_ratio),  # a float < 1 is a ratio of total steps
        weight_decay=training.weight_decay,
        max_grad_norm=training.max_grad_norm or 0.0,  # 0: no clipping, not even the norm
        # "constant" still warms up when warmup_ratio > 0
        lr_scheduler_type=_SCHEDULERS[training.lr_scheduler],
        train_sampling_strategy="group_by_length" if training.group_by_length else "random",
        length_column_name="length",
        eval_strategy=every if select else "no",
        save_strategy=every,
        save_steps=training.save_steps or 500,
        eval_steps=training.save_steps if select and training.save_steps else None,
        save_total_limit=2,
        load_best_model_at_end=select,
        metric_for_best_model=selection_metric(task_type) if select else None,
        greater_is_better=True if select else None,
        logging_strategy="steps",
        logging_steps=training.logging_steps,
        disable_tqdm=True,
        # tensorboard writes its events to output_dir/runs/, copied into the run directory
        report_to=training.report_to,
        seed=seed,
        data_seed=seed,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        # transformers 5's name for gradient checkpointing (its old name is a deprecated alias);
        # non-reentrant: works under frozen embeddings (adapters), and replays dropout's RNG
        activation_checkpointing=training.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False},
        **precision_flags(training.precision, hidden_size),
        # optim (training.optim), and DDP or FSDP with several processes
        **distributed.trainer_arguments(training, model, torch.cuda.is_available()),
    )


def parameter_counts(model) -> dict[str, int]:
    if hasattr(model, "get_nb_trainable_parameters"):  # a peft model: counts 4-bit weights right
        trainable, total = model.get_nb_trainable_parameters()
        return {"parameters_total": total, "parameters_trainable": trainable}
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"parameters_total": total, "parameters_trainable": trainable}


def peak_memory_mb() -> dict[str, float]:
    out = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available():
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def finetune(
    job: JobContext,
    *,
    subset_file: str | Path,
    size: int,
    training: TrainingSettings,
    out_dir: str | Path,
    checkpoint_dir: str | Path,
    method: Mapping[str, Any] | None = None,
    method_id: str | None = None,
    score_splits: Sequence[str] = (),
) -> dict:
    """Fine-tune `job`'s model on `size` % of the training split; write safetensors, tokenizer
    and metrics to `out_dir`.

    `method` (a validated ``methods.<id>`` entry; default full fine-tuning) may set its own
    learning rate; adapters are saved as adapters (bioprobe.methods). `score_splits`: score the
    trained model on these splits while it is in memory (what `evaluate` computes from the
    saved directory, without a second process loading it), returned under ``"evaluation"``.
    """
    if size <= 0:
        raise ValueError("size 0 is the pretrained model: nothing to fine-tune")
    method = dict(method or FULL)
    training = distributed.for_method(training, method)
    if distributed.needs_launch(training):  # training.processes > 1: torchrun, rank 0's result
        return launch.run(
            job, training, subset_file=subset_file, size=size, out_dir=out_dir,
            checkpoint_dir=checkpoint_dir, method=method, method_id=method_id,
            score_splits=score_splits,
        )  # fmt: skip
    training = _run_training(job, training, method)
    task = job.task()
    order = read_subset(subset_file, size)
    set_seed(job.seed)
    tokenizer = load_tokenizer_for(job.spec)

    def load_model():
        return load_for_training(
            job.location, task.task_type, task.labels, spec=job.spec, method=method,
            max_length=training.max_length, method_id=method_id, half=training_half(training),
        )  # fmt: skip

    model = load_model()
    train_fs, val_fs = _features(task, order, tokenizer, training)
    if not torch.cuda.is_available():
        longest = max((f["length"] for f in train_fs.features), default=1)
        training = cpu_micro_batches(training, longest)
    checkpoint_dir = Path(checkpoint_dir)
    fingerprint = run_fingerprint(
        training=resume_key(training), seed=job.seed, size=size, model=job.location, order=order,
        method=method,
    )  # fmt: skip
    with distributed.main_process_first():  # several ranks: rank 0 may wipe stale checkpoints
        resume = prepare_checkpoint_dir(checkpoint_dir, fingerprint)
    width = getattr(model.config, "hidden_size", None)
    args = training_arguments(training, job.seed, checkpoint_dir, task.task_type, width, model)
    trainer = _trainer(model, args, task, tokenizer, training, method, train_fs, val_fs)
    log_start(trainer, args, training, method, len(train_fs.features))
    longest = max((f["length"] for f in train_fs.features), default=1)
    log_memory_plan(trainer.model, args, training, method, longest)
    started = time.monotonic()
    with explain_out_of_memory(finetune_advice(training, job.attempt)):
        result = trainer.train(resume_from_checkpoint=resume)
    wall = time.monotonic() - started
    # the whole trained model, unwrapped (under mixed precision accelerate left an autocast
    # wrapper on forward: score the model as `evaluate` will load it, in full precision); with
    # several processes only rank 0 has it, and alone scores and saves
    model = distributed.gather_trained_model(trainer, load_model)
    distributed.finish()
    if model is None:
        return {}
    metrics = _run_metrics(trainer, model, result, job, task, size, training, method, wall, resume)
    metrics["truncation"] = {"train": train_fs.stats(), "validation": val_fs.stats()}
    evaluation = score_model(model, tokenizer, task, training, score_splits)
    card = model_card(job, task, method, training, metrics)
    _save(out_dir, model, tokenizer, task, method, training, job.seed, metrics, trainer, card)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    log.info("saved %s (%.1f s)", out_dir, wall)
    return {**metrics, "evaluation": evaluation} if score_splits else metrics


def _run_training(
    job: JobContext, training: TrainingSettings, method: Mapping[str, Any]
) -> TrainingSettings:
    """The settings this run trains with: the method's learning rate where it sets one, and a
    retry's smaller batches after running out of memory; `max_length` checked against the
    model's positions (past them training fails with an IndexError at the first long sentence)."""
    job.check_max_length(training.max_length)
    training = distributed.per_process(effective_training(training, method))
    return training_for_attempt(training, job.attempt)


def _features(task: TaskData, order: Sequence[int], tokenizer, training: TrainingSettings):
    """The training subset's and the validation split's features (truncation logged)."""
    records = task.split("train")
    records = [records[i] for i in order]
    log.info("task %s: %d of the training examples", task.root, len(records))
    train_fs = build_features(task.task_type, records, tokenizer, task.labels, training)
    val_fs = build_features(
        task.task_type, task.split("validation"), tokenizer, task.labels, training
    )
    for name, fs in (("train", train_fs), ("validation", val_fs)):
        log_truncation(name, fs, training.max_length)
    return train_fs, val_fs


def _trainer(model, args, task: TaskData, tokenizer, training, method, train_fs, val_fs):
    trainer = ResumableTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train_fs.features),
        eval_dataset=Dataset.from_list(val_fs.features) if training.select_best else None,
        data_collator=training_collator(
            make_collator(task.task_type, tokenizer), method, task.task_type
        ),
        processing_class=tokenizer,
        compute_metrics=task.type.compute_metrics(task.labels),
        preprocess_logits_for_metrics=task.type.logits_for_metrics,
        callbacks=[ProgressLogCallback()],
    )
    trainer.remove_callback(PrinterCallback)  # raw dicts on stdout; ProgressLogCallback says it
    # every head's loss is the mean over its micro-batch: the Trainer then averages micro-batches
    # (gradient accumulation) and DDP averages processes. Left True (a forward taking **kwargs),
    # the Trainer assumes the loss was summed over the batch's labels (num_items_in_batch), as
    # only some heads do: it skipped the division by the accumulation steps and multiplied by
    # the processes, so gradients and logged losses grew with either (measured: x2 for both)
    trainer.model_accepts_loss_kwargs = False
    # the Trainer calls gc.collect() (accelerate's free_memory); with torch and transformers
    # imported that walks millions of objects (~0.3 s a call): leave them out of collections
    gc.freeze()
    return trainer


def _run_metrics(
    trainer, model, result, job: JobContext, task: TaskData, size, training, method, wall, resume
):
    """`train_metrics.json`: what was trained, how long it took and what it cost (`model`:
    the whole trained model; FSDP's `trainer.model` holds one rank's shards)."""
    state = trainer.state
    width = getattr(model.config, "hidden_size", None)
    best = Path(state.best_model_checkpoint).name if state.best_model_checkpoint else None
    precision = {k: v for k, v in precision_flags(training.precision, width).items() if v}
    return {
        "train_examples": len(trainer.train_dataset),
        "size": size,
        "seed": job.seed,
        "global_steps": result.global_step,
        "train_loss": float(result.training_loss),
        "train_runtime_s": wall,
        "train_samples_per_second": result.metrics.get("train_samples_per_second"),
        "resumed_from": Path(resume).name if resume else None,
        "attempt": job.attempt,
        "best_checkpoint": best,
        f"best_validation_{task.type.selection_metric}": state.best_metric,
        "precision": precision or "fp32",
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "processes": trainer.args.world_size,
        "method": dict(method),
        **parameter_counts(model),
        **peak_memory_mb(),
    }


def log_start(
    trainer, args, training: TrainingSettings, method, examples: int, what: str = "fine-tuning"
) -> None:
    """What this job is about to do, before the first step: where, in which precision, with
    which batches and for how many optimiser steps (`what`: the training's name)."""
    ranks = args.world_size  # with several, batch_size is one process's share (per_process)
    batch = training.batch_size * training.gradient_accumulation * ranks
    steps = max(1, math.ceil(examples / batch))
    precision = [k for k in ("bf16", "fp16") if getattr(args, k)] or ["fp32"]
    log.info(
        "%s (%s) on %s in %s: %d examples, batch %d x %d accumulation x %d process(es), "
        "%g epochs = %d optimiser steps, learning rate %g, max_length %d, %s/%s trainable "
        "parameters",
        what,
        method.get("kind", "full"),
        trainer.args.device,
        precision[0],
        examples,
        training.batch_size,
        training.gradient_accumulation,
        ranks,
        training.epochs,
        math.ceil(steps * training.epochs),
        training.learning_rate,
        training.max_length,
        f"{parameter_counts(trainer.model)['parameters_trainable']:,}",
        f"{parameter_counts(trainer.model)['parameters_total']:,}",
    )


def log_memory_plan(model, args, training: TrainingSettings, method, seq_len: int) -> None:
    """The estimated peak memory of this run (bioprobe.training.memory); on a GPU, compared
    with the device's, and a warning naming the settings to change where it will not fit.
    `training` is one process's (its share of each batch); FSDP shards the rest over them."""
    cuda = torch.cuda.is_available()
    plan = plan_training_memory(
        model,
        batch_size=training.batch_size,
        seq_len=seq_len,
        optimizer=training.optim,
        half=bool(args.bf16 or args.fp16),
        gradient_checkpointing=training.gradient_checkpointing,
        shards=training.processes if training.strategy == "fsdp" else 1,
        cuda=cuda,
    )
    if not cuda:
        log.info("estimated peak training memory (micro-batch of %d x %d tokens): %s",
                 training.batch_size, seq_len, plan.describe())  # fmt: skip
        return
    device = torch.cuda.current_device()
    available = torch.cuda.get_device_properties(device).total_memory
    log.info("estimated peak GPU memory: %s of the device's %.1f GiB", plan.describe(),
             available / 2**30)  # fmt: skip
    if not fits(plan, available):
        kind = methods.get(method.get("kind", "full"))
        todo = advice(
            plan, available, batch_size=training.batch_size, adapter=kind.is_adapter,
            gradient_checkpointing=training.gradient_checkpointing, optimizer=training.optim,
        )  # fmt: skip
        log.warning("this run will probably not fit the GPU: %s", "; or ".join(todo))


def _save(
    out_dir, model, tokenizer, task: TaskData, method, training, seed, metrics, trainer, card
) -> None:
    """The trained run, moved into place whole: weights (safetensors only; a peft model saves
    its adapters), method, tokenizer, labels, settings, metrics, the Trainer's state (the loss
    history), tensorboard's events where it logged and a model card."""
    with atomic_path(out_dir, is_dir=True) as tmp:
        trainer.state.save_to_json(str(tmp / "trainer_state.json"))
        runs = Path(trainer.args.output_dir) / RUNS_DIR
        if runs.is_dir():
            shutil.copytree(runs, tmp / RUNS_DIR)
        (tmp / "README.md").write_text(card, encoding="utf-8")
        model.save_pretrained(tmp)
        save_method(tmp, method)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / "labels.json", task.info)
        write_json(tmp / "training_args.json", {"training": training.as_dict(), "seed": seed})
        write_json(tmp / "train_metrics.json", metrics)
        for pickled in (*tmp.glob("*.bin"), *tmp.glob("*.pt")):
            pickled.unlink()
