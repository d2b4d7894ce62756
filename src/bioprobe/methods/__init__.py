"""Fine-tuning methods, the ``method`` wildcard: full fine-tuning and peft adapters.

A ``methods.<id>`` config entry is a kind (``full``, ``lora``, ``qlora``, ``prompt-tuning``,
``p-tuning``; ``prompting`` trains nothing, ``instruction`` trains on the instruction set) and
its hyper-parameters. This package turns one into a trainable model
(:func:`load_for_training`), records it next to the saved weights (:data:`METHOD_FILE`), and
loads a trained one back for evaluation and dumps (:func:`load_trained`):

- ``lora``/``qlora``: the adapters are merged into the base weights (for ``qlora`` into the
  dequantised 4-bit base), so every analysis sees a plain model of the original architecture;
- ``prompt-tuning``/``p-tuning``: peft prepends ``num_virtual_tokens`` trainable embeddings to
  every input; the model stays a ``PeftModel`` and the analyses strip the virtual positions
  (``virtual_tokens`` returned by :func:`load_trained`).

Each kind is a :class:`~bioprobe.methods.base.MethodKind` (one module per family: ``full``,
``lora``, ``prompt``) found through :func:`get`; the functions here look the kind up and ask
it. Adding a kind is a subclass registered in :data:`REGISTRY` and its schema entry
(``$defs/method_<kind>``). Nothing heavy is imported here: Snakemake imports this package to plan.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bioprobe.errors import ConfigError
from bioprobe.io import read_json, write_json
from bioprobe.methods.base import MethodKind, head_modules
from bioprobe.methods.full import Full
from bioprobe.methods.instruction import Instruction
from bioprobe.methods.lora import LORA_TARGETS, LoRA, QLoRA, lora_targets, quantization_config
from bioprobe.methods.prompt import PromptLabelCollator, PromptTuning, PTuning
from bioprobe.methods.prompting import Prompting
from bioprobe.pipeline.grid import PRETRAINED, RANDOM_INIT
from bioprobe.settings import TrainingSettings

log = logging.getLogger("bioprobe.methods")

#: every method kind by its config name (``methods.<id>.kind``), in the schema's order
REGISTRY: dict[str, MethodKind] = {
    k.name: k
    for k in (Full(), LoRA(), QLoRA(), PromptTuning(), PTuning(), Prompting(), Instruction())
}
#: the kinds' names
KINDS: tuple[str, ...] = tuple(REGISTRY)
#: variants that are not fine-tuning methods (the size-0 models)
RESERVED_IDS = frozenset({PRETRAINED, RANDOM_INIT})
#: written next to the saved weights: which method produced them
METHOD_FILE = "method.json"
FULL = {"kind": "full", "learning_rate": None}


def get(kind: str) -> MethodKind:
    """The method kind called `kind`; an unknown name is a ValueError listing the known ones."""
    try:
        return REGISTRY[kind]
    except KeyError:
        raise ValueError(
            f"unknown method kind {kind!r} (expected one of {', '.join(KINDS)})"
        ) from None


def _kind(method: Mapping[str, Any]) -> MethodKind:
    return get(method["kind"])


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
        if method_id in REGISTRY:
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


class _Machine:
    """What this machine has, probed once and only when a kind asks (torch loads slowly)."""

    def __init__(self, cuda: bool | None, bitsandbytes: bool | None):
        self._cuda, self._bitsandbytes = cuda, bitsandbytes

    @functools.cached_property
    def cuda(self) -> bool:
        # the module-level name, looked up at call time: tests patch bioprobe.methods.*
        return cuda_available() if self._cuda is None else self._cuda

    @functools.cached_property
    def bitsandbytes(self) -> bool:
        return bitsandbytes_installed() if self._bitsandbytes is None else self._bitsandbytes


def unsupported_methods(
    methods: Mapping[str, Mapping[str, Any]],
    *,
    cuda: bool | None = None,
    bitsandbytes: bool | None = None,
) -> list[ConfigError]:
    """One error per method this machine cannot run (qlora: CUDA and bitsandbytes)."""
    machine = _Machine(cuda, bitsandbytes)
    errors = (
        _kind(methods[mid]).unsupported(mid, methods[mid], machine) for mid in sorted(methods)
    )
    return [error for error in errors if error is not None]


def check_model_supported(
    methods: Mapping[str, Mapping[str, Any]], model_config: Any, task_type: str, model_key: str
) -> None:
    """ConfigError naming the method where a method cannot run this model on this task."""
    for method_id, method in methods.items():
        problem = _kind(method).refuses(model_config, task_type)
        if problem:
            raise ConfigError(
                f"{method_id} cannot run {model_key}: {problem}", f"methods.{method_id}"
            )


def require_supported(methods: Mapping[str, Mapping[str, Any]], **machine: bool | None) -> None:
    errors = unsupported_methods(methods, **machine)
    if errors:
        raise errors[0]


def effective_training(training: TrainingSettings, method: Mapping[str, Any]) -> TrainingSettings:
    """The training settings with the method's learning rate, where it sets one."""
    if method.get("learning_rate") is None:
        return training
    return training.replace(learning_rate=method["learning_rate"])


