"""Supervised fine-tuning on an instruction set: the loss on the response tokens only.

A record becomes a prompt and a response. The prompt is the model's chat template: one user
turn holding the instruction and, where there is one, a blank line and the input, with the
assistant's generation prompt. A tokenizer without a chat template (or ``chat_template:
never``) is given the plain template of Alpaca as its chat template (:func:`plain_chat_template`:
:data:`PLAIN_TEMPLATE`, without its input block where the input is empty), which is saved with
the tuned model: prompting it later (``chat_template: auto``) asks in the format it was tuned
on, tokenized as here. The response is the output and the end-of-sequence token. A decoder
(``AutoModelForCausalLM``) reads prompt and response as one sequence whose prompt positions
carry the label -100; an encoder-decoder (``AutoModelForSeq2SeqLM``: T5) reads the prompt in its
encoder and has the response as its labels. Either way only the response is learnt, and
padding is -100 too.

Why the transformers Trainer with a collator of our own rather than trl's ``SFTTrainer``
(``completion_only_loss``): trl's collator builds one prompt+completion sequence for a causal
LM and has no encoder-decoder path (T5 would read its own answer in the encoder), so T5 needed
this code anyway; with the masking done here once for both shapes, the run is the same
:class:`~bioprobe.training.resume.ResumableTrainer`, progress callback, checkpoint fingerprint
and out-of-memory retry as task fine-tuning (bioprobe.training.finetune), and trl and its
dependencies stay out of the environment. The masking is one comparison of lengths per record,
and ``DataCollatorForSeq2Seq`` pads the labels with -100.

Methods: ``full``, ``lora`` (the default) and ``qlora``, their plug-ins as for tasks
(:mod:`bioprobe.methods`) with an LM objective (``causal-lm``, ``seq2seq-lm``) where a task type
goes: peft's ``CAUSAL_LM``/``SEQ_2_SEQ_LM`` adapters, the LM head frozen. After training the
adapters are merged into the base (qlora: the dequantised base, as for task runs) and the
model is saved as a pretrained checkpoint: ``save_pretrained`` of the causal or seq2seq LM
(safetensors, in the checkpoint's dtype) and its tokenizer, so that every analysis loads it
as it loads a pretrained model.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from transformers import DataCollatorForSeq2Seq, PrinterCallback, set_seed

from bioprobe import methods
from bioprobe.errors import ConfigError
from bioprobe.io import atomic_path, write_json
from bioprobe.methods.base import LM_OBJECTIVES
from bioprobe.methods.instruction import refusal
from bioprobe.models import (
    ModelSpec,
    check_max_length,
    is_encoder_decoder_config,
    load_tokenizer_for,
    read_model_config,
)
from bioprobe.pipeline.oom import (
    cpu_micro_batches,
    explain_out_of_memory,
    finetune_advice,
    resume_key,
    training_for_attempt,
)
from bioprobe.prompting.run import uses_chat_template
from bioprobe.settings import TrainingSettings
from bioprobe.training.finetune import (
    RUNS_DIR,
    log_memory_plan,
    log_start,
    parameter_counts,
    peak_memory_mb,
    precision_flags,
    prepare_checkpoint_dir,
    run_fingerprint,
    training_arguments,
    training_half,
)
from bioprobe.training.progress import ProgressLogCallback
from bioprobe.training.resume import ResumableTrainer

log = logging.getLogger("bioprobe.train")

#: the label of a position the loss ignores (prompt and padding)
IGNORE = -100
#: the prompt of a tokenizer without a chat template (Alpaca's), and its form without input
PLAIN_TEMPLATE = "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
PLAIN_TEMPLATE_NO_INPUT = "### Instruction:\n{instruction}\n\n### Response:\n"
#: the method kinds instruction tuning trains with (the rest prepend virtual tokens to a task)
TUNING_KINDS = ("full", "lora", "qlora")
CAUSAL_LM, SEQ2SEQ_LM = tuple(LM_OBJECTIVES)
#: written next to the merged model: what was trained, on what, how
INFO_FILE = "instruction_tuning.json"


# --------------------------------------------------------------------------------------------
# which models


def lm_objective(model_config: Any, key: str = "models") -> str:
    """``causal-lm`` for a decoder, ``seq2seq-lm`` for an encoder-decoder; an encoder is a
    ConfigError naming `key`."""
    problem = refusal(model_config)
    if problem:
        raise ConfigError(problem, key)
    return SEQ2SEQ_LM if is_encoder_decoder_config(model_config) else CAUSAL_LM


# --------------------------------------------------------------------------------------------
# prompts and features


def use_chat_template(tokenizer: Any, setting: str, seq2seq: bool, key: str = "methods") -> bool:
    """Whether prompts go through the tokenizer's own chat template (`setting`: auto, always,
    never, as for prompting methods); where not, the tokenizer is given the plain one
    (:func:`plain_chat_template`). Returns True for the tokenizer's own."""
    if uses_chat_template(tokenizer, setting, key):
        return True
    tokenizer.chat_template = plain_chat_template(tokenizer, seq2seq)
    return False


