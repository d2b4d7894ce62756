"""LoRA and QLoRA: low-rank updates of frozen weights.

A trained run's adapters are merged into the base weights (for ``qlora`` into the dequantised
4-bit base), so every analysis sees a plain model of the original architecture.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bioprobe.errors import ConfigError
from bioprobe.methods.base import AdapterKind

# Every linear projection of the transformer blocks: attention alone leaves LoRA well short of
# full fine-tuning (Dettmers et al. 2023 needed all linear layers to match it).
_BERT = ("query", "key", "value", "dense")
_LLAMA = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LORA_TARGETS: dict[str, tuple[str, ...]] = {
    "bert": _BERT,
    "roberta": _BERT,
    "xlm-roberta": _BERT,
    "electra": _BERT,
    "gpt2": ("c_attn", "c_proj", "c_fc"),
    "biogpt": ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"),
    **dict.fromkeys(("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2"), _LLAMA),
    # T5, FLAN-T5, UL2: every projection of every attention (encoder, decoder, cross) and of
    # the feed-forward, gated (wi_0, wi_1: T5 v1.1, FLAN-T5, UL2) or not (wi: T5 v1.0); peft
    # adapts the names a model has. peft's own T5 default is q and v only, which falls short
    # as attention-only LoRA does elsewhere.
    **dict.fromkeys(("t5", "umt5", "mt5"), ("q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo")),
}
#: heads kept out of 4-bit quantisation (they are trained in full precision); T5's sequence
#: head is `classification_head`; `lm_head`: instruction tuning's frozen LM head, kept whole
#: (transformers' own default skips it, but only where no list is given)
_HEAD_NAMES = ["classifier", "score", "pre_classifier", "classification_head", "lm_head"]


def lora_targets(method: Mapping[str, Any], model_type: str | None, key: str) -> Any:
    targets = method.get("target_modules")
    if targets is not None:
        return targets if isinstance(targets, str) else list(targets)
    if model_type in LORA_TARGETS:
        return list(LORA_TARGETS[model_type])
    raise ConfigError(
        f"no default LoRA target modules for model type {model_type!r}; list the module names "
        "(e.g. the attention projections) or use all-linear",
        f"{key}.target_modules",
    )


def quantization_config(method: Mapping[str, Any]) -> Any:
    """The 4-bit bitsandbytes config of a qlora method (transformers imports bitsandbytes later)."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=method["quant_type"],
        bnb_4bit_use_double_quant=method["double_quant"],
        bnb_4bit_compute_dtype=getattr(torch, method["compute_dtype"]),
        llm_int8_skip_modules=list(_HEAD_NAMES),
    )


class LoRA(AdapterKind):
    name = "lora"

    def peft_config(
        self,
        method: Mapping[str, Any],
        task_type: str,
        model: Any,
        *,
        location: str | None = None,
        key: str = "methods",
    ) -> Any:
        import peft

        return peft.LoraConfig(
            r=method["r"],
            lora_alpha=method["alpha"],
            lora_dropout=method["dropout"],
            bias=method["bias"],
            target_modules=lora_targets(method, getattr(model.config, "model_type", None), key),
            **self.peft_common(task_type, model),
        )

    def from_adapters(
        self, model: Any, method: Mapping[str, Any], task_type: str
    ) -> tuple[Any, int]:
        return model.merge_and_unload().eval(), 0


class QLoRA(LoRA):
    """LoRA on a 4-bit quantised base (bitsandbytes; needs CUDA)."""

    name = "qlora"

    def unsupported(
        self, method_id: str, method: Mapping[str, Any], machine: Any
    ) -> ConfigError | None:
        missing = [
            what
            for what, ok in (
                ("this machine has no CUDA device", machine.cuda),
                ("bitsandbytes is not installed", machine.bitsandbytes),
            )
            if not ok
        ]
        if not missing:
            return None
        return ConfigError(
            f"method '{method_id}' (qlora) quantises the base model to 4 bits with bitsandbytes "
            f"and needs a CUDA GPU and the bitsandbytes package, but {' and '.join(missing)}; "
            "run it on a CUDA machine (pip install bitsandbytes) or remove it from methods:",
            f"methods.{method_id}",
        )

    def load_base(
        self,
        location: str,
        task_type: str,
        labels: Sequence[str],
        *,
        spec: Any,
        method: Mapping[str, Any],
        method_id: str | None = None,
        training: bool,
        **load_kwargs: Any,
    ) -> Any:
        """The 4-bit base: prepared for k-bit training, or dequantised under trained adapters
        (the weights they were trained on) so that they merge into a plain model."""
        from bioprobe import methods  # through the package: tests patch its machine probes

        methods.require_supported({method_id or self.name: method})
        quantization = quantization_config(method)
        base = super().load_base(
            location,
            task_type,
            labels,
            spec=spec,
            method=method,
            training=training,
            quantization_config=quantization,
            **load_kwargs,
        )
        if training:
            import peft

            return peft.prepare_model_for_kbit_training(base)
        from bioprobe.models import inference_half, weights_dtype

        # merged in the job's inference dtype (float32 on the CPU, bf16 on a GPU)
        return base.dequantize(
            dtype=load_kwargs.get("dtype") or weights_dtype(spec, inference_half())
        )
