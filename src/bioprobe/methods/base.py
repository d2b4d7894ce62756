"""The interface a method kind implements: what training, scoring and dumps ask of it.

A kind knows its schema defaults, how its base model is loaded, how a loaded model is wrapped
for training, which collator its training needs, what it asks of the machine, and how a trained
run is loaded back. Callers hold no knowledge of any kind: they go through
``bioprobe.methods``, which looks the kind up in its registry.

Adapters (:class:`AdapterKind`) come from the peft library. The task head (``classifier``/
``score``, and any other top-level module outside the backbone) trains alongside the adapters
through peft's ``modules_to_save`` and is saved with them.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from bioprobe.errors import BioprobeError, ConfigError

#: the language-modelling objectives a kind can train besides task heads (instruction tuning,
#: bioprobe.instructions), passed where a task type goes; peft's task type of each
LM_OBJECTIVES = {"causal-lm": "CAUSAL_LM", "seq2seq-lm": "SEQ_2_SEQ_LM"}


class MethodKind:
    """One method kind (``methods.<id>.kind``). Instances are stateless singletons."""

    #: the config name (``kind: lora``)
    name: ClassVar[str]
    #: whether a trained run is adapters on the pretrained model (rather than a whole model)
    is_adapter: ClassVar[bool] = False
    #: whether the method trains (False: prompting; its runs are size 0, evaluation only)
    trains: ClassVar[bool] = True
    #: whether it trains on the instruction set (once per model) rather than on each task
    tunes_instructions: ClassVar[bool] = False

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """What a bare ``{kind: <name>}`` entry becomes: the schema's ``$defs/method_<kind>``."""
        return copy.deepcopy(_schema_defaults(cls.name))

    # --- config and machine ---

    def unsupported(
        self, method_id: str, method: Mapping[str, Any], machine: Any
    ) -> ConfigError | None:
        """Why this machine cannot run the method (`machine.cuda`, `machine.bitsandbytes`)."""
        return None

    def virtual_tokens(self, method: Mapping[str, Any]) -> int:
        """Positions the method prepends to every input (cut from the outputs later)."""
        return 0

    def check_fits(
        self, method: Mapping[str, Any], model_config: Any, max_length: int, key: str
    ) -> None:
        """ConfigError naming `key` where the method's inputs outgrow the model's positions."""

    def refuses(self, model_config: Any, task_type: str) -> str | None:
        """Why this kind cannot train a model of `model_config` (an object or a config.json
        dict) on `task_type`; None where it can."""
        return None

    # --- training ---

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
        """The model the method starts from, for training or under trained adapters.

        One hook for both, so a kind that loads its base differently (QLoRA's 4-bit base)
        does so in one place. `task_type` may be an LM objective (:data:`LM_OBJECTIVES`):
        the model with its language-modelling head, no task head.
        """
        from bioprobe.models import load_language_model, load_model_for_task

        if task_type in LM_OBJECTIVES:
            return load_language_model(location, spec=spec, **load_kwargs)
        return load_model_for_task(location, task_type, labels, spec=spec, **load_kwargs)

    def wrap_for_training(
        self,
        model: Any,
        method: Mapping[str, Any],
        task_type: str,
        *,
        location: str | None,
        key: str,
    ) -> Any:
        """The model the Trainer trains, from the loaded base."""
        return model

    def peft_config(
        self,
        method: Mapping[str, Any],
        task_type: str,
        model: Any,
        *,
        location: str | None = None,
        key: str = "methods",
    ) -> Any:
        raise ValueError(f"{self.name!r} is not an adapter method")

    def training_collator(self, collator: Any, method: Mapping[str, Any], task_type: str) -> Any:
        """The batch collator of training, from the task's."""
        return collator

    # --- trained runs ---

    def load_trained(
        self,
        location: str,
        task_type: str,
        labels: Sequence[str],
        method: Mapping[str, Any],
        *,
        spec: Any,
        base_location: str | None = None,
        **load_kwargs: Any,
    ) -> tuple[Any, int]:
        """A trained run for evaluation or dumps, and its number of leading virtual tokens."""
        raise NotImplementedError


class AdapterKind(MethodKind):
    """A peft adapter method: the trained run is adapters saved apart from their base."""

    is_adapter = True

    def wrap_for_training(
        self,
        model: Any,
        method: Mapping[str, Any],
        task_type: str,
        *,
        location: str | None,
        key: str,
    ) -> Any:
        import peft

        config = self.peft_config(method, task_type, model, location=location, key=key)
        return float32_trainables(peft.get_peft_model(model, config))

    def peft_common(self, task_type: str, model: Any) -> dict[str, Any]:
        """The peft config entries every adapter shares: the task type and the head. An LM
        objective keeps its pretrained LM head frozen (no ``modules_to_save``: most families tie
        it to the input embeddings, and T5's top-level modules are the whole model)."""
        import peft

        from bioprobe import tasks

        if task_type in LM_OBJECTIVES:
            return {"task_type": getattr(peft.TaskType, LM_OBJECTIVES[task_type])}
        return {
            "task_type": getattr(peft.TaskType, tasks.get(task_type).peft_task_type),
            "modules_to_save": head_modules(model),
        }

    def load_trained(
        self,
        location: str,
        task_type: str,
        labels: Sequence[str],
        method: Mapping[str, Any],
        *,
        spec: Any,
        base_location: str | None = None,
        **load_kwargs: Any,
    ) -> tuple[Any, int]:
        if base_location is None:
            raise BioprobeError(f"{location} holds {method['kind']} adapters: give the base model")
        base = self.load_base(
            base_location,
            task_type,
            labels,
            spec=spec,
            method=method,
            training=False,
            **load_kwargs,
        )
        import peft

        return self.from_adapters(peft.PeftModel.from_pretrained(base, location), method, task_type)

    def from_adapters(
        self, model: Any, method: Mapping[str, Any], task_type: str
    ) -> tuple[Any, int]:
        """The scored model from a ``PeftModel`` of the trained adapters, and its virtual tokens."""
        raise NotImplementedError


def float32_trainables(model: Any) -> Any:
    """Every trainable parameter in float32 on a half-precision base: the optimiser's master
    copy. peft casts the adapters up itself, not the head copies of ``modules_to_save``, and
    fp16 mixed precision refuses to unscale fp16 gradients."""
    import torch

    for param in model.parameters():
        if param.requires_grad and param.dtype in (torch.float16, torch.bfloat16):
            param.data = param.data.float()
    return model


def head_modules(model: Any) -> list[str]:
    """Top-level modules with weights outside the backbone: the task head (trained, saved)."""
    backbone = getattr(model, "base_model_prefix", None)
    return [
        name
        for name, module in model.named_children()
        if name != backbone and any(True for _ in module.parameters())
    ]


@functools.cache
def _schema_defaults(name: str) -> dict[str, Any]:
    from bioprobe.config import load_schema  # bioprobe.config imports this package

    definition = load_schema()["$defs"][f"method_{name.replace('-', '_')}"]
    defaults = {
        key: prop["default"]
        for key, prop in definition["properties"].items()
        if isinstance(prop, dict) and "default" in prop
    }
    return {"kind": name, **defaults}
