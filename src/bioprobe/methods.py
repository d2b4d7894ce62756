"""Fine-tuning methods, the ``method`` wildcard: full fine-tuning and peft adapters.

A ``methods.<id>`` config entry is a kind (``full``, ``lora``, ``qlora``, ``prompt-tuning``,
``p-tuning``) and its hyper-parameters. This module turns one into a trainable model
(:func:`load_for_training`), records it next to the saved weights (:data:`METHOD_FILE`), and
loads a trained one back for evaluation and dumps (:func:`load_trained`):

- ``lora``/``qlora``: the adapters are merged into the base weights (for ``qlora`` into the
  dequantised 4-bit base), so every analysis sees a plain model of the original architecture;
- ``prompt-tuning``/``p-tuning``: peft prepends ``num_virtual_tokens`` trainable embeddings to
  every input; the model stays a ``PeftModel`` and the analyses strip the virtual positions
  (``virtual_tokens`` returned by :func:`load_trained`).

The task head (``classifier``/``score``, and any other top-level module outside the backbone)
trains alongside the adapters through peft's ``modules_to_save`` and is saved with them.
"""

from __future__ import annotations

import difflib
import importlib.util
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bioprobe.errors import BioprobeError, ConfigError
from bioprobe.io import read_json, write_json

log = logging.getLogger("bioprobe.methods")

KINDS = ("full", "lora", "qlora", "prompt-tuning", "p-tuning")
LORA_KINDS = frozenset({"lora", "qlora"})
PROMPT_KINDS = frozenset({"prompt-tuning", "p-tuning"})
#: variants that are not fine-tuning methods (grid.PRETRAINED, grid.RANDOM_INIT)
RESERVED_IDS = frozenset({"pretrained", "random-init"})
#: written next to the saved weights: which method produced them
METHOD_FILE = "method.json"
FULL = {"kind": "full", "learning_rate": None}

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
}
#: heads kept out of 4-bit quantisation (they are trained in full precision)
_HEAD_NAMES = ["classifier", "score", "pre_classifier"]


# --------------------------------------------------------------------------------------------
# config


