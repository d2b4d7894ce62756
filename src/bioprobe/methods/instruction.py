"""Instruction tuning: a method that trains on the instruction set, once per model, not per task.

An ``instruction`` method (``bioprobe.instructions.sft``) tunes a decoder or an encoder-decoder
on the config's instruction set with one of the weight-training kinds (``tuning``: lora, full,
qlora), whose plug-ins do the training. Its runs (``results/instruct/``) are sized in percent
of the instruction set. The tuned model, adapters merged, is saved as a pretrained checkpoint:
the analyses dump it on each task as they dump any variant, and the prompting methods
evaluate it (it has no task head).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bioprobe.errors import ConfigError
from bioprobe.methods.base import MethodKind
from bioprobe.methods.full import Full


def refusal(model_config: Any) -> str | None:
    """Why a model (a config object or config.json dict) cannot be instruction-tuned: an
    encoder has no language-modelling head to generate a response with."""
    from bioprobe.models import is_generative_config, model_type_of

    if is_generative_config(model_config):
        return None
    return (
        "instruction tuning trains a model to generate the response: it needs a decoder "
        f"(GPT-2, BioGPT, LLaMA, ...) or an encoder-decoder (T5); "
        f"{model_type_of(model_config)!r} is an encoder"
    )


class Instruction(MethodKind):
    name = "instruction"
    tunes_instructions = True

    def tuning(self, method: Mapping[str, Any]) -> dict[str, Any]:
        """The weight-training method it tunes with: the ``tuning`` kind's entry, from the
        keys that kind has (its defaults for the rest; a null learning rate is the kind's)."""
        from bioprobe import methods

        entry = methods.get(method["tuning"]).defaults()
        entry.update(
            (k, v)
            for k, v in method.items()
            if k in entry and k != "kind" and not (k == "learning_rate" and v is None)
        )
        return entry

    def unsupported(
        self, method_id: str, method: Mapping[str, Any], machine: Any
    ) -> ConfigError | None:
        from bioprobe import methods

        return methods.get(method["tuning"]).unsupported(method_id, self.tuning(method), machine)

    def refuses(self, model_config: Any, task_type: str) -> str | None:
        return refusal(model_config)

    def load_trained(self, *args: Any, **kwargs: Any) -> tuple[Any, int]:
        """The merged model is a whole pretrained checkpoint: loaded as full fine-tuning's."""
        return Full().load_trained(*args, **kwargs)