def user_turn(record: Mapping[str, str], plain: bool) -> str:
    """The user's message: the instruction, and the input after a blank line (the plain
    template's ``### Input:`` block, `plain`)."""
    if not record["input"].strip():
        return record["instruction"]
    block = "### Input:\n" if plain else ""
    return f"{record['instruction']}\n\n{block}{record['input']}"


def prompt_text(record: Mapping[str, str], tokenizer: Any, plain: bool) -> str:
    """The prompt a record's response follows: its user turn through the tokenizer's chat
    template (:func:`use_chat_template` has set it), with the generation prompt."""
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": user_turn(record, plain)}],
        tokenize=False,
        add_generation_prompt=True,
    )


@dataclass
class InstructionFeatures:
    """The model inputs of a set of records, and what `max_length` cost them."""

    features: list[dict]
    #: records whose response was cut at max_length
    truncated: int = 0
    #: records left out: their prompt alone fills max_length
    dropped: int = 0

    def stats(self) -> dict[str, int]:
        return {"examples": len(self.features), "truncated": self.truncated,
                "dropped": self.dropped}  # fmt: skip


def _prompt_ids(text: str, tokenizer: Any, seq2seq: bool) -> list[int]:
    """The prompt's ids as prompting reads a chat prompt: the template writes its own special
    tokens; a decoder's prompt ends without end-of-sequence (the response continues it)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not seq2seq and len(ids) > 1 and ids[-1] == tokenizer.eos_token_id:
        ids = ids[:-1]
    return ids


def encode_record(
    record: Mapping[str, str], tokenizer: Any, *, seq2seq: bool, plain: bool, max_length: int
) -> tuple[dict | None, bool]:
    """One record's features (``input_ids``, ``attention_mask``, ``labels``, ``length``) and
    whether max_length cut its response; None where the prompt alone fills max_length.

    A decoder's labels are -100 on every prompt position and the response's ids after it; an
    encoder-decoder's input is the prompt and its labels the response. Prompt and response are
    tokenized apart, so the boundary is exact and generation from the prompt starts where
    training did.
    """
    eos = tokenizer.eos_token_id
    prompt = _prompt_ids(prompt_text(record, tokenizer, plain), tokenizer, seq2seq)
    response = tokenizer(record["output"], add_special_tokens=False)["input_ids"] + [eos]
    if seq2seq:
        cut = len(prompt) > max_length or len(response) > max_length
        if len(prompt) > max_length:  # the encoder's end-of-sequence kept at the end
            prompt = prompt[: max_length - 1] + prompt[-1:] if prompt[-1] == eos else prompt
            prompt = prompt[:max_length]
        return _feature(prompt, response[:max_length]), cut
    if len(prompt) >= max_length:
        return None, True
    ids = (prompt + response)[:max_length]
    labels = ([IGNORE] * len(prompt) + response)[:max_length]
    return _feature(ids, labels), len(prompt) + len(response) > max_length


def _feature(ids: list[int], labels: list[int]) -> dict:
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels,
            "length": len(ids)}  # fmt: skip


def build_instruction_features(
    records: Sequence[Mapping[str, str]],
    tokenizer: Any,
    *,
    seq2seq: bool,
    plain: bool,
    max_length: int,
) -> InstructionFeatures:
    """Every record's features (:func:`encode_record`); too long ones counted and logged.
    `plain`: the tokenizer's chat template is :func:`plain_chat_template`'s."""
    if tokenizer.eos_token_id is None:
        raise ConfigError(
            f"the tokenizer ({type(tokenizer).__name__}) has no end-of-sequence token: the "
            "response could not be taught to end",
            "models",
        )
    out = InstructionFeatures([])
    for record in records:
        feature, cut = encode_record(
            record, tokenizer, seq2seq=seq2seq, plain=plain, max_length=max_length
        )
        if feature is None:
            out.dropped += 1
            continue
        out.truncated += cut
        out.features.append(feature)
    if out.dropped or out.truncated:
        log.warning(
            "max_length=%d: %d of %d instructions left out (the prompt alone fills it), %d cut; "
            "raise training.max_length to keep them whole",
            max_length, out.dropped, len(records), out.truncated,
        )  # fmt: skip
    if not out.features:
        raise ConfigError(
            f"no instruction fits max_length {max_length}: every prompt fills it; raise it",
            "training.max_length",
        )
    return out


class InstructionCollator:
    """Dynamic padding with transformers' ``DataCollatorForSeq2Seq`` (inputs with the pad token,
    labels with -100) after dropping ``length`` (the length-grouped sampler's column)."""

    def __init__(self, tokenizer: Any, pad_to_multiple_of: int | None = None):
        self.pad = DataCollatorForSeq2Seq(
            tokenizer,
            label_pad_token_id=IGNORE,
            pad_to_multiple_of=pad_to_multiple_of,
            return_tensors="pt",
        )

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict:
        return self.pad([{k: v for k, v in f.items() if k != "length"} for f in features])


def instruction_collator(tokenizer: Any) -> InstructionCollator:
    """The training collator; batches padded to a multiple of 8 on a GPU (tensor cores)."""
    return InstructionCollator(tokenizer, 8 if torch.cuda.is_available() else None)


# --------------------------------------------------------------------------------------------
# the plain template as a chat template


def plain_chat_template(tokenizer: Any, seq2seq: bool) -> str:
    """A chat template that renders a user turn as ``### Instruction:\\n{content}\\n\\n`` and
    the generation prompt as ``### Response:\\n``: with :func:`user_turn`'s ``### Input:``
    block, :data:`PLAIN_TEMPLATE`. It writes the special tokens the tokenizer adds to a text
    (a decoder's BOS; an encoder-decoder's EOS at the end of the encoder's input), since chat
    prompts are tokenized without them."""
    prefix, suffix = _special_affixes(tokenizer)
    return (
        "{{- " + json.dumps(prefix) + " -}}"
        "{%- for message in messages -%}"
        "{%- if message['role'] == 'user' -%}"
        "{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}"
        "{%- elif message['role'] == 'assistant' -%}"
        "{{ '### Response:\\n' + message['content'] + eos_token + '\\n\\n' }}"
        "{%- else -%}{{ message['content'] + '\\n\\n' }}"
        "{%- endif -%}{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{ '### Response:\\n' }}{%- endif -%}"
        "{{- " + json.dumps(suffix if seq2seq else "") + " -}}"
    )


def _special_affixes(tokenizer: Any) -> tuple[str, str]:
    """The special tokens the tokenizer puts before and after a text, as text."""
    bare = tokenizer("x", add_special_tokens=False)["input_ids"]
    full = tokenizer("x")["input_ids"]
    start = next(
        (i for i in range(len(full) - len(bare) + 1) if full[i : i + len(bare)] == bare), 0
    )
    before, after = full[:start], full[start + len(bare) :]
    return "".join(tokenizer.convert_ids_to_tokens(before)), "".join(
        tokenizer.convert_ids_to_tokens(after)
    )


# --------------------------------------------------------------------------------------------
# the run


def instruction_tune(
    records: Sequence[Mapping[str, str]],
    *,
    spec: ModelSpec,
    location: str | Path,
    method: Mapping[str, Any] | None,
    training: TrainingSettings,
    out_dir: str | Path,
    checkpoint_dir: str | Path,
    seed: int,
    method_id: str | None = None,
    chat_template: str = "auto",
    attempt: int = 1,
) -> dict:
    """Instruction-tune the model at `location` on `records` (canonical records of
    :mod:`bioprobe.instructions.data`, already subsampled); save the merged model, tokenizer,
    :data:`INFO_FILE`, ``train_metrics.json`` and the Trainer's state to `out_dir`; return the
    metrics.

    `method`: a validated ``methods.<id>`` entry of kind full, lora or qlora (None: lora with
    its schema defaults); its learning rate, where set, overrides `training`'s. `chat_template`:
    auto (the tokenizer's where it has one), always or never. `attempt`: Snakemake's, for the
    out-of-memory retry's smaller batches. Checkpoints go to `checkpoint_dir` while it runs,
    guarded by a fingerprint of everything that defines the run, and a killed job resumes
    from its last complete one.
    """
    method = dict(method or methods.get("lora").defaults())
    key = f"methods.{method_id or method['kind']}"
    if method["kind"] not in TUNING_KINDS:
        raise ConfigError(
            f"instruction tuning trains with {', '.join(TUNING_KINDS)}, not {method['kind']}", key
        )
    if training.processes > 1:
        raise ConfigError("instruction tuning runs in one process: set it to 1",
                          "training.processes")  # fmt: skip
    location = str(location)
    config = read_model_config(spec, location) or {}
    objective = lm_objective(config, f"{spec.key}.source")
    seq2seq = objective == SEQ2SEQ_LM
    check_max_length(spec, training.max_length, location=location)
    training = methods.effective_training(training, method).replace(select_best=False)
    training = training_for_attempt(training, attempt)
    set_seed(seed)

    tokenizer = load_tokenizer_for(spec, location)
    chat = use_chat_template(tokenizer, chat_template, seq2seq, key)
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "right"
    built = build_instruction_features(
        records, tokenizer, seq2seq=seq2seq, plain=not chat, max_length=training.max_length
    )
    longest = max(f["length"] for f in built.features)
    if not torch.cuda.is_available():
        training = cpu_micro_batches(training, longest)

    checkpoint_dir = Path(checkpoint_dir)
    fingerprint = run_fingerprint(
        training=resume_key(training), seed=seed, model=location, method=method, chat=chat,
        records=_records_digest(records), objective=objective,
    )  # fmt: skip
    resume = prepare_checkpoint_dir(checkpoint_dir, fingerprint)
    model = methods.load_for_training(
        location, objective, (), spec=spec, method=method, max_length=training.max_length,
        method_id=method_id, half=training_half(training),
    )  # fmt: skip
    width = getattr(model.config, "hidden_size", None) or getattr(model.config, "d_model", None)
    args = training_arguments(training, seed, checkpoint_dir, objective, width, model)
    trainer = ResumableTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(built.features),
        data_collator=instruction_collator(tokenizer),
        processing_class=tokenizer,
        callbacks=[ProgressLogCallback()],
    )
    trainer.remove_callback(PrinterCallback)  # raw dicts on stdout; ProgressLogCallback says it
    # the loss is the mean over a micro-batch's response tokens, as every causal and seq2seq LM
    # of transformers computes it without `num_items_in_batch`; T5 takes **kwargs but ignores
    # it, so left True the Trainer would skip the division by the accumulation steps for T5
    # (see bioprobe.training.finetune._trainer)
    trainer.model_accepts_loss_kwargs = False
    log_start(trainer, args, training, method, len(built.features), "instruction tuning")
    log_memory_plan(trainer.model, args, training, method, longest)
    started = time.monotonic()
    with explain_out_of_memory(finetune_advice(training, attempt)):
        result = trainer.train(resume_from_checkpoint=resume)
    wall = time.monotonic() - started

    metrics = {
        "objective": objective,
        "chat_template": chat,
        "train_examples": len(built.features),
        "instructions": built.stats(),
        "seed": seed,
        "global_steps": result.global_step,
        "train_loss": float(result.training_loss),
        "logged_losses": _logged_losses(trainer),
        "train_runtime_s": wall,
        "train_samples_per_second": result.metrics.get("train_samples_per_second"),
        "resumed_from": Path(resume).name if resume else None,
        "attempt": attempt,
        "precision": {k: v for k, v in precision_flags(training.precision, width).items() if v}
        or "fp32",
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "method": dict(method),
        **parameter_counts(trainer.model),
        **peak_memory_mb(),
    }
    merged = _merged(trainer, method, objective, spec, location, checkpoint_dir, config)
    tokenizer.padding_side = padding_side
    info = {
        "base": location,
        "objective": objective,
        "method": dict(method),
        "method_id": method_id,
        "prompt": "the tokenizer's chat template" if chat else "the plain template",
        "instructions": len(records),
        "seed": seed,
        "training": training.as_dict(),
    }
    _save(out_dir, merged, tokenizer, trainer, info, metrics)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    log.info("saved the instruction-tuned model %s (%.1f s)", out_dir, wall)
    return metrics


