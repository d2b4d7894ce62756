"""One fine-tuning job on several processes (`training.processes`, one per GPU), and the
single-GPU memory-lean optimisers (`training.optim`).

The config's `batch_size` is the batch of one optimiser micro-step over all processes: with N
processes each takes `batch_size / N` examples, so `batch_size x gradient_accumulation` is the
effective batch whatever the hardware, and a grid's numbers do not change with the GPU count.

`strategy: ddp` keeps a full replica per process (PyTorch DDP: gradients all-reduced);
`strategy: fsdp` shards weights, gradients and optimiser state over the processes (PyTorch
FSDP2 through the Trainer's `fsdp` arguments, full shard, one unit per transformer block, on
GPUs) for full fine-tuning, and leaves the model's adapter methods to one process: their base
is frozen (QLoRA's in 4 bits, which cannot be sharded) and fits one GPU (`job_processes`).
The launch itself (torchrun, the ranks' output) is `bioprobe.training.launch`.

Snakemake imports this module to plan (`require_training_supported`): no torch at module level.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

from bioprobe.errors import BioprobeError, ConfigError
from bioprobe.settings import TrainingSettings

log = logging.getLogger("bioprobe.train")

#: `training.optim` -> the Trainer's `optim`: fused AdamW (one kernel for all parameters, far
#: faster on CPU: bench/RESULTS.md) or bitsandbytes' 8-bit AdamW (optimiser state in 2 bytes a
#: parameter instead of 8; paged: the state pages out to CPU memory under memory pressure)
OPTIMIZERS = {
    "adamw": "adamw_torch_fused",
    "adamw_8bit": "adamw_bnb_8bit",
    "paged_adamw_8bit": "paged_adamw_8bit",
}
#: the optimisers that need bitsandbytes and a CUDA GPU
EIGHT_BIT = frozenset({"adamw_8bit", "paged_adamw_8bit"})
#: set by the launcher in every rank's environment: the directory of the launch (arguments,
#: the ranks' logs, rank 0's result); its presence says "this process is one rank of a job"
LAUNCH_DIR_ENV = "BIOPROBE_LAUNCH_DIR"


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    return rank() == 0


def in_launched_rank() -> bool:
    """This process is one of the ranks `bioprobe.training.launch` started."""
    return LAUNCH_DIR_ENV in os.environ


def job_processes(processes: int, strategy: str, adapter: bool) -> int:
    """The processes of one fine-tuning job (its `gpu` resource): `training.processes`, but one
    for an adapter method where the processes are there to shard full fine-tuning (fsdp)."""
    return 1 if adapter and strategy == "fsdp" else processes


def for_method(training: TrainingSettings, method: Mapping[str, Any]) -> TrainingSettings:
    """The settings of a job of `method`: one process for adapters under fsdp (job_processes)."""
    from bioprobe import methods

    adapter = methods.get(method["kind"]).is_adapter
    n = job_processes(training.processes, training.strategy, adapter)
    if n == training.processes:
        return training
    log.info("strategy fsdp shards full fine-tuning; adapters (%s) train in one process",
             method["kind"])  # fmt: skip
    return training.replace(processes=n)


def needs_launch(training: TrainingSettings) -> bool:
    """The job asks for several processes and is not yet one of them."""
    return training.processes > 1 and not in_launched_rank()


def backend(cuda: bool) -> str:
    return "nccl" if cuda else "gloo"


def per_process(training: TrainingSettings) -> TrainingSettings:
    """The settings one rank trains with: its share of each batch (see the module docstring).
    One process: unchanged."""
    n = training.processes
    if n == 1:
        return training
    if in_launched_rank() and world_size() != n:
        raise BioprobeError(f"training.processes is {n} but {world_size()} processes started")
    if training.batch_size % n:
        raise ConfigError(
            f"{training.batch_size} is not divisible by training.processes ({n}): each process "
            "takes an equal share of a batch",
            "training.batch_size",
        )
    return training.replace(batch_size=training.batch_size // n)


def trainer_arguments(training: TrainingSettings, model: Any, cuda: bool) -> dict[str, Any]:
    """The `TrainingArguments` of the optimiser and of the processes' strategy."""
    if training.optim in EIGHT_BIT:  # planning checked it too, maybe on another machine
        problem = _eight_bit_problem(
            training.optim, cuda, _bitsandbytes_installed(), "training.optim"
        )
        if problem is not None:
            raise problem
    out: dict[str, Any] = {"optim": OPTIMIZERS[training.optim]}
    if training.processes == 1:
        return out
    out["ddp_backend"] = backend(cuda)
    if training.strategy != "fsdp":
        return out
    if not cuda:
        # accelerate shards on GPUs only: on a CPU it would ignore the FSDP plugin anyway
        log.info("strategy fsdp shards over GPUs; the CPU processes train as DDP replicas")
    else:
        out["fsdp"] = True
        out["fsdp_config"] = {
            "version": 2,
            "reshard_after_forward": True,  # full shard: weights gathered per block and freed
            "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "transformer_layer_cls_to_wrap": block_classes(model),
            # checkpoints in shards, one file per process (gathering 16 bytes a parameter onto
            # rank 0 at every save would cost minutes and its memory); the trained model is
            # gathered once, at the end (gather_trained_model)
            "state_dict_type": "SHARDED_STATE_DICT",
        }
    return out


