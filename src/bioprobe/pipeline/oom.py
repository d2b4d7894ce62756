"""Out of memory in fine-tuning or dumps: one message naming the settings to change, and smaller
batches by themselves on a retry.

Snakemake's `attempt` (1, then 2, 3, ... under `--retries`) reaches a job through its
`resources:` (not `params:`, which would make every retried output look out of date to the
params trigger). On attempt *a* fine-tuning splits each batch by a factor of about 2**(a-1) and
accumulates that many more gradients, so the effective batch size, the optimiser steps and the
learning-rate schedule stay the same.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from bioprobe.errors import BioprobeError
from bioprobe.settings import TrainingSettings

log = logging.getLogger("bioprobe.pipeline.oom")

#: how PyTorch, the CUDA caching allocator and the CPU allocator word it
_OOM_WORDS = (
    "out of memory",
    "can't allocate memory",
    "cannot allocate memory",
    "not enough memory",
)


class OutOfMemory(BioprobeError):
    """The job ran out of (GPU or CPU) memory; the message names the settings to change."""


def is_out_of_memory(exc: BaseException) -> bool:
    """torch.OutOfMemoryError (CUDA), MemoryError, or a RuntimeError that says it ran out."""
    import torch

    if isinstance(exc, MemoryError | torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(w in str(exc).lower() for w in _OOM_WORDS)


def split_factor(batch_size: int, attempt: int) -> int:
    """By how much attempt `attempt` divides the batch: the smallest divisor of `batch_size`
    that is at least 2**(attempt-1), so batch size × accumulation stays exactly the same."""
    if batch_size < 1 or attempt < 1:
        raise ValueError(f"batch_size and attempt must be >= 1, got {batch_size}, {attempt}")
    return _divisor_at_least(batch_size, 2 ** (attempt - 1))


def _divisor_at_least(batch_size: int, wanted: int) -> int:
    """The smallest divisor of `batch_size` that is >= `wanted` (`batch_size` if none is)."""
    return next(f for f in range(min(wanted, batch_size), batch_size + 1) if batch_size % f == 0)


def _split_batches(training: TrainingSettings, factor: int) -> TrainingSettings:
    """Batches divided by `factor`, gradient accumulation multiplied by it."""
    return training.replace(
        batch_size=training.batch_size // factor,
        gradient_accumulation=training.gradient_accumulation * factor,
    )


def training_for_attempt(training: TrainingSettings, attempt: int) -> TrainingSettings:
    """Training settings for a retry: batch size divided, gradient accumulation multiplied by
    the same factor (effective batch size kept), evaluation batch halved per attempt."""
    out = _split_batches(training, split_factor(training.batch_size, attempt))
    out = out.replace(eval_batch_size=max(1, training.eval_batch_size >> (attempt - 1)))
    if attempt > 1:
        log.warning(
            "attempt %d: batch_size %d -> %d, gradient_accumulation %d -> %d "
            "(effective batch size %d kept), eval_batch_size %d -> %d",
            attempt,
            training.batch_size,
            out.batch_size,
            training.gradient_accumulation,
            out.gradient_accumulation,
            out.effective_batch_size,
            training.eval_batch_size,
            out.eval_batch_size,
        )
    return out


#: attention elements (batch x longest^2) a CPU micro-batch may hold: above it the attention
#: math runs out of cache and costs more per example (bench/RESULTS.md)
CPU_ATTENTION_BUDGET = 2**19


def cpu_micro_batches(training: TrainingSettings, longest: int) -> TrainingSettings:
    """On a CPU, split batches of long sequences into micro-batches (more gradient
    accumulation, the same effective batch size) so one micro-batch's attention stays within
    `CPU_ATTENTION_BUDGET`. Short sequences keep their batches."""
    batch = training.batch_size
    factor = _divisor_at_least(batch, -(-batch * longest**2 // CPU_ATTENTION_BUDGET))
    if factor == 1:
        return training
    log.info(
        "sequences of up to %d tokens on a CPU: micro-batches of %d, gradient accumulation x%d "
        "(effective batch size %d kept)",
        longest,
        batch // factor,
        factor,
        training.effective_batch_size,
    )
    return _split_batches(training, factor)


def batch_for_attempt(batch_size: int, attempt: int) -> int:
    """Inference batch size for a retry (dumps): halved per attempt, at least 1."""
    return max(1, batch_size >> (attempt - 1))


def finetune_advice(training: TrainingSettings, attempt: int) -> str:
    effective = training.effective_batch_size
    return (
        f"out of memory while fine-tuning (attempt {attempt}: batch_size="
        f"{training.batch_size}, gradient_accumulation={training.gradient_accumulation}, "
        f"eval_batch_size={training.eval_batch_size}). Lower 'training.batch_size' (or "
        "'models.<id>.training.batch_size' / 'tasks.<id>.training.batch_size') and raise "
        "'training.gradient_accumulation' by the same factor, so that the effective batch size "
        f"stays {effective}; lower 'training.eval_batch_size' too; 'training."
        "gradient_checkpointing: true' keeps about one layer's activations (the job's log "
        "has the estimated peak memory by part). Or run snakemake with "
        "--retries 2: each retry halves the batch size and doubles gradient accumulation by itself"
    )


def extract_advice(batch_size: int, attempt: int) -> str:
    return (
        f"out of memory while dumping hidden states and attention maps (attempt {attempt}: "
        f"batch_size={batch_size}). Lower 'extract.batch_size' (a dump has no gradient "
        "accumulation: the batch size is the only knob; 'attention.max_examples' and "
        "'training.max_length' bound the attention maps). Or run snakemake with --retries 2: "
        "each retry halves the batch size by itself"
    )


@contextlib.contextmanager
def explain_out_of_memory(advice: str) -> Iterator[None]:
    """Turn an out-of-memory error raised inside the block into one OutOfMemory(advice)."""
    try:
        yield
    except BaseException as exc:
        if not is_out_of_memory(exc):
            raise
        first_line = (str(exc).splitlines() or [""])[0]
        raise OutOfMemory(f"{advice} [{type(exc).__name__}: {first_line}]") from exc


def resume_key(training: TrainingSettings) -> dict:
    """The training settings that fix a run's trajectory, for the checkpoint fingerprint.

    A retry's smaller micro-batches keep the effective batch size, the optimiser steps and the
    data order (the length-grouped sampler groups by the effective batch), so the checkpoints of
    a killed attempt stay valid for the next one.
    """
    out = {k: v for k, v in training.as_dict().items() if k not in _MICRO_BATCH_KEYS}
    out["effective_batch_size"] = training.effective_batch_size
    return out


_MICRO_BATCH_KEYS = ("batch_size", "gradient_accumulation", "eval_batch_size")
