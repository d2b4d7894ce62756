"""Causal erasure (amnesic probing, Elazar et al. 2021, with LEACE, Belrose et al. 2023): does
a fine-tuned model *use* what a probe finds in a layer?

For each layer, a LEACE eraser (the `concept-erasure` package) is fitted on the fit split's
hidden states at that layer against the task's labels: the least-squares affine edit after which
no linear classifier does better than a constant one. The test split is then run with the
layer's states erased at every position and the rest of the model on top; the drop of the task
score from the unerased one says how much the model relies on that linearly decodable
information there. Control: erasing a random subspace of the same rank (the same affine form,
a random orthonormal basis), which separates "the model needs this property" from "the model
breaks when anything of that size is removed".

Where a layer is read and edited (`site`): site 0 is the input of the first transformer block
(the embeddings), site l the output of block l (the residual stream, `hidden_states[l]` of the
dumps; for decoders the last site is before the final norm). The fitted units are the ones the
head reads: the labelled word positions (their first sub-token) for token tasks, the head's
token for sequence tasks ([CLS] for encoders, the last real token for decoders). Concepts:
one-hot classes, the multi-hot label set (multi-label) or the score (similarity).

An encoder–decoder (T5) is erased in its encoder stack, the stack the dumps read: the sites are
the encoder's, and the decoder and the head run on top of the edited encoder as they were
trained. Its sequence head reads the decoder, which has no site here: a sequence task fits the
erasers on the masked mean of the encoder's states (`pooling.sentence_pooling`, the dumps'
sentence vector). LEACE is affine, so erasing every position erases that mean too.

Speed: per test batch, one clean forward pass keeps every block's output; the erased pass for
site l then replays blocks 0..l-1 from that cache (their `forward` returns the cached output, the
last one erased) and computes only blocks l+1.. on top. Over all sites and both erasers a batch
costs about L+1 forward passes, not 2(L+1) — at most one forward pass of the test split per layer
(bench/RESULTS.md).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from concept_erasure import LeaceEraser, LeaceFitter
from torch import nn

from bioprobe import tasks
from bioprobe.analysis.pooling import last_token, masked_mean, sentence_pooling
from bioprobe.data.task_data import TaskData
from bioprobe.models import is_decoder_config
from bioprobe.progress import Progress
from bioprobe.settings import ErasureSettings, TrainingSettings
from bioprobe.training.evaluate import device, score_split, sorted_batches
from bioprobe.training.features import build_features

log = logging.getLogger("bioprobe.erasure")

__all__ = [
    "ERASERS",
    "Erasers",
    "erasure_rows",
    "fit_erasers",
    "random_eraser",
    "transformer_blocks",
]

#: the erasure targets: the task's labels (LEACE) and a random subspace of the same rank
ERASERS = ("task", "control")


def transformer_blocks(model: nn.Module) -> nn.ModuleList:
    """The model's stack of transformer blocks (BERT `encoder.layer`, GPT-2 `h`, BioGPT and
    LLaMA `layers`, T5 `encoder.block`): the first list of `config.num_hidden_layers` modules of
    one class. An encoder–decoder's blocks are its encoder's (`get_encoder`), the stack the
    analysis reads (T5's `num_hidden_layers` is the encoder's `num_layers`)."""
    n = getattr(model.config, "num_hidden_layers", None) or model.config.n_layer
    stack = model.get_encoder() if getattr(model.config, "is_encoder_decoder", False) else model
    for module in stack.modules():
        # of one class: not a T5 block's own list of sub-layers (attention, feed-forward)
        if (
            isinstance(module, nn.ModuleList)
            and len(module) == n
            and len({type(block) for block in module}) == 1
        ):
            return module
    raise ValueError(f"{type(model).__name__}: no list of {n} transformer blocks found")


def _first(out):
    return out[0] if isinstance(out, tuple) else out


def _with_first(out, hidden: torch.Tensor):
    return (hidden, *out[1:]) if isinstance(out, tuple) else hidden


@contextlib.contextmanager
def _hooks(handles: Sequence) -> Iterator[None]:
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@torch.inference_mode()
def _clean_pass(model, blocks: nn.ModuleList, batch: dict) -> tuple[torch.Tensor, list, list]:
    """Logits, the states at every site ([L+1] tensors [B, T, H]) and every block's raw output."""
    sites: list[torch.Tensor] = []
    outputs: list = []

    def keep_input(_module, args, kwargs):
        sites.append(args[0] if args else kwargs["hidden_states"])

    def keep_output(_module, _args, out):
        outputs.append(out)
        sites.append(_first(out))

    handles = [blocks[0].register_forward_pre_hook(keep_input, with_kwargs=True)]
    handles += [b.register_forward_hook(keep_output) for b in blocks]
    with _hooks(handles):
        logits = model(**batch).logits
    return logits, sites, outputs