# --------------------------------------------------------------------------------------------
# peft configs


def peft_config(
    method: Mapping[str, Any],
    task_type: str,
    model: Any,
    *,
    location: str | None = None,
    key: str = "methods",
) -> Any:
    """The peft config of a method for `model` (a token- or sequence-classification model)."""
    return _kind(method).peft_config(method, task_type, model, location=location, key=key)


def check_virtual_tokens_fit(
    method: Mapping[str, Any], model_config: Any, max_length: int, key: str
) -> None:
    """Virtual tokens take positions too: max_length + num_virtual_tokens must fit the model."""
    _kind(method).check_fits(method, model_config, max_length, key)


def training_collator(collator: Any, method: Mapping[str, Any], task_type: str) -> Any:
    return _kind(method).training_collator(collator, method, task_type)


def virtual_tokens(method: Mapping[str, Any]) -> int:
    return _kind(method).virtual_tokens(method)


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
    half: str | None = None,
) -> Any:
    """The model to train: the pretrained model (full), or a peft model wrapping it.

    `half` (bfloat16/float16: the training's mixed-precision type on a GPU) is the dtype an
    adapter's frozen base loads in; weights that train load in float32
    (:func:`bioprobe.models.weights_dtype`)."""
    from bioprobe.models import weights_dtype

    kind = _kind(method)
    key = f"methods.{method_id or method['kind']}"
    dtype = weights_dtype(spec, half if kind.is_adapter else None)
    model = kind.load_base(
        location, task_type, labels, spec=spec, method=method, method_id=method_id,
        training=True, dtype=dtype,
    )  # fmt: skip
    kind.check_fits(method, model.config, max_length, key)
    check_model_supported({key.split(".", 1)[1]: method}, model.config, task_type, spec.key)
    return kind.wrap_for_training(model, method, task_type, location=location, key=key)


def save_method(out_dir: str | os.PathLike, method: Mapping[str, Any]) -> None:
    write_json(Path(out_dir) / METHOD_FILE, dict(method))


def read_method(model_dir: str | os.PathLike) -> dict:
    """The method that produced a saved model (``full`` where none is recorded)."""
    path = Path(model_dir) / METHOD_FILE
    return read_json(path) if path.is_file() else dict(FULL)


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
    method = read_method(location)
    return _kind(method).load_trained(
        location, task_type, labels, method, spec=spec, base_location=base_location, **load_kwargs
    )


__all__ = [
    "FULL",
    "KINDS",
    "LORA_TARGETS",
    "METHOD_FILE",
    "REGISTRY",
    "RESERVED_IDS",
    "MethodKind",
    "PromptLabelCollator",
    "bitsandbytes_installed",
    "check_method_ids",
    "check_model_supported",
    "check_virtual_tokens_fit",
    "cuda_available",
    "effective_training",
    "get",
    "head_modules",
    "load_for_training",
    "load_trained",
    "lora_targets",
    "normalise_methods",
    "peft_config",
    "quantization_config",
    "read_method",
    "require_supported",
    "save_method",
    "training_collator",
    "unsupported_methods",
    "virtual_tokens",
]