def block_classes(model: Any) -> list[str]:
    """The class names FSDP wraps one unit each: the modules the model keeps whole
    (`_no_split_modules`: its transformer block, BERT's embeddings too), else the class of its
    stack of transformer blocks."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    names = getattr(base, "_no_split_modules", None)
    if names:
        return list(names)
    from bioprobe.analysis.erasure import transformer_blocks

    return [type(transformer_blocks(base)[0]).__name__]


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """Rank 0 runs the block before the others (preparing the checkpoint directory); without a
    process group, just runs it."""
    import torch.distributed as dist

    active = dist.is_available() and dist.is_initialized()
    if active and not is_main_process():
        dist.barrier()
    yield
    if active and is_main_process():
        dist.barrier()


def gather_trained_model(trainer: Any, rebuild: Any) -> Any:
    """The trained model, whole, on rank 0; None on the other ranks (rank 0 alone scores and
    saves). Every rank must call it: gathering FSDP's shards is collective.

    One process or DDP: the unwrapped model (every replica is whole). FSDP: the full state dict
    gathered to rank 0's CPU memory and loaded into `rebuild()`, a model built as the trained
    one was (same classes, adapters and keys).
    """
    model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    if not trainer.is_fsdp_enabled:
        return model if is_main_process() else None
    state = trainer.accelerator.get_state_dict(trainer.model)
    if not is_main_process():
        return None
    whole = rebuild()
    whole.load_state_dict(state)
    return whole


def finish() -> None:
    """Leave the process group of a launched job once its ranks are done (rank 0 may still
    score and save); a process group of the caller's own is left alone."""
    import torch.distributed as dist

    if in_launched_rank() and dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def unsupported_training(
    config: Mapping[str, Any], *, cuda: bool | None = None, bitsandbytes: bool | None = None
) -> list[ConfigError]:
    """One error per (task, model) whose training this machine cannot run: an 8-bit optimiser
    without CUDA or bitsandbytes. Checked at planning, like qlora's needs."""
    from bioprobe import methods
    from bioprobe.config import training_config, training_key

    errors = []
    for task in sorted(config["tasks"]):
        for model in sorted(config["models"]):
            optim = training_config(config, task, model)["optim"]
            if optim not in EIGHT_BIT:
                continue
            # probed once, and only when an 8-bit optimiser asks (torch loads slowly)
            cuda = methods.cuda_available() if cuda is None else cuda
            if bitsandbytes is None:
                bitsandbytes = _bitsandbytes_installed()
            key = training_key(config, task, model, "optim")
            problem = _eight_bit_problem(optim, cuda, bitsandbytes, key)
            if problem is not None:
                errors.append(problem)
    return errors


def _bitsandbytes_installed() -> bool:
    from bioprobe import methods

    return methods.bitsandbytes_installed()


def _eight_bit_problem(optim: str, cuda: bool, bitsandbytes: bool, key: str) -> ConfigError | None:
    missing = [
        why
        for why, ok in (
            ("this machine has no CUDA device", cuda),
            ("bitsandbytes is not installed", bitsandbytes),
        )
        if not ok
    ]
    if not missing:
        return None
    return ConfigError(
        f"{optim} is bitsandbytes' 8-bit AdamW and needs a CUDA GPU and the bitsandbytes "
        f"package, but {' and '.join(missing)}; use optim: adamw here, or run on a CUDA machine "
        "with bitsandbytes installed",
        key,
    )


def check_processes(config: Mapping[str, Any], gpus: Any = None) -> None:
    """Every (task, model)'s batch splits evenly over its processes, and (`gpus`: the run's
    `--resources gpu=` limit, where it sets one) its processes have a GPU each. One error
    naming the key."""
    from bioprobe import methods
    from bioprobe.config import training_config, training_key

    adapters = {methods.get(m["kind"]).is_adapter for m in config["methods"].values()}
    for task in sorted(config["tasks"]):
        for model in sorted(config["models"]):
            training = training_config(config, task, model)
            n, batch = training["processes"], training["batch_size"]
            processes = training_key(config, task, model, "processes")
            if batch % n:
                raise ConfigError(
                    f"{batch} is not divisible by {processes} ({n}): each process takes an "
                    "equal share of a batch",
                    training_key(config, task, model, "batch_size"),
                )
            # the most any of its jobs asks for (fsdp leaves adapters to one process)
            n = max(job_processes(n, training["strategy"], adapter) for adapter in adapters)
            if isinstance(gpus, int) and n > gpus:
                raise ConfigError(
                    f"{n} processes, one per GPU, but this run offers {gpus} GPU(s) "
                    f"(--resources gpu={gpus}, the GPU profile's resources): raise that to {n} "
                    "or lower the processes",
                    processes,
                )


def require_training_supported(config: Mapping[str, Any], **machine: bool | None) -> None:
    errors = unsupported_training(config, **machine)
    if errors:
        raise errors[0]
