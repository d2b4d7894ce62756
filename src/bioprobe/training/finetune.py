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
import resource
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from datasets import Dataset
from transformers import (
    PrinterCallback,
    TrainingArguments,
    set_seed,
)

from bioprobe.data import read_subset
from bioprobe.io import atomic_path, read_json, write_json
from bioprobe.methods import (
    FULL,
    effective_training,
    load_for_training,
    save_method,
    training_collator,
)
from bioprobe.metrics import classification_scores, ner_scores
from bioprobe.models import ModelSpec, load_tokenizer_for
from bioprobe.oom import (
    cpu_micro_batches,
    explain_out_of_memory,
    finetune_advice,
    resume_key,
    training_for_attempt,
)
from bioprobe.training.evaluate import score_model
from bioprobe.training.features import build_features, log_truncation
from bioprobe.training.progress import ProgressLogCallback
from bioprobe.training.resume import ResumableTrainer, last_complete_checkpoint
from bioprobe.training.task_data import TaskData, make_collator

log = logging.getLogger("bioprobe.train")


_SCHEDULERS = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


def cpu_computes_bf16() -> bool:
    """The CPU multiplies bf16 natively (AVX512-BF16 or AMX); elsewhere it is emulated, slower."""
    native = (
        getattr(torch.cpu, n, None) for n in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )
    return any(bool(check()) for check in native if check is not None)


#: On a CPU, below this hidden size autocast's per-op casts cost more than bf16 products save
#: (training time bf16 / fp32 on AVX512-BF16: hidden 64 1.14-1.23, 128 0.93, 384 0.71).
CPU_BF16_MIN_HIDDEN = 128


def precision_flags(precision: str, hidden_size: int | None = None) -> dict[str, bool]:
    """`auto`: bf16 where the GPU supports it, else fp16; on CPU bf16 mixed precision where the
    CPU computes bf16 natively (MiniLM pairs train 1.45x faster on AVX512-BF16, same scores) and
    the model is at least `CPU_BF16_MIN_HIDDEN` wide, else full precision."""
    if precision == "auto":
        if not torch.cuda.is_available():
            wide = hidden_size is None or hidden_size >= CPU_BF16_MIN_HIDDEN
            return {"bf16": wide and cpu_computes_bf16(), "fp16": False}
        bf16 = torch.cuda.is_bf16_supported()
        return {"bf16": bf16, "fp16": not bf16}
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}


def selection_metric(task_type: str) -> str:
    return "entity_f1" if task_type == "ner" else "macro_f1"


def metrics_fn(task_type: str, labels: list[str]):
    """compute_metrics for model selection on the validation split."""

    def compute(eval_pred) -> dict[str, float]:
        preds, gold = eval_pred.predictions, eval_pred.label_ids
        if task_type != "ner":
            return classification_scores(gold, preds)
        keep = gold != -100
        g = [[labels[t] for t in row[m]] for row, m in zip(gold, keep, strict=True)]
        p = [[labels[t] for t in row[m]] for row, m in zip(preds, keep, strict=True)]
        return ner_scores(g, p)

    return compute


def _argmax_logits(logits, labels):
    return logits.argmax(dim=-1)


