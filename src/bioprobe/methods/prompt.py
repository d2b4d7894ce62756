"""Prompt tuning and P-tuning: trainable virtual tokens before every input.

peft prepends ``num_virtual_tokens`` trainable embeddings to every input; a trained model stays
a ``PeftModel`` and the analyses strip the virtual positions (``virtual_tokens`` returned by
``bioprobe.methods.load_trained``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bioprobe.errors import ConfigError
from bioprobe.methods.base import AdapterKind


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


class PromptKind(AdapterKind):
    """What prompt methods share: virtual tokens, their labels and a decoder head's pooling."""

    def virtual_tokens(self, method: Mapping[str, Any]) -> int:
        return int(method["num_virtual_tokens"])

    def refuses(self, model_config: Any, task_type: str) -> str | None:
        from bioprobe import tasks
        from bioprobe.models import is_encoder_decoder_config

        if is_encoder_decoder_config(model_config) and not tasks.get(task_type).token_labels:
            return (
                "an encoder-decoder's sequence head (T5ForSequenceClassification) takes no "
                "input embeddings, which prompt methods feed it; use lora or full for this "
                f"{task_type} task (token tasks, whose T5 head is the encoder's, work)"
            )
        return None

    def check_fits(
        self, method: Mapping[str, Any], model_config: Any, max_length: int, key: str
    ) -> None:
        """Virtual tokens take positions too: max_length + num_virtual_tokens must fit."""
        limit = _max_positions(model_config)
        total = max_length + method["num_virtual_tokens"]
        if limit is not None and total > limit:
            raise ConfigError(
                f"{method['num_virtual_tokens']} virtual tokens + max_length {max_length} = "
                f"{total} positions, but the model has {limit}; lower one of them",
                f"{key}.num_virtual_tokens",
            )

    def wrap_for_training(
        self,
        model: Any,
        method: Mapping[str, Any],
        task_type: str,
        *,
        location: str | None,
        key: str,
    ) -> Any:
        model = super().wrap_for_training(model, method, task_type, location=location, key=key)
        _fix_prompt_pooling(model, task_type)
        return model

    def training_collator(self, collator: Any, method: Mapping[str, Any], task_type: str) -> Any:
        from bioprobe import tasks

        if tasks.get(task_type).token_labels:
            return PromptLabelCollator(collator, method["num_virtual_tokens"])
        return collator

    def from_adapters(
        self, model: Any, method: Mapping[str, Any], task_type: str
    ) -> tuple[Any, int]:
        _fix_prompt_pooling(model, task_type)
        return model.eval(), self.virtual_tokens(method)


class PromptTuning(PromptKind):
    name = "prompt-tuning"

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

        text = method.get("init_text")
        return peft.PromptTuningConfig(
            num_virtual_tokens=method["num_virtual_tokens"],
            prompt_tuning_init=peft.PromptTuningInit.TEXT if text else peft.PromptTuningInit.RANDOM,
            prompt_tuning_init_text=text,
            tokenizer_name_or_path=location if text else None,
            **self.peft_common(task_type, model),
        )


class PTuning(PromptKind):
    name = "p-tuning"

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

        extra = {"encoder_num_layers": method["encoder_num_layers"]}
        if method["encoder_type"] == "mlp":
            extra = {}  # peft's MLP encoder always has 2 layers (and warns when told otherwise)
        return peft.PromptEncoderConfig(
            num_virtual_tokens=method["num_virtual_tokens"],
            encoder_reparameterization_type=method["encoder_type"].upper(),
            encoder_hidden_size=method["encoder_hidden_size"],
            encoder_dropout=method["encoder_dropout"],
            **extra,
            **self.peft_common(task_type, model),
        )


def _max_positions(config: Any) -> int | None:
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None


def _fix_prompt_pooling(model: Any, task_type: str) -> None:
    """A decoder's sequence head needs the last-real-token hooks (token labels do not pool)."""
    from bioprobe import tasks
    from bioprobe.models import is_decoder_config

    if not tasks.get(task_type).token_labels and is_decoder_config(model.config):
        _pool_last_real_token(model)


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