def _records_digest(records: Sequence[Mapping[str, str]]) -> str:
    """The identity of the training records (their text and order), for the fingerprint."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps(record, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _logged_losses(trainer: Any) -> list[float]:
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def _merged(
    trainer: Any, method: Mapping[str, Any], objective: str, spec: ModelSpec, location: str,
    checkpoint_dir: Path, config: Mapping[str, Any],
) -> Any:  # fmt: skip
    """The trained model as a plain LM in the pretrained checkpoint's dtype. Adapters are saved
    and loaded back onto the base as task runs' are (`load_trained`: qlora's base dequantised
    first), then merged; full fine-tuning's model is the trained one."""
    dtype = getattr(torch, config.get("dtype") or config.get("torch_dtype") or "float32")
    model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    kind = methods.get(method["kind"])
    if not kind.is_adapter:
        return model.to(dtype).eval()
    adapters = checkpoint_dir / "adapters"
    model.save_pretrained(adapters)
    del model  # the trained copy, freed before the base is loaded again for the merge
    trainer.accelerator.free_memory()
    trainer.model = trainer.model_wrapped = trainer.optimizer = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    merged, _ = kind.load_trained(
        str(adapters), objective, (), method, spec=spec, base_location=location, dtype=dtype
    )
    return merged


def _save(out_dir, model, tokenizer, trainer, info: dict, metrics: dict) -> None:
    """The merged model as a pretrained checkpoint (safetensors, config, generation config,
    tokenizer), with what trained it, moved into place whole."""
    with atomic_path(out_dir, is_dir=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        trainer.state.save_to_json(str(tmp / "trainer_state.json"))
        runs = Path(trainer.args.output_dir) / RUNS_DIR
        if runs.is_dir():
            shutil.copytree(runs, tmp / RUNS_DIR)
        write_json(tmp / INFO_FILE, info)
        write_json(tmp / "train_metrics.json", metrics)
        for pickled in (*tmp.glob("*.bin"), *tmp.glob("*.pt")):
            pickled.unlink()