def normalise_methods(config: dict) -> None:
    """Before schema validation: an id that is a kind needs no ``kind:`` (``lora: {r: 16}``).

    An unknown id without ``kind:`` is one error naming it (with the closest kind).
    """
    methods = config.get("methods")
    if not isinstance(methods, dict):
        return
    for method_id, entry in methods.items():
        if entry is None:  # `lora:` with nothing after it in YAML
            entry = methods[method_id] = {}
        if not isinstance(entry, dict) or "kind" in entry:
            continue
        if method_id in KINDS:
            entry["kind"] = method_id
            continue
        close = difflib.get_close_matches(str(method_id), KINDS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(
            f"not a method kind{hint}; a method with another id names its kind "
            f"(kind: {' | '.join(KINDS)})",
            f"methods.{method_id}",
        )


def check_method_ids(methods: Mapping[str, Any]) -> None:
    for method_id in methods:
        if method_id in RESERVED_IDS:
            raise ConfigError(
                f"'{method_id}' is reserved for the size-0 variants; name the method otherwise",
                f"methods.{method_id}",
            )


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def bitsandbytes_installed() -> bool:
    return importlib.util.find_spec("bitsandbytes") is not None


def unsupported_methods(
    methods: Mapping[str, Mapping[str, Any]],
    *,
    cuda: bool | None = None,
    bitsandbytes: bool | None = None,
) -> list[ConfigError]:
    """One error per method this machine cannot run (qlora: CUDA and bitsandbytes)."""
    wanted = sorted(mid for mid, m in methods.items() if m["kind"] == "qlora")
    if not wanted:
        return []
    cuda = cuda_available() if cuda is None else cuda
    bitsandbytes = bitsandbytes_installed() if bitsandbytes is None else bitsandbytes
    missing = [
        what
        for what, ok in (
            ("this machine has no CUDA device", cuda),
            ("bitsandbytes is not installed", bitsandbytes),
        )
        if not ok
    ]
    if not missing:
        return []
    return [
        ConfigError(
            f"method '{mid}' (qlora) quantises the base model to 4 bits with bitsandbytes and "
            f"needs a CUDA GPU and the bitsandbytes package, but {' and '.join(missing)}; "
            "run it on a CUDA machine (pip install bitsandbytes) or remove it from methods:",
            f"methods.{mid}",
        )
        for mid in wanted
    ]


def require_supported(methods: Mapping[str, Mapping[str, Any]], **machine: bool | None) -> None:
    errors = unsupported_methods(methods, **machine)
    if errors:
        raise errors[0]


def effective_training(training: Mapping[str, Any], method: Mapping[str, Any]) -> dict:
    """The training hyper-parameters with the method's learning rate, where it sets one."""
    out = dict(training)
    if method.get("learning_rate") is not None:
        out["learning_rate"] = method["learning_rate"]
    return out


# --------------------------------------------------------------------------------------------
# peft configs


def head_modules(model: Any) -> list[str]:
    """Top-level modules with weights outside the backbone: the task head (trained, saved)."""
    backbone = getattr(model, "base_model_prefix", None)
    return [
        name
        for name, module in model.named_children()
        if name != backbone and any(True for _ in module.parameters())
    ]


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


def peft_config(
    method: Mapping[str, Any],
    task_type: str,
    model: Any,
    *,
    location: str | None = None,
    key: str = "methods",
) -> Any:
    """The peft config of a method for `model` (a token- or sequence-classification model)."""
    import peft

    kind = method["kind"]
    common = {
        "task_type": peft.TaskType.TOKEN_CLS if task_type == "ner" else peft.TaskType.SEQ_CLS,
        "modules_to_save": head_modules(model),
    }
    if kind in LORA_KINDS:
        return peft.LoraConfig(
            r=method["r"],
            lora_alpha=method["alpha"],
            lora_dropout=method["dropout"],
            bias=method["bias"],
            target_modules=lora_targets(method, getattr(model.config, "model_type", None), key),
            **common,
        )
    if kind == "prompt-tuning":
        text = method.get("init_text")
        return peft.PromptTuningConfig(
            num_virtual_tokens=method["num_virtual_tokens"],
            prompt_tuning_init=peft.PromptTuningInit.TEXT if text else peft.PromptTuningInit.RANDOM,
            prompt_tuning_init_text=text,
            tokenizer_name_or_path=location if text else None,
            **common,
        )
    if kind == "p-tuning":
        extra = {"encoder_num_layers": method["encoder_num_layers"]}
        if method["encoder_type"] == "mlp":
            extra = {}  # peft's MLP encoder always has 2 layers (and warns when told otherwise)
        return peft.PromptEncoderConfig(
            num_virtual_tokens=method["num_virtual_tokens"],
            encoder_reparameterization_type=method["encoder_type"].upper(),
            encoder_hidden_size=method["encoder_hidden_size"],
            encoder_dropout=method["encoder_dropout"],
            **extra,
            **common,
        )
    raise ValueError(f"{kind!r} is not an adapter method")


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


def _max_positions(config: Any) -> int | None:
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None


def check_virtual_tokens_fit(
    method: Mapping[str, Any], model_config: Any, max_length: int, key: str
) -> None:
    """Virtual tokens take positions too: max_length + num_virtual_tokens must fit the model."""
    if method["kind"] not in PROMPT_KINDS:
        return
    limit = _max_positions(model_config)
    total = max_length + method["num_virtual_tokens"]
    if limit is not None and total > limit:
        raise ConfigError(
            f"{method['num_virtual_tokens']} virtual tokens + max_length {max_length} = {total} "
            f"positions, but the model has {limit}; lower one of them",
            f"{key}.num_virtual_tokens",
        )


# --------------------------------------------------------------------------------------------
# decoder sequence heads under prompt methods


def _pool_last_real_token(model: Any) -> None:
    """Make a decoder's sequence head pool the last real token under a prompt method.

    GPT-2/BioGPT/LLaMA sequence heads find the last non-pad token in ``input_ids``; prompt
    methods pass ``inputs_embeds`` instead, and the head then pools position -1, a pad token in
    a right-padded batch. These hooks put each row's last real token's logits at position -1.
    """
    import torch

    base = model.get_base_model()
    head = getattr(base, "score", None)
    if head is None:
        return
    state: dict[str, Any] = {}

    def keep_mask(_module, _args, kwargs):
        state["mask"] = kwargs.get("attention_mask")

    def move_last(_module, _args, logits):
        mask = state.get("mask")
        if mask is None or logits.dim() != 3 or mask.shape[-1] != logits.shape[1]:
            return None
        positions = torch.arange(mask.shape[-1], device=logits.device)
        last = (mask.to(logits.device).long() * positions).argmax(-1)
        picked = logits[torch.arange(logits.shape[0], device=logits.device), last]
        return torch.cat([logits[:, :-1], picked.unsqueeze(1)], dim=1)

    base.register_forward_pre_hook(keep_mask, with_kwargs=True)
    head.register_forward_hook(move_last)


def _fix_prompt_pooling(model: Any, method: Mapping[str, Any], task_type: str) -> None:
    from bioprobe.models import is_decoder_config

    if method["kind"] in PROMPT_KINDS and task_type == "pair" and is_decoder_config(model.config):
        _pool_last_real_token(model)


class PromptLabelCollator:
    """Prepends -100 labels for the virtual tokens (token classification under prompt methods).

    peft prepends the prompt to the inputs but not to the labels; the token-classification loss
    then compares sequences of different lengths.
    """

    def __init__(self, collator: Any, virtual_tokens: int):
        self.collator = collator
        self.virtual_tokens = virtual_tokens

    def __call__(self, features):
        import torch

        batch = self.collator(features)
        labels = batch["labels"]
        pad = labels.new_full((labels.shape[0], self.virtual_tokens), -100)
        batch["labels"] = torch.cat([pad, labels], dim=1)
        return batch


def training_collator(collator: Any, method: Mapping[str, Any], task_type: str) -> Any:
    if method["kind"] in PROMPT_KINDS and task_type == "ner":
        return PromptLabelCollator(collator, method["num_virtual_tokens"])
    return collator


# --------------------------------------------------------------------------------------------
# loading


def load_for_training(
    location: str,
    task_type: str,
    labels: Sequence[str],
    *,
    spec: Any,
    method: Mapping[str, Any],
    max_length: int,
    method_id: str | None = None,
) -> Any:
    """The model to train: the pretrained model (full), or a peft model wrapping it."""
    from bioprobe.models import load_model_for_task

    key = f"methods.{method_id or method['kind']}"
    kind = method["kind"]
    if kind == "full":
        return load_model_for_task(location, task_type, labels, spec=spec)
    extra: dict[str, Any] = {}
    if kind == "qlora":
        require_supported({method_id or kind: method})
        extra["quantization_config"] = quantization_config(method)
    model = load_model_for_task(location, task_type, labels, spec=spec, **extra)
    check_virtual_tokens_fit(method, model.config, max_length, key)
    import peft

    if kind == "qlora":
        model = peft.prepare_model_for_kbit_training(model)
    model = peft.get_peft_model(
        model, peft_config(method, task_type, model, location=location, key=key)
    )
    _fix_prompt_pooling(model, method, task_type)
    return model


def save_method(out_dir: str | os.PathLike, method: Mapping[str, Any]) -> None:
    write_json(Path(out_dir) / METHOD_FILE, dict(method))


def read_method(model_dir: str | os.PathLike) -> dict:
    """The method that produced a saved model (``full`` where none is recorded)."""
    path = Path(model_dir) / METHOD_FILE
    return read_json(path) if path.is_file() else dict(FULL)


def virtual_tokens(method: Mapping[str, Any]) -> int:
    return int(method["num_virtual_tokens"]) if method["kind"] in PROMPT_KINDS else 0


def load_trained(
    location: str,
    task_type: str,
    labels: Sequence[str],
    *,
    spec: Any,
    base_location: str | None = None,
    **load_kwargs: Any,
) -> tuple[Any, int]:
    """A fine-tuned model for evaluation or dumps, and its number of leading virtual tokens.

    Full fine-tuning: the saved model. LoRA: the base at `base_location` with the adapters
    merged in (QLoRA: the 4-bit base dequantised first, so the weights are those it was trained
    on). Prompt methods: a ``PeftModel`` whose outputs start with the virtual positions.
    `load_kwargs` go to :func:`bioprobe.models.load_model_for_task` (attention, tokenizer).
    """
    from bioprobe.models import load_model_for_task

    method = read_method(location)
    if method["kind"] == "full":
        return load_model_for_task(location, task_type, labels, spec=spec, **load_kwargs), 0
    if base_location is None:
        raise BioprobeError(f"{location} holds {method['kind']} adapters: give the base model")
    extra: dict[str, Any] = {}
    if method["kind"] == "qlora":
        require_supported({method["kind"]: method})
        extra["quantization_config"] = quantization_config(method)
    base = load_model_for_task(base_location, task_type, labels, spec=spec, **load_kwargs, **extra)
    if method["kind"] == "qlora":
        import torch

        base = base.dequantize(dtype=torch.float32)
    import peft

    model = peft.PeftModel.from_pretrained(base, location)
    if method["kind"] in LORA_KINDS:
        return model.merge_and_unload().eval(), 0
    _fix_prompt_pooling(model, method, task_type)
    return model.eval(), virtual_tokens(method)
