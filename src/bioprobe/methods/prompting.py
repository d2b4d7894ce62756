"""Prompting: zero- and few-shot in-context learning, a method that trains nothing.

A ``prompting`` method (``bioprobe.prompting``) asks a decoder or an encoder-decoder each
example as a prompt. Its runs have size 0 and produce evaluation rows only: the grid plans no
fine-tuning for it (``trains`` is False) and the analyses read the pretrained model, which is
what it runs.
"""

from __future__ import annotations

from typing import Any

from bioprobe.methods.base import MethodKind


class Prompting(MethodKind):
    name = "prompting"
    trains = False

    def refuses(self, model_config: Any, task_type: str) -> str | None:
        from bioprobe.models import is_generative_config, model_type_of

        if is_generative_config(model_config):
            return None
        model_type = model_type_of(model_config)
        return (
            f"prompting needs a language model that generates text (a decoder such as GPT-2, "
            f"BioGPT or LLaMA, or an encoder-decoder such as T5); {model_type!r} is an encoder"
        )

    def load_trained(self, location, task_type, labels, method, *, spec, **load_kwargs):
        raise TypeError("a prompting method trains nothing: it has no trained run to load")