def run_fingerprint(**parts) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _prepare_checkpoint_dir(checkpoint_dir: Path, fingerprint: str) -> str | None:
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
    training: dict, seed: int, checkpoint_dir: Path, task_type: str, hidden_size: int | None = None
) -> TrainingArguments:
    select = training["select_best"]
    every = "steps" if training["save_steps"] else "epoch"
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=training["epochs"],
        learning_rate=training["learning_rate"],
        per_device_train_batch_size=training["batch_size"],
        per_device_eval_batch_size=training["eval_batch_size"],
        gradient_accumulation_steps=training["gradient_accumulation"],
        warmup_steps=float(training["warmup_ratio"]),  # a float < 1 is a ratio of total steps
        weight_decay=training["weight_decay"],
        max_grad_norm=training["max_grad_norm"] or 0.0,  # 0: no clipping, not even the norm
        # "constant" still warms up when warmup_ratio > 0
        lr_scheduler_type=_SCHEDULERS[training["lr_scheduler"]],
        # fused AdamW: one kernel over all parameters, ~30x faster a step than the per-tensor
        # loop on CPU (MiniLM: 21 ms against 620 ms); same algorithm, CPU and CUDA
        optim="adamw_torch_fused",
        train_sampling_strategy="group_by_length" if training["group_by_length"] else "random",
        length_column_name="length",
        eval_strategy=every if select else "no",
        save_strategy=every,
        save_steps=training["save_steps"] or 500,
        eval_steps=training["save_steps"] if select and training["save_steps"] else None,
        save_total_limit=2,
        load_best_model_at_end=select,
        metric_for_best_model=selection_metric(task_type) if select else None,
        greater_is_better=True if select else None,
        logging_strategy="steps",
        logging_steps=training["logging_steps"],
        disable_tqdm=True,
        report_to="none",
        seed=seed,
        data_seed=seed,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        **precision_flags(training["precision"], hidden_size),
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
    *,
    task_dir: str | Path,
    subset_file: str | Path,
    size: int,
    seed: int,
    model_location: str,
    spec: ModelSpec,
    training: dict,
    out_dir: str | Path,
    checkpoint_dir: str | Path,
    keep_checkpoints: bool = False,
    method: dict | None = None,
    method_id: str | None = None,
    attempt: int = 1,
    score_splits: Sequence[str] = (),
) -> dict:
    """Fine-tune on `size` % of the training split; write safetensors, tokenizer and metrics.

    `method` (a validated ``methods.<id>`` entry; default full fine-tuning) may set its own
    learning rate; adapters are saved as adapters (bioprobe.methods).
    `score_splits`: score the trained model on these splits while it is in memory (what
    `bioprobe.training.evaluate.evaluate` would compute from the saved directory, without a
    second process loading it); the result is returned under ``"evaluation"``.
    """
    method = dict(method or FULL)
    training = effective_training(training, method)
    training = training_for_attempt(training, attempt)  # a retry after OOM: smaller batches
    if size <= 0:
        raise ValueError("size 0 is the pretrained model: nothing to fine-tune")
    task = TaskData(task_dir)
    order = read_subset(subset_file, size)
    train_records = task.split("train")
    train_records = [train_records[i] for i in order]
    log.info("task %s: %d of the training examples (%d %%)", task.root, len(train_records), size)

    set_seed(seed)
    tokenizer = load_tokenizer_for(spec, model_location)
    model = load_for_training(
        model_location,
        task.task_type,
        task.labels,
        spec=spec,
        method=method,
        max_length=training["max_length"],
        method_id=method_id,
    )
    train_fs = build_features(task.task_type, train_records, tokenizer, task.labels, training)
    val_fs = build_features(
        task.task_type, task.split("validation"), tokenizer, task.labels, training
    )
    for name, fs in (("train", train_fs), ("validation", val_fs)):
        log_truncation(name, fs, training["max_length"])
    if not torch.cuda.is_available():
        longest = max((f["length"] for f in train_fs.features), default=1)
        training = cpu_micro_batches(training, longest)

    checkpoint_dir = Path(checkpoint_dir)
    fingerprint = run_fingerprint(
        training=resume_key(training),
        seed=seed,
        size=size,
        model=model_location,
        order=order,
        method=method,
    )
    resume = _prepare_checkpoint_dir(checkpoint_dir, fingerprint)
    width = getattr(model.config, "hidden_size", None)
    args = training_arguments(training, seed, checkpoint_dir, task.task_type, width)
    trainer = ResumableTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train_fs.features),
        eval_dataset=Dataset.from_list(val_fs.features) if training["select_best"] else None,
        data_collator=training_collator(
            make_collator(task.task_type, tokenizer), method, task.task_type
        ),
        processing_class=tokenizer,
        compute_metrics=metrics_fn(task.task_type, task.labels),
        preprocess_logits_for_metrics=_argmax_logits,
        callbacks=[ProgressLogCallback()],
    )
    trainer.remove_callback(PrinterCallback)  # raw dicts on stdout; ProgressLogCallback says it
    # the Trainer calls gc.collect() (accelerate's free_memory); with torch and transformers
    # imported that walks millions of objects (~0.3 s a call): leave them out of collections
    gc.freeze()
    started = time.monotonic()
    with explain_out_of_memory(finetune_advice(training, attempt)):
        result = trainer.train(resume_from_checkpoint=resume)
    wall = time.monotonic() - started

    metrics = {
        "train_examples": len(train_records),
        "size": size,
        "seed": seed,
        "global_steps": result.global_step,
        "train_loss": float(result.training_loss),
        "train_runtime_s": wall,
        "train_samples_per_second": result.metrics.get("train_samples_per_second"),
        "resumed_from": Path(resume).name if resume else None,
        "attempt": attempt,
        "best_checkpoint": Path(trainer.state.best_model_checkpoint).name
        if trainer.state.best_model_checkpoint
        else None,
        f"best_validation_{selection_metric(task.task_type)}": trainer.state.best_metric,
        "truncation": {"train": train_fs.stats(), "validation": val_fs.stats()},
        "precision": {k: v for k, v in precision_flags(training["precision"], width).items() if v}
        or "fp32",
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "method": method,
        **parameter_counts(trainer.model),
        **peak_memory_mb(),
    }
    # under mixed precision accelerate left an autocast wrapper on forward: score the model as
    # `evaluate` will load it, in full precision
    model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    evaluation = score_model(model, tokenizer, task, training, score_splits)
    with atomic_path(out_dir, is_dir=True) as tmp:
        model.save_pretrained(tmp)  # safetensors only; a peft model saves its adapters
        save_method(tmp, method)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / "labels.json", task.info)
        write_json(tmp / "training_args.json", {"training": training, "seed": seed})
        write_json(tmp / "train_metrics.json", metrics)
        for pickled in (*tmp.glob("*.bin"), *tmp.glob("*.pt")):
            pickled.unlink()
    if not keep_checkpoints:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    log.info("saved %s (%.1f s)", out_dir, wall)
    return {**metrics, "evaluation": evaluation} if score_splits else metrics
