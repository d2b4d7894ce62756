"""Dumps: one forward pass per variant over all its splits, all hidden states pooled to the
probing unit, and attention maps of a capped set of analysis examples, written streaming to .npy
files.

Layout of a variant's dump directory:

- ``{split}.hidden.npy`` [L+1, units, H] (NER: one row per kept word; pairs: ``joint`` mode)
- ``{split}.separate.npy`` [L+1, units, 2H] (pairs only: premise and hypothesis encoded apart)
- ``{split}.units.json`` the unit labels, sentence lengths (NER), word types and example ids
- ``attention.npy`` flat float array: per analysis example its [L, heads, T, T] map, trimmed to
  the real tokens; ``meta.json`` holds the lengths (offsets follow from them)
- ``meta.json`` what produced the dump (model source, variant, layer count, pooling, dtype)

Prompt-tuning and P-tuning models see `virtual_tokens` trained embeddings before the real
tokens. Dumps keep the real tokens only, so every variant has the same units and maps: the
virtual positions are cut from the hidden states, and from the attention maps' rows and
columns, each row then renormalised over the real tokens (`real_tokens_only`).

Examples of all splits are processed together in length-sorted batches (little padding) but written
back to their split in its original order, so every variant of a model has the same unit at the
same row. Batches run longest first: the first batch sets the peak memory (and runs out of it at
once, not an hour in), and every later batch's tensors fit into memory the allocator already holds.
In ascending order each batch outgrows the last: glibc's heap fragments and peak RSS grew 19 % from
250 to 1000 MiniLM sentences; longest first it stays flat (-4 %), with no allocator setting to pay
for (pinning glibc's mmap threshold also kept it flat, but made every big tensor a fresh mmap: the
dumps took 1.3-1.5x as long).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from bioprobe.analysis.dumpio import NpyWriter
from bioprobe.analysis.pooling import masked_mean, pool_pair_joint, word_pool
from bioprobe.io import atomic_path, write_json
from bioprobe.oom import batch_for_attempt, explain_out_of_memory, extract_advice
from bioprobe.progress import Progress
from bioprobe.tokenization import encode_pair, encode_text, encode_words

log = logging.getLogger("bioprobe.extract")


@dataclass(frozen=True)
class DumpSettings:
    word_pooling: str = "mean"  # first | mean | last sub-token of each word
    joint_pooling: str = "auto"  # cls (encoders) / last non-pad (decoders) | cls | last | mean
    pair_modes: tuple[str, ...] = ("separate", "joint")
    dtype: str = "float16"
    batch_size: int = 32
    max_length: int = 128
    pair_truncation: str = "longest_first"
    splits: tuple[str, ...] = ("validation", "test")
    attention_split: str = "test"
    attention_max_examples: int = 64
    virtual_tokens: int = 0  # prompt methods: leading positions that are not real tokens


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _pad(tokenizer, encodings: Sequence[dict]) -> dict[str, torch.Tensor]:
    """Right-pad a batch of encodings (pooling assumes right padding)."""
    width = max(len(e["input_ids"]) for e in encodings)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(encodings), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(encodings), width), dtype=torch.long)
    for row, enc in enumerate(encodings):
        n = len(enc["input_ids"])
        ids[row, :n] = torch.tensor(enc["input_ids"])
        mask[row, :n] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    if all("token_type_ids" in e for e in encodings):
        types = torch.zeros_like(ids)
        for row, enc in enumerate(encodings):
            types[row, : len(enc["token_type_ids"])] = torch.tensor(enc["token_type_ids"])
        batch["token_type_ids"] = types
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


@torch.inference_mode()
def _forward(model, batch: dict[str, torch.Tensor], attentions: bool, virtual: int = 0):
    _set_attention(model, attentions)
    dev = _device()
    out = model(
        **{k: v.to(dev) for k, v in batch.items()},
        output_hidden_states=True,
        output_attentions=attentions,
    )
    hidden = torch.stack(out.hidden_states).float()  # [L+1, B, T, H]
    return real_tokens_only(hidden, out.attentions, virtual)


def _as_dump_dtype(t: torch.Tensor, dtype: str) -> np.ndarray:
    """A batch's vectors in the dump's dtype, converted once (by torch: faster than numpy)."""
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


class _AttentionSink:
    """Writes trimmed attention maps of the analysis examples into one flat array."""

    def __init__(self, path: Path, lengths: list[int], n_layers: int, n_heads: int, dtype: str):
        self.block = [n_layers * n_heads * t * t for t in lengths]
        self.offsets = np.concatenate([[0], np.cumsum(self.block)]).astype(np.int64)
        self.writer = NpyWriter(path, (int(self.offsets[-1]),), dtype)
        self.lengths = lengths

    def write(self, index: int, maps: torch.Tensor) -> None:
        t = self.lengths[index]
        block = maps[:, :, :t, :t].float().cpu().numpy().ravel()
        self.writer.write(int(self.offsets[index]), block)

    def close(self) -> None:
        self.writer.close()


def _model_shape(model) -> tuple[int, int, int]:
    cfg = model.config
    layers = getattr(cfg, "num_hidden_layers", None) or cfg.n_layer
    heads = getattr(cfg, "num_attention_heads", None) or cfg.n_head
    hidden = getattr(cfg, "hidden_size", None) or cfg.n_embd
    return int(layers), int(heads), int(hidden)


class _Stream:
    """One forward stream over all splits of a variant: the examples in batch order, a writer
    per (split, file), the attention sink; everything closed together."""

    def __init__(self, model, out: Path, s: DumpSettings, lengths: dict[str, list[int]]):
        self.n_layers, self.n_heads, self.hidden = _model_shape(model)
        self.out, self.s = out, s
        self.n_attn = min(s.attention_max_examples, len(lengths.get(s.attention_split, ())))
        self.attn_lengths = lengths[s.attention_split][: self.n_attn] if self.n_attn else []
        self.items = _examples(
            {k: len(v) for k, v in lengths.items()}, s.attention_split, self.n_attn
        )
        self.lengths = [lengths[name][i] for name, i in self.items]
        self.writers: dict[tuple[str, str], NpyWriter] = {}
        self.sink = None
        if self.n_attn:
            self.sink = _AttentionSink(
                out / "attention.npy", self.attn_lengths, self.n_layers, self.n_heads, s.dtype
            )

    def writer(self, split: str, file: str, rows: int, width: int) -> None:
        self.writers[split, file] = NpyWriter(
            self.out / f"{split}.{file}.npy",
            (self.n_layers + 1, rows, width),
            self.s.dtype,
            axis=1,
        )

    def batches(self):
        """Yield (batch of (split, index), whether its attention maps are kept)."""
        progress = Progress(len(self.items), "forward", log, "examples")
        for ids in _batches(self.lengths, self.s.batch_size, self.n_attn):
            yield [self.items[j] for j in ids], ids[0] < self.n_attn
            progress.advance(len(ids))

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc) -> None:
        for w in self.writers.values():
            w.close()
        if self.sink is not None:
            self.sink.close()

    def attention(self, index: int, row: int, attn) -> None:
        self.sink.write(index, torch.stack([a[row] for a in attn]))


def _dump_ner(model, tokenizer, splits: dict[str, list[dict]], out: Path, s: DumpSettings):
    encs = {
        name: [encode_words(tokenizer, r["tokens"], s.max_length) for r in records]
        for name, records in splits.items()
    }
    starts = {  # each sentence's first row in its split's dump
        name: np.concatenate([[0], np.cumsum([e.n_words for e in es])]).astype(np.int64)
        for name, es in encs.items()
    }
    lengths = {name: [len(e.input_ids) for e in es] for name, es in encs.items()}
    with _Stream(model, out, s, lengths) as stream:
        for name in encs:
            stream.writer(name, "hidden", int(starts[name][-1]), stream.hidden)
        for batch_items, maps in stream.batches():
            batch_encs = [encs[name][i] for name, i in batch_items]
            batch = _pad(tokenizer, [{"input_ids": e.input_ids} for e in batch_encs])
            hidden_states, attn = _forward(model, batch, maps, s.virtual_tokens)
            word_index = torch.full(batch["input_ids"].shape, -1, dtype=torch.long)
            for row, e in enumerate(batch_encs):
                word_index[row, : len(e.word_index)] = torch.tensor(e.word_index)
            pooled = word_pool(
                hidden_states.cpu(),
                word_index,
                [e.n_words for e in batch_encs],
                mode=s.word_pooling,
            )
            vectors = _as_dump_dtype(pooled.vectors, s.dtype)
            for row, (name, i) in enumerate(batch_items):
                lo, hi = int(pooled.offsets[row]), int(pooled.offsets[row + 1])
                stream.writers[name, "hidden"].write(int(starts[name][i]), vectors[:, lo:hi])
                if maps and attn is not None:
                    stream.attention(i, row, attn)
    results = {}
    for name, records in splits.items():
        n_words = [e.n_words for e in encs[name]]
        units = {
            "ids": [r["id"] for r in records],
            "sentence_lengths": n_words,
            "labels": [t for r, n in zip(records, n_words, strict=True) for t in r["tags"][:n]],
            "word_types": [
                w.lower() for r, n in zip(records, n_words, strict=True) for w in r["tokens"][:n]
            ],
        }
        stats = {
            "examples": len(records),
            "units": int(starts[name][-1]),
            "truncated_examples": sum(e.truncated_words > 0 for e in encs[name]),
            "truncated_words": sum(e.truncated_words for e in encs[name]),
        }
        results[name] = (units, stats)
    return results, stream.attn_lengths


def _dump_pairs(
    model, tokenizer, splits: dict[str, list[dict]], out: Path, s: DumpSettings, is_decoder: bool
):
    joint = {
        name: [
            encode_pair(tokenizer, r["text_a"], r["text_b"], s.max_length, s.pair_truncation)
            for r in records
        ]
        for name, records in splits.items()
    }
    lengths = {name: [len(e["input_ids"]) for e in es] for name, es in joint.items()}
    with _Stream(model, out, s, lengths) as stream:
        segments = {}
        for name, records in splits.items():
            if "joint" in s.pair_modes:
                stream.writer(name, "hidden", len(records), stream.hidden)
            if "separate" in s.pair_modes:
                stream.writer(name, "separate", len(records), 2 * stream.hidden)
                segments[name] = [
                    [encode_text(tokenizer, r[key], s.max_length) for key in ("text_a", "text_b")]
                    for r in records
                ]
        for batch_items, maps in stream.batches():
            if "joint" in s.pair_modes or maps:
                batch = _pad(tokenizer, [joint[name][i] for name, i in batch_items])
                hs, attn = _forward(model, batch, maps, s.virtual_tokens)
                mask = batch["attention_mask"].to(hs.device)
                vec = _as_dump_dtype(
                    pool_pair_joint(hs, mask, s.joint_pooling, is_decoder), s.dtype
                )
                for row, (name, i) in enumerate(batch_items):
                    if "joint" in s.pair_modes:
                        stream.writers[name, "hidden"].write(i, vec[:, row : row + 1])
                    if maps:
                        stream.attention(i, row, attn)
            if "separate" in s.pair_modes:
                means = []
                for side in (0, 1):
                    batch = _pad(tokenizer, [segments[name][i][side] for name, i in batch_items])
                    hs, _ = _forward(model, batch, False, s.virtual_tokens)
                    means.append(masked_mean(hs, batch["attention_mask"].to(hs.device)))
                vec = _as_dump_dtype(torch.cat(means, dim=-1), s.dtype)
                for row, (name, i) in enumerate(batch_items):
                    stream.writers[name, "separate"].write(i, vec[:, row : row + 1])
    results = {}
    for name, records in splits.items():
        units = {"ids": [r["id"] for r in records], "labels": [r["label"] for r in records]}
        stats = {
            "examples": len(records),
            "units": len(records),
            "truncated_examples": sum(e["truncated_tokens"] > 0 for e in joint[name]),
        }
        results[name] = (units, stats)
    return results, stream.attn_lengths


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
        "settings": asdict(settings),
        "splits": {},
    }
    with atomic_path(out_dir, is_dir=True) as tmp:
        if task_type == "ner":
            results, attn = _dump_ner(model, tokenizer, splits, tmp, settings)
        else:
            results, attn = _dump_pairs(model, tokenizer, splits, tmp, settings, is_decoder)
        for split, (units, stats) in results.items():
            write_json(tmp / f"{split}.units.json", units)
            meta["splits"][split] = stats
            log.info("%s: %s", split, stats)
        if attn:
            meta["attention"] = {
                "split": settings.attention_split,
                "n_examples": len(attn),
                "lengths": attn,
            }
        write_json(tmp / "meta.json", meta)
    return meta


def dump_variant(
    *,
    task_dir: str | Path,
    method: str,
    seed: int,
    model_location: str,
    spec,
    settings: DumpSettings,
    out_dir: str | Path,
    base_location: str | None = None,
    attempt: int = 1,
) -> dict:
    """Load one variant (pretrained, random-init or fine-tuned) with eager attention and dump it.

    `base_location`: the pretrained model that a fine-tuned variant's adapters apply to.
    `attempt` > 1 (a retry after running out of memory) halves the batch size per attempt.
    """
    from bioprobe.grid import RANDOM_INIT
    from bioprobe.methods import load_trained
    from bioprobe.models import is_decoder_config, load_tokenizer_for, random_init_like
    from bioprobe.training.task_data import TaskData

    task = TaskData(task_dir)
    tokenizer = load_tokenizer_for(spec, model_location)
    # eager attention: with SDPA, transformers returns no attention maps
    kwargs = {"spec": spec, "attn_implementation": "eager", "tokenizer": tokenizer}
    if method == RANDOM_INIT:
        model = random_init_like(model_location, task.task_type, task.labels, seed=seed, **kwargs)
    else:
        model, virtual = load_trained(
            model_location, task.task_type, task.labels, base_location=base_location, **kwargs
        )
        settings = replace(settings, virtual_tokens=virtual)
    provenance = {
        "model_id": spec.model_id,
        "model_source": spec.source,
        "model_location": str(model_location),
        "variant": method,
        "seed": seed,
        "is_decoder": is_decoder_config(model.config),
        "task_type": task.task_type,
    }
    splits = {name: task.split(name) for name in settings.splits}
    settings = replace(settings, batch_size=batch_for_attempt(settings.batch_size, attempt))
    with explain_out_of_memory(extract_advice(settings.batch_size, attempt)):
        return extract(
            model=model,
            tokenizer=tokenizer,
            task_type=task.task_type,
            splits=splits,
            settings=settings,
            out_dir=out_dir,
            provenance=provenance,
        )