@contextlib.contextmanager
def _replayed(blocks: nn.ModuleList, outputs: list, site: int, eraser):
    """Blocks 0..site-1 return their cached outputs (the last one erased), so only the blocks
    above `site` run; site 0 erases the first block's input instead."""
    if site == 0:

        def erase_input(_module, args, kwargs):
            if args:
                return (eraser(args[0]), *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": eraser(kwargs["hidden_states"])}

        with _hooks([blocks[0].register_forward_pre_hook(erase_input, with_kwargs=True)]):
            yield
        return
    erased = _with_first(outputs[site - 1], eraser(_first(outputs[site - 1])))
    replayed = [*outputs[: site - 1], erased]
    for block, out in zip(blocks, replayed, strict=False):
        block.forward = lambda *_a, _out=out, **_k: _out  # instance attribute: shadows the class's
    try:
        yield
    finally:
        for block in blocks[:site]:
            del block.forward


def _sentence_units(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Per example, the vector a sequence task's eraser is fitted on [B, H] (`pooling`: the
    `pooling.sentence_pooling` of the model), read from the real tokens' states [B, T, H]."""
    if pooling == "last":
        return last_token(hidden, mask)  # the decoders' sequence head reads it
    if pooling == "mean":
        return masked_mean(hidden, mask)
    return hidden[:, 0]  # [CLS]


def _units(
    hidden: torch.Tensor,
    labels: torch.Tensor,
    batch: dict,
    n_labels: int,
    word_task: bool,
    pooling: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The fitted units' vectors [n, H] and concept [n, k] of one batch at one site.

    Virtual tokens (prompt methods) come first in the hidden states: `offset` skips them."""
    offset = hidden.shape[1] - batch["input_ids"].shape[1]
    if word_task:
        kept = labels != -100
        x = hidden[:, offset:][kept]
        return x, nn.functional.one_hot(labels[kept], n_labels)
    x = _sentence_units(hidden[:, offset:], batch["attention_mask"], pooling)
    if labels.is_floating_point():  # a score (similarity) or a multi-hot label set
        return x, labels.reshape(len(x), -1)
    return x, nn.functional.one_hot(labels, n_labels)


@dataclass(frozen=True)
class Erasers:
    """Per site (0..L), the task's LEACE eraser and the random control eraser of its rank."""

    task: list[Float64Eraser]
    control: list[Float64Eraser]
    ranks: list[int]

    def of(self, target: str) -> list[Float64Eraser]:
        return self.task if target == "task" else self.control


def random_eraser(eraser: LeaceEraser, rank: int, generator: torch.Generator) -> LeaceEraser:
    """An orthogonal projection out of a random `rank`-dim subspace, about the same mean: the
    control for `eraser`."""
    d = eraser.proj_left.shape[0]
    q, _ = torch.linalg.qr(torch.randn(d, max(rank, 1), generator=generator, dtype=torch.float64))
    q = q[:, :rank].to(eraser.proj_left.dtype)
    return LeaceEraser(q, q.T.contiguous(), bias=eraser.bias)


def _rank(eraser: LeaceEraser) -> int:
    return int(torch.linalg.matrix_rank(eraser.proj_left.double() @ eraser.proj_right.double()))


def fit_erasers(
    model, blocks: nn.ModuleList, batches, task_type: str, n_labels: int, seed: int
) -> Erasers:
    """Stream the fit split once: one LEACE fitter per site (float64 statistics), then each
    fitted eraser and its random control (seeded), in the model's dtype."""
    word_task = tasks.get(task_type).unit == "word"
    pooling = sentence_pooling(
        is_decoder_config(model.config), getattr(model.config, "is_encoder_decoder", False)
    )
    fitters: list[LeaceFitter] = []
    for batch, labels in batches:
        _, sites, _ = _clean_pass(model, blocks, batch)
        labels = labels.to(sites[0].device)
        for i, hidden in enumerate(sites):
            x, z = _units(hidden, labels, batch, n_labels, word_task, pooling)
            if len(fitters) <= i:
                fitters.append(
                    LeaceFitter(x.shape[1], z.shape[1], dtype=torch.float64, device=x.device)
                )
            fitters[i].update(x.double(), z.double())
    task = [Float64Eraser(f.eraser) for f in fitters]
    generator = torch.Generator().manual_seed(seed)
    ranks = [_rank(f.eraser) for f in fitters]
    control = [
        Float64Eraser(random_eraser(f.eraser, r, generator))
        for f, r in zip(fitters, ranks, strict=True)
    ]
    return Erasers(task, control, ranks)


@dataclass(frozen=True)
class Float64Eraser:
    """A fitted eraser applied in float64 and cast back. Its two factors hold the whitening
    and its inverse, ill-conditioned where hidden states are near-degenerate (fewer units than
    dimensions): in float32 the edit cancels badly and a probe still reads the property."""

    eraser: LeaceEraser

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.eraser(x.double()).to(x.dtype)


def erased_predictions(model, blocks, batches, erasers: Erasers, task_type: str, n_examples: int):
    """Predictions of the test split: unerased, and per target and site with that site erased.

    Returns `(clean, {(target, site): predictions})`, each a list in example order."""
    task = tasks.get(task_type)
    n_sites = len(erasers.task)
    clean: list = [None] * n_examples
    erased = {(t, s): [None] * n_examples for t in ERASERS for s in range(n_sites)}
    progress = Progress(n_examples, "erased forward passes", log, "examples")
    for indices, (batch, labels) in batches:
        logits, _, outputs = _clean_pass(model, blocks, batch)
        _place(clean, indices, task.batch_predictions(logits.cpu(), labels))
        for (target, site), out in erased.items():
            with _replayed(blocks, outputs, site, erasers.of(target)[site]), torch.inference_mode():
                logits = model(**batch).logits
            _place(out, indices, task.batch_predictions(logits.cpu(), labels))
        progress.advance(len(indices))
    return clean, erased


def _place(out: list, indices: Sequence[int], predicted: list) -> None:
    for i, p in zip(indices, predicted, strict=True):
        out[i] = p


def erasure_rows(
    model,
    tokenizer,
    task: TaskData,
    training: TrainingSettings,
    settings: ErasureSettings,
    seed: int,
) -> list[dict]:
    """Tidy rows `layer, target, metric, value`: each test score with the layer's states erased
    (LEACE: `task`; the random subspace of its rank: `control`) and its drop from the unerased
    score (`<metric>_drop`), plus the eraser's rank (`rank`)."""
    model.eval().to(device())
    blocks = transformer_blocks(model)
    feats = {
        split: build_features(task.task_type, task.split(split), tokenizer, task.labels, training)
        for split in (settings.fit_split, settings.split)
    }
    batch_size = training.eval_batch_size

    def batches(split):
        for indices, batch in sorted_batches(feats[split], task.task_type, tokenizer, batch_size):
            labels = batch.pop("labels")
            yield indices, ({k: v.to(device()) for k, v in batch.items()}, labels)

    erasers = fit_erasers(
        model,
        blocks,
        (b for _, b in batches(settings.fit_split)),
        task.task_type,
        len(task.labels),
        seed,
    )
    log.info("LEACE erasers fitted on %s: rank per layer %s", settings.fit_split, erasers.ranks)
    records = task.split(settings.split)
    clean, erased = erased_predictions(
        model, blocks, batches(settings.split), erasers, task.task_type, len(records)
    )
    base = score_split(task.task_type, task.labels, records, clean)
    log.info("%s unerased: %s", settings.split, {k: round(v, 4) for k, v in base.items()})
    rows = []
    for (target, site), predicted in erased.items():
        scores = score_split(task.task_type, task.labels, records, predicted)
        rows += [_row(site, target, m, v) for m, v in scores.items()]
        rows += [_row(site, target, f"{m}_drop", base[m] - v) for m, v in scores.items()]
        rows.append(_row(site, target, "rank", erasers.ranks[site]))
    rows.sort(key=lambda r: (r["layer"], r["target"], r["metric"]))
    return rows


def _row(layer: int, target: str, metric: str, value: float) -> dict:
    return {"layer": layer, "target": target, "metric": metric, "value": float(value)}
