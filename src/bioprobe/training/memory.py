"""Memory planning: a fine-tuning job's peak memory, estimated before it trains, and the setting
to change where it cannot fit.

The estimate adds what training holds at its peak (the backward pass of the first step):

- weights: every parameter at its loaded size (4-bit weights at their packed size);
- casts: under mixed precision, autocast keeps a 16-bit copy of every float32 weight it casts
  for the length of the forward pass (2 bytes a parameter);
- gradients: one per trainable parameter, in its dtype;
- optimiser state per trainable parameter: AdamW two float32 moments (8 bytes), an 8-bit
  AdamW two 8-bit ones (2 bytes; bitsandbytes' block constants are left out), SGD none;
- activations kept for the backward pass, per layer, from Korthikanti et al. (2022, "Reducing
  activation recomputation in large transformer models", Eq. 1): s·b·h·(34 + 5·a·s/h) bytes with
  16-bit activations (twice that in float32), s the sequence length, b the micro-batch, h the
  width, a the heads. The 5·a·s/h term is the attention matrices, which a fused attention
  kernel does not keep, so the figure is an upper bound on a GPU. With gradient checkpointing
  each layer keeps only its 16-bit input (2·s·b·h) and one layer at a time holds the rest.
- a fixed allowance for the CUDA context and the allocator's fragmentation.

Fully sharded data parallelism over N processes divides weights, gradients and optimiser state
by N (activations stay per process). The OOM retry (bioprobe.pipeline.oom) remains the safety
net: the estimate only says, before hours are spent, what will not fit and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GIB = 2**30
#: CUDA context, cuBLAS workspaces and allocator fragmentation (measured totals exceed the sum
#: of the tensors by about this much on a fresh process)
CUDA_OVERHEAD_BYTES = 1 * GIB
#: optimiser-state bytes per trainable parameter
OPTIMIZER_BYTES = {
    "adamw": 8,
    "adamw_torch": 8,
    "adamw_torch_fused": 8,
    "adamw_8bit": 2,
    "paged_adamw_8bit": 2,
    "sgd": 0,
}
#: share of the device's memory a plan may use before it is called too large
USABLE_FRACTION = 0.95


@dataclass(frozen=True)
class MemoryPlan:
    """Estimated peak bytes of one training process, by part."""

    weights: int
    casts: int
    gradients: int
    optimizer: int
    activations: int
    overhead: int

    @property
    def total(self) -> int:
        fixed = self.weights + self.casts + self.gradients + self.optimizer
        return fixed + self.activations + self.overhead

    def describe(self) -> str:
        parts = ("weights", "casts", "gradients", "optimizer", "activations", "overhead")
        detail = ", ".join(f"{p} {_gib(getattr(self, p))}" for p in parts if getattr(self, p))
        return f"{_gib(self.total)} ({detail})"


def _gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


def parameter_bytes(model: Any) -> tuple[int, int, int, int]:
    """(bytes of all parameters as stored, trainable parameters, bytes of their gradients,
    float32 parameters: what autocast casts)."""
    import torch

    stored = trainable = grad = fp32 = 0
    for p in model.parameters():
        stored += p.numel() * p.element_size()
        fp32 += p.numel() if p.dtype == torch.float32 else 0
        if p.requires_grad:
            trainable += p.numel()
            grad += p.numel() * p.element_size()
    return stored, trainable, grad, fp32


def activation_bytes(
    config: Any,
    *,
    batch_size: int,
    seq_len: int,
    half: bool,
    gradient_checkpointing: bool,
) -> int:
    """Activations kept for the backward pass (Korthikanti et al. 2022, Eq. 1; module doc)."""
    get = config.get if isinstance(config, Mapping) else lambda k, d=None: getattr(config, k, d)
    h = get("hidden_size") or get("d_model") or get("n_embd") or 0
    layers = get("num_hidden_layers") or get("num_layers") or get("n_layer") or 0
    layers += get("num_decoder_layers") or 0  # an encoder-decoder runs both stacks
    heads = get("num_attention_heads") or get("num_heads") or get("n_head") or 1
    if not h or not layers:
        return 0
    scale = 1 if half else 2  # the formula counts 16-bit activations
    s, b = seq_len, batch_size
    per_layer = s * b * h * (34 + 5 * heads * s / h) * scale
    if gradient_checkpointing:
        return int(layers * 2 * s * b * h * scale + per_layer)
    return int(layers * per_layer)


def plan_training_memory(
    model: Any,
    *,
    batch_size: int,
    seq_len: int,
    optimizer: str = "adamw",
    half: bool = False,
    gradient_checkpointing: bool = False,
    shards: int = 1,
    cuda: bool = False,
) -> MemoryPlan:
    """The peak memory of one training process of `model` (loaded, wrapped for its method)."""
    stored, trainable, grad, fp32 = parameter_bytes(model)
    per_param = OPTIMIZER_BYTES.get(optimizer, 8)
    shards = max(1, shards)
    config = getattr(model, "config", {})
    return MemoryPlan(
        weights=stored // shards,
        casts=2 * fp32 // shards if half else 0,
        gradients=grad // shards,
        optimizer=trainable * per_param // shards,
        activations=activation_bytes(
            config,
            batch_size=batch_size,
            seq_len=seq_len,
            half=half,
            gradient_checkpointing=gradient_checkpointing,
        ),
        overhead=CUDA_OVERHEAD_BYTES if cuda else 0,
    )


def fits(plan: MemoryPlan, available: int) -> bool:
    return plan.total <= USABLE_FRACTION * available


def advice(
    plan: MemoryPlan,
    available: int,
    *,
    batch_size: int,
    gradient_checkpointing: bool,
    adapter: bool,
    optimizer: str,
) -> list[str]:
    """What to change, most effective first, where `plan` exceeds `available` bytes."""
    budget = USABLE_FRACTION * available
    fixed = plan.total - plan.activations  # with the CUDA context
    out = []
    if fixed > budget:
        if adapter:
            out.append(
                f"the frozen weights alone take {_gib(plan.weights)}: quantise the base to "
                "4 bits (a method of kind qlora), or load it in bf16 ('models.<id>.dtype')"
            )
        else:
            out.append(
                f"weights, gradients and optimiser state take {_gib(fixed)} before any "
                "activation: train adapters instead (kind lora or qlora), shard the model over "
                "several GPUs ('training.processes' with 'training.strategy: fsdp'), or use an "
                "8-bit optimiser ('training.optim: adamw_8bit')"
                if OPTIMIZER_BYTES.get(optimizer, 8) > 2
                else f"weights, gradients and optimiser state take {_gib(fixed)}: shard the "
                "model over several GPUs ('training.processes' with 'training.strategy: fsdp') "
                "or train adapters"
            )
        return out
    room = budget - fixed
    if not gradient_checkpointing and plan.activations > room:
        out.append(
            "set 'training.gradient_checkpointing: true' (keeps about one layer's "
            f"activations of the {_gib(plan.activations)})"
        )
    if plan.activations > room and batch_size > 1:
        smaller = max(1, int(batch_size * room / plan.activations))
        out.append(
            f"lower 'training.batch_size' to {smaller} or less and raise "
            "'training.gradient_accumulation' by the same factor (the same effective batch), "
            "or lower 'training.max_length'"
        )
    return out
