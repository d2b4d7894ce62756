"""Dumps: one forward pass per variant over all its splits, all hidden states pooled to the
probing unit, and attention maps of a capped set of analysis examples, written streaming to .npy
files.

Layout of a variant's dump directory:

- ``{split}.hidden.npy`` [L+1, units, H] (NER: one row per kept word; pairs: ``joint`` mode)
- ``{split}.separate.npy`` [L+1, units, 2H] (pairs only: premise and hypothesis encoded apart)
- ``{split}.units.json`` the unit labels, sentence lengths (NER), word types and example ids
- ``attention.npy`` flat float array: per analysis example its [L, heads, T, T] map, trimmed to
  the real tokens; ``meta.json`` holds the lengths (offsets follow from them) and the T token
  strings of each example, in order (what the maps' rows and columns are)
- ``meta.json`` what produced the dump (model source, variant, layer count, pooling, dtype)

Prompt-tuning and P-tuning models see `virtual_tokens` trained embeddings before the real
tokens. Dumps keep the real tokens only, so every variant has the same units and maps: the
virtual positions are cut from the hidden states, and from the attention maps' rows and
columns, each row then renormalised over the real tokens (`real_tokens_only`).

An encoder–decoder (T5, FLAN-T5, UL2) is analysed through its encoder stack alone: layer 0 is the
embeddings and layer l the encoder's block l (`forward` runs the encoder, never the decoder), so
``n_layers`` counts encoder layers and every table keeps one row per layer, as for the other
families. The decoder reads a target sequence that classification does not have: a T5's
sequence head feeds it the input shifted right and reads its state at the last eos, while
T5's token head has no decoder at all; the encoder is the part every task uses alike.

Examples of all splits are processed together in length-sorted batches (little padding) but written
back to their split in its original order, so every variant of a model has the same unit at the
same row. Batches run longest first: the first batch sets the peak memory (and runs out of it at
once, not an hour in), and later batches reuse it: peak memory stays flat (bench/RESULTS.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from bioprobe import tasks
from bioprobe.analysis.dumpio import (
    ATTENTION,
    META,
    AttentionWriter,
    NpyWriter,
    features_name,
    units_file,
)
from bioprobe.errors import ConfigError
from bioprobe.io import atomic_path, write_json
from bioprobe.methods import load_trained
from bioprobe.models import (
    is_decoder_config,
    load_tokenizer_for,
    random_init_like,
)
from bioprobe.pipeline.grid import RANDOM_INIT
from bioprobe.pipeline.jobs import JobContext
from bioprobe.pipeline.oom import batch_for_attempt, explain_out_of_memory, extract_advice
from bioprobe.progress import Progress
from bioprobe.seeding import derive_seed
from bioprobe.settings import DumpSettings

log = logging.getLogger("bioprobe.extract")


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pad(tokenizer, encodings: Sequence) -> dict[str, torch.Tensor]:
    """A dump batch of encodings (the task type's, as for its training features): each
    example's ``tokenization.model_inputs`` — the inputs fine-tuning and scoring collate, token
    types included where the model has them — right-padded as the training collator pads them
    (pad id, attention 0, the tokenizer's pad token type; pooling assumes right padding)."""
    from bioprobe.errors import BioprobeError
    from bioprobe.tokenization import model_inputs

    inputs = [model_inputs(e) for e in encodings]
    keys = list(inputs[0])
    if any(list(x) != keys for x in inputs):
        raise BioprobeError("a dump batch mixes encodings with and without token types")
    width = max(len(x["input_ids"]) for x in inputs)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    fill = {
        "input_ids": pad_id,
        "attention_mask": 0,
        "token_type_ids": getattr(tokenizer, "pad_token_type_id", 0) or 0,
    }
    batch = {}
    for key in keys:
        t = torch.full((len(inputs), width), fill[key], dtype=torch.long)
        for row, x in enumerate(inputs):
            t[row, : len(x[key])] = torch.tensor(x[key], dtype=torch.long)
        batch[key] = t
    return batch


def real_tokens_only(hidden: torch.Tensor, attentions, virtual: int):
    """Cut `virtual` leading positions: hidden [L+1, B, V+T, H] -> [L+1, B, T, H]; attention
    maps [B, heads, V+T, V+T] -> [B, heads, T, T], each row renormalised to sum to 1 over the
    real tokens (the attention real tokens paid the prompt is left out, not spread)."""
    if not virtual:
        return hidden, attentions
    hidden = hidden[..., virtual:, :]
    if attentions is not None:
        cut = (a[..., virtual:, virtual:] for a in attentions)
        attentions = tuple(a / a.sum(-1, keepdim=True).clamp_min(1e-12) for a in cut)
    return hidden, attentions


def _set_attention(model, maps: bool) -> None:
    """Eager attention for the batches whose maps are kept (SDPA returns none), SDPA for the
    rest where the architecture has it: the same hidden states, computed faster."""
    want = "eager" if maps else "sdpa"
    config = getattr(model, "config", None)
    if config is None or getattr(config, "_attn_implementation", want) == want:
        return
    if not maps and not getattr(model, "_supports_sdpa", False):
        return
    try:
        model.set_attn_implementation(want)
    except (AttributeError, ImportError, ValueError):  # stays on the implementation it has
        log.debug("attention implementation stays %s", config._attn_implementation)


def is_encoder_decoder(model) -> bool:
    """Whether `model` has a decoder stack beside its encoder (T5's sequence head; T5's token
    head is an encoder alone, and says so in its config)."""
    return bool(getattr(model.config, "is_encoder_decoder", False))


def kept_layers(layers: int | Sequence[int] | None, n_layers: int) -> list[int]:
    """The hidden-state layers a dump keeps (`extract.layers`), of 0 (the embeddings) .. L:
    all (None); every k-th from 0 and the last (an integer k); or the layers listed."""
    if layers is None:
        return list(range(n_layers + 1))
    if isinstance(layers, int):
        return sorted({*range(0, n_layers + 1, layers), n_layers})
    beyond = [layer for layer in layers if layer > n_layers]
    if beyond:
        raise ConfigError(
            f"layer {beyond[0]} is past the model's last layer ({n_layers}: layers are 0, the "
            f"embeddings, to {n_layers})",
            "extract.layers",
        )
    return sorted(set(layers))


@torch.inference_mode()
def forward(
    model,
    batch: dict[str, torch.Tensor],
    attentions: bool,
    virtual: int = 0,
    layers: int | Sequence[int] | None = None,
):
    """Hidden states [kept layers, B, T, H] (float32; `kept_layers`, default all L+1) and
    attention maps (all L) of one batch; an encoder–decoder runs its encoder alone (the stack
    the analysis reads)."""
    _set_attention(model, attentions)
    dev = _device()
    stack = model.get_encoder() if is_encoder_decoder(model) else model
    out = stack(
        **{k: v.to(dev) for k, v in batch.items()},
        output_hidden_states=True,
        output_attentions=attentions,
    )
    keep = kept_layers(layers, len(out.hidden_states) - 1)
    hidden = torch.stack([out.hidden_states[i] for i in keep]).float()  # [kept, B, T, H]
    return real_tokens_only(hidden, out.attentions, virtual)


#: the largest float16 magnitude: beyond it a value is stored as infinity
FLOAT16_MAX = 65504.0


def as_dump_dtype(t: torch.Tensor, dtype: str) -> np.ndarray:
    """A batch's vectors in the dump's dtype, converted once (by torch: faster than numpy).
    A float16 dump refuses values it cannot hold (some large decoders' residual streams carry
    activations in the tens of thousands) rather than storing infinities."""
    if dtype == "float16" and t.numel() and float(t.abs().max()) > FLOAT16_MAX:
        raise ConfigError(
            f"a hidden state of {float(t.abs().max()):.0f} does not fit float16 (at most "
            f"{FLOAT16_MAX:.0f}): dump this model in float32",
            "extract.dtype",
        )
    return t.to(device="cpu", dtype=getattr(torch, dtype)).numpy()


#: The attention set batches at most this many at a time: its examples span the whole length
#: range, and one batch of 32 padded to its longest did 1.7x the work of four sorted batches of 8.
ATTENTION_BATCH = 8


def _batches(lengths: Sequence[int], batch_size: int, first: int) -> list[list[int]]:
    """Length-sorted batches, longest first; the first `first` examples (the attention set)
    batch apart, before the rest, at most `ATTENTION_BATCH` a batch."""
    out = []
    for group, size in (
        (range(first), min(batch_size, ATTENTION_BATCH)),
        (range(first, len(lengths)), batch_size),
    ):
        ordered = sorted(group, key=lambda i: (-lengths[i], i))
        out += [ordered[i : i + size] for i in range(0, len(ordered), size)]
    return out


def _examples(sizes: dict[str, int], attention_split: str, n_attn: int) -> list[tuple[str, int]]:
    """Every split's examples as (split, index), in one list that batches as a whole (fewer,
    fuller and more evenly long batches than split by split: NER dumps 9 % faster); the
    attention set, the first `n_attn` examples of `attention_split`, comes first."""
    head = [(attention_split, i) for i in range(n_attn)]
    rest = [
        (name, i)
        for name, n in sizes.items()
        for i in range(n)
        if not (name == attention_split and i < n_attn)
    ]
    return head + rest


def _model_shape(model) -> tuple[int, int, int]:
    # T5's config maps these names to its encoder's num_layers, num_heads and d_model
    cfg = model.config
    layers = getattr(cfg, "num_hidden_layers", None) or cfg.n_layer
    heads = getattr(cfg, "num_attention_heads", None) or cfg.n_head
    hidden = getattr(cfg, "hidden_size", None) or cfg.n_embd
    return int(layers), int(heads), int(hidden)


@dataclass(frozen=True)
class AttentionSet:
    """The analysis examples whose maps a dump keeps: per example its number of real tokens
    and their ids, in order (what the rows and columns of its maps are)."""

    lengths: list[int]
    token_ids: list[list[int]]


class Stream:
    """One forward stream over all splits of a variant: the examples in batch order, a writer
    per (split, file), the attention sink; everything closed together."""

    def __init__(self, model, out: Path, s: DumpSettings, lengths: dict[str, list[int]]):
        self.n_layers, self.n_heads, self.hidden = _model_shape(model)
        #: the hidden-state layers written (`extract.layers`): the dumps' first axis
        self.layers = kept_layers(s.layers, self.n_layers)
        #: sentence vectors pool as an encoder–decoder's (`pooling.sentence_pooling`)
        self.encoder_decoder = is_encoder_decoder(model)
        self.out, self.s = out, s
        self.n_attn = min(s.attention_max_examples, len(lengths.get(s.attention_split, ())))
        self.attn_lengths = lengths[s.attention_split][: self.n_attn] if self.n_attn else []
        self.items = _examples(
            {k: len(v) for k, v in lengths.items()}, s.attention_split, self.n_attn
        )
        self.lengths = [lengths[name][i] for name, i in self.items]
        self.writers: dict[tuple[str, str], NpyWriter] = {}
        self.attn_ids: list[list[int] | None] = [None] * self.n_attn
        self.sink = None
        if self.n_attn:
            self.sink = AttentionWriter(
                out / ATTENTION, self.attn_lengths, self.n_layers, self.n_heads, s.dtype
            )

    def writer(self, split: str, file: str, rows: int, width: int) -> None:
        self.writers[split, file] = NpyWriter(
            self.out / features_name(split, file),
            (len(self.layers), rows, width),
            self.s.dtype,
            axis=1,
        )

    def batches(self):
        """Yield (batch of (split, index), whether its attention maps are kept)."""
        progress = Progress(len(self.items), "forward", log, "examples")
        for ids in _batches(self.lengths, self.s.batch_size, self.n_attn):
            yield [self.items[j] for j in ids], ids[0] < self.n_attn
            progress.advance(len(ids))

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc) -> None:
        for w in self.writers.values():
            w.close()
        if self.sink is not None:
            self.sink.close()

    def attention(self, index: int, row: int, attn, input_ids: torch.Tensor) -> None:
        """Attention example `index`: its maps, row `row` of the batch's `attn`, and its token
        ids. Batches are right-padded (`pad`) and a prompt method's virtual tokens are no
        input ids, so the row's first T ids are exactly the T real tokens of the maps."""
        self.sink.write(index, torch.stack([a[row] for a in attn]))
        self.attn_ids[index] = input_ids[row, : self.attn_lengths[index]].tolist()

    def attention_set(self) -> AttentionSet:
        """The attention examples written, with their token ids (call after the stream)."""
        missing = [i for i, ids in enumerate(self.attn_ids) if ids is None]
        if missing:  # a task type's dump skipped examples of the attention set
            raise RuntimeError(f"attention examples {missing} were never written")
        return AttentionSet(list(self.attn_lengths), list(self.attn_ids))


def extract(
    *,
    model,
    tokenizer,
    task_type: str,
    splits: dict[str, list[dict]],
    settings: DumpSettings,
    out_dir: str | Path,
    provenance: dict,
) -> dict:
    """Dump every split of `splits` for one variant into `out_dir` (written atomically)."""
    model.eval().to(_device())
    n_layers, n_heads, hidden = _model_shape(model)
    is_decoder = bool(provenance.get("is_decoder"))
    meta = {
        **provenance,
        "n_layers": n_layers,
        "num_heads": n_heads,
        "hidden_size": hidden,
        # the hidden-state layers kept, in the order of the dumps' first axis
        "layers": kept_layers(settings.layers, n_layers),
        "settings": asdict(settings),
        "splits": {},
    }
    with atomic_path(out_dir, is_dir=True) as tmp:
        results, attn = tasks.get(task_type).dump(
            model, tokenizer, splits, tmp, settings, is_decoder
        )
        for split, (units, stats) in results.items():
            write_json(tmp / units_file(split), units)
            meta["splits"][split] = stats
            log.info("%s: %s", split, stats)
        if attn.lengths:
            meta["attention"] = {
                "split": settings.attention_split,
                "n_examples": len(attn.lengths),
                "lengths": attn.lengths,
                "tokens": [tokenizer.convert_ids_to_tokens(ids) for ids in attn.token_ids],
            }
        write_json(tmp / META, meta)
    return meta


def dump_variant(
    job: JobContext, *, variant: str, settings: DumpSettings, out_dir: str | Path
) -> dict:
    """Load one variant of `job`'s model (pretrained, random-init or fine-tuned, with its
    adapters on `job.base_location`) with eager attention and dump it. A retry after running
    out of memory (`job.attempt` > 1) halves the batch size per attempt."""
    # past the model's positions the forward pass fails at the first sentence that long
    where = job.base_location or job.location  # an adapter run's config is its base's
    job.check_max_length(settings.max_length, location=where)
    task = job.task()
    tokenizer = load_tokenizer_for(job.spec)
    model, settings = _load_variant(job, task, variant, settings, tokenizer)
    provenance = {
        "model_id": job.spec.model_id,
        "model_source": job.spec.source,
        "model_location": job.location,
        "variant": variant,
        "seed": job.seed,
        "is_decoder": is_decoder_config(model.config),
        "task_type": task.task_type,
    }
    splits = {name: task.split(name) for name in settings.splits}
    if settings.max_units is not None:
        unit_count = _unit_counter(task.task_type)
        splits = {n: cap_units(r, settings.max_units, unit_count, n) for n, r in splits.items()}
    settings = replace(settings, batch_size=batch_for_attempt(settings.batch_size, job.attempt))
    with explain_out_of_memory(extract_advice(settings.batch_size, job.attempt)):
        return extract(
            model=model,
            tokenizer=tokenizer,
            task_type=task.task_type,
            splits=splits,
            settings=settings,
            out_dir=out_dir,
            provenance=provenance,
        )


#: the fixed seed of `extract.max_units`' draw: every variant, seed and model of a task
#: analyses the same examples (the draw reads words, not tokens)
MAX_UNITS_SEED = 0


def _unit_counter(task_type: str):
    """Units an example gives the probes: its words (token tasks) or one."""
    if tasks.get(task_type).token_labels:
        return lambda record: len(record["tokens"])
    return lambda record: 1


def cap_units(records: list[dict], max_units: int, unit_count, split: str) -> list[dict]:
    """A seeded sample of whole examples holding at most `max_units` probing units (words or
    examples), in their split order; all of them where they fit. The draw depends on the split
    and its records alone, so every variant of every model keeps the same units."""
    total = sum(unit_count(r) for r in records)
    if total <= max_units:
        return records
    order = np.random.default_rng(derive_seed(f"max_units:{split}", MAX_UNITS_SEED)).permutation(
        len(records)
    )
    kept, units = [], 0
    for i in order:
        n = unit_count(records[i])
        if units + n > max_units:
            continue  # a shorter example further on may still fit
        kept.append(int(i))
        units += n
    log.info(
        "extract.max_units: %s keeps %d of %d examples, %d of %d units",
        split, len(kept), len(records), units, total,
    )  # fmt: skip
    return [records[i] for i in sorted(kept)]


def _load_variant(job: JobContext, task, variant: str, settings: DumpSettings, tokenizer):
    """The variant's model, and the settings with its leading virtual tokens."""
    # eager attention: with SDPA, transformers returns no attention maps
    kwargs = {"spec": job.spec, "attn_implementation": "eager", "tokenizer": tokenizer}
    if variant == RANDOM_INIT:
        model = random_init_like(job.location, task.task_type, task.labels, seed=job.seed, **kwargs)
        return model, settings
    model, virtual = load_trained(
        job.location, task.task_type, task.labels, base_location=job.base_location, **kwargs
    )
    return model, replace(settings, virtual_tokens=virtual)
