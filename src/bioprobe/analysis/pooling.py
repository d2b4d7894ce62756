"""Pool hidden states to probing units, vectorised over layers and the batch.

Every function takes `hidden` as one tensor `[..., B, T, H]`: usually `[L+1, B, T, H]` (the
stacked `output_hidden_states` of a forward pass: layer 0 is the embeddings) or `[B, T, H]` for
one layer. A tuple/list of per-layer `[B, T, H]` tensors (what transformers returns) is stacked.
Leading dimensions are kept, so all layers are pooled at once and no Python loop ever runs over
tokens, words or layers.

`attention_mask` is `[B, T]` (1 = real token, 0 = padding). Padding is never averaged and never
picked. Hidden states at padded positions must be finite (they are multiplied by 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch

WordPooling = Literal["first", "mean", "last"]
JointPooling = Literal["cls", "last", "mean", "auto"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _stack(hidden: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    if isinstance(hidden, torch.Tensor):
        return hidden
    return torch.stack(tuple(hidden))


def _check_mask(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    if hidden.dim() < 3:
        raise ValueError(f"hidden must be [..., B, T, H], got shape {tuple(hidden.shape)}")
    if tuple(attention_mask.shape) != tuple(hidden.shape[-3:-1]):
        raise ValueError(
            f"attention_mask shape {tuple(attention_mask.shape)} does not match hidden "
            f"[..., B, T, H] = {tuple(hidden.shape)}"
        )
    mask = attention_mask.to(hidden.device) != 0
    empty = ~mask.any(dim=-1)
    if bool(empty.any()):
        raise ValueError(f"examples with no real token: {empty.nonzero().flatten().tolist()}")
    return mask


def masked_mean(
    hidden: torch.Tensor | Sequence[torch.Tensor], attention_mask: torch.Tensor
) -> torch.Tensor:
    """Mean over the real tokens of each example: `[..., B, T, H]` -> `[..., B, H]`."""
    hidden = _stack(hidden)
    mask = _check_mask(hidden, attention_mask).to(hidden.dtype)
    # [B, 1, T] @ [..., B, T, H] -> [..., B, 1, H]: one batched matmul, no copy of `hidden`.
    summed = (mask.unsqueeze(-2) @ hidden).squeeze(-2)
    return summed / mask.sum(dim=-1, keepdim=True)


def first_token(hidden: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """The first token of each example (CLS for BERT-style encoders): `[..., B, H]`."""
    return _stack(hidden)[..., 0, :]


def last_token(
    hidden: torch.Tensor | Sequence[torch.Tensor], attention_mask: torch.Tensor
) -> torch.Tensor:
    """The last real token of each example (the decoders' pooled token): `[..., B, H]`.

    The position is the last index where the mask is 1, so right and left padding both work.
    """
    hidden = _stack(hidden)
    mask = _check_mask(hidden, attention_mask)
    positions = torch.arange(mask.shape[-1], device=mask.device)
    last = (mask.long() * positions).argmax(dim=-1)  # [B]
    batch = torch.arange(mask.shape[0], device=mask.device)
    return hidden[..., batch, last, :]


class WordVectors(NamedTuple):
    """Word vectors of a batch packed along one axis.

    `vectors` is `[..., sum(n_words), H]`; the words of example b are
    `vectors[..., offsets[b]:offsets[b + 1], :]`.
    """

    vectors: torch.Tensor
    offsets: torch.Tensor


def _word_counts(word_index: torch.Tensor, n_words) -> torch.Tensor:
    seen = word_index.max(dim=-1).values.clamp_min(-1) + 1  # [B]
    if n_words is None:
        return seen
    counts = torch.as_tensor(n_words, dtype=torch.long, device=word_index.device)
    counts = counts.expand(word_index.shape[0]) if counts.dim() == 0 else counts
    if counts.shape != seen.shape:
        raise ValueError(f"n_words has shape {tuple(counts.shape)}, expected ({len(seen)},)")
    too_big = seen > counts
    if bool(too_big.any()):
        raise ValueError(
            "word_index holds word ids >= n_words in examples "
            f"{too_big.nonzero().flatten().tolist()}"
        )
    return counts


def word_pool(
    hidden: torch.Tensor | Sequence[torch.Tensor],
    word_index: torch.Tensor,
    n_words: torch.Tensor | Sequence[int] | int | None = None,
    mode: WordPooling = "first",
) -> WordVectors:
    """Pool sub-token vectors to word vectors: `[..., B, T, H]` -> packed `[..., sum(n_words), H]`.

    `word_index` is `[B, T]` long: the word id (0-based, within its example) of each sub-token,
    -1 for special and padding tokens. `n_words` (per example, or one int) defaults to
    `max(word_index) + 1`; every word below it must own at least one sub-token (a word lost to
    truncation is an error, not a silent zero vector). `mode`: the word's first, mean or last
    sub-token (the paper used mean).
    """
    hidden = _stack(hidden)
    if hidden.dim() < 3 or tuple(word_index.shape) != tuple(hidden.shape[-3:-1]):
        raise ValueError(
            f"word_index shape {tuple(word_index.shape)} does not match hidden "
            f"[..., B, T, H] = {tuple(hidden.shape)}"
        )
    if mode not in ("first", "mean", "last"):
        raise ValueError(f"mode must be 'first', 'mean' or 'last', got {mode!r}")
    word_index = word_index.to(device=hidden.device, dtype=torch.long)
    n_batch, n_tok = word_index.shape
    counts = _word_counts(word_index, n_words)
    offsets = torch.cat([counts.new_zeros(1), counts.cumsum(dim=0)])
    total = int(offsets[-1])

    # Global word id of every (example, token) pair; specials/padding go to a dummy bucket `total`.
    flat_index = word_index.flatten()
    valid = flat_index >= 0
    example = torch.arange(n_batch, device=hidden.device).repeat_interleave(n_tok)
    gid = torch.where(valid, offsets[example] + flat_index, total)
    per_word = torch.bincount(gid, minlength=total + 1)[:total]
    if bool((per_word == 0).any()):
        missing = torch.searchsorted(offsets, (per_word == 0).nonzero().flatten(), right=True) - 1
        raise ValueError(
            f"words with no sub-token (truncated?) in examples {sorted(set(missing.tolist()))}"
        )

    flat = hidden.flatten(-3, -2)  # [..., B*T, H], a view
    if mode == "mean":  # index_add_ into one row per word (+ a dummy row for specials/padding)
        acc = torch.float32 if flat.dtype in _LOW_PRECISION else flat.dtype
        sums = flat.new_zeros((*flat.shape[:-2], total + 1, flat.shape[-1]), dtype=acc)
        sums.index_add_(-2, gid, flat.to(acc))
        mean = sums[..., :total, :] / per_word.to(acc).unsqueeze(-1)
        return WordVectors(mean.to(flat.dtype), offsets)

    positions = torch.arange(n_batch * n_tok, device=hidden.device)
    if mode == "first":
        init, reduce = n_batch * n_tok, "amin"
    else:
        init, reduce = -1, "amax"
    pick = torch.full((total + 1,), init, dtype=torch.long, device=hidden.device)
    pick.scatter_reduce_(0, gid, positions, reduce=reduce, include_self=True)
    return WordVectors(flat.index_select(-2, pick[:total]), offsets)


def sentence_pooling(is_decoder: bool, encoder_decoder: bool = False) -> str:
    """How a sentence's vector is read from a model's states where nothing else is said (the
    `auto` joint pooling, relation's `cls`, the units a sequence task's erasure fits): `last`
    real token for decoders (GPT-2, BioGPT, LLaMA: the token their sequence head reads), `cls`
    (the first token) for encoders, `mean` for encoder–decoders. T5's encoder has no CLS and its
    sequence head reads the decoder at the last eos, which the analysis does not read (it reads
    the encoder stack): the masked mean of the encoder's states is its sentence vector, as
    Sentence-T5 (Ni et al. 2022) found best among T5 encoder poolings."""
    if encoder_decoder:
        return "mean"
    return "last" if is_decoder else "cls"


def resolve_joint_pooling(
    pooling: JointPooling, is_decoder: bool, encoder_decoder: bool = False
) -> str:
    """`auto` -> :func:`sentence_pooling` (`last` for decoders, `mean` for encoder–decoders,
    `cls` for encoders); others unchanged."""
    if pooling not in ("cls", "last", "mean", "auto"):
        raise ValueError(f"joint pooling must be cls, last, mean or auto, got {pooling!r}")
    if pooling == "auto":
        return sentence_pooling(is_decoder, encoder_decoder)
    return pooling


def pool_pair_joint(
    hidden: torch.Tensor | Sequence[torch.Tensor],
    attention_mask: torch.Tensor,
    pooling: JointPooling = "auto",
    is_decoder: bool = False,
    encoder_decoder: bool = False,
) -> torch.Tensor:
    """`joint` pair mode (premise and hypothesis encoded together): `[..., B, H]`."""
    how = resolve_joint_pooling(pooling, is_decoder, encoder_decoder)
    if how == "cls":
        return first_token(hidden)
    if how == "last":
        return last_token(hidden, attention_mask)
    return masked_mean(hidden, attention_mask)


def pool_pair_separate(
    hidden_a: torch.Tensor | Sequence[torch.Tensor],
    mask_a: torch.Tensor,
    hidden_b: torch.Tensor | Sequence[torch.Tensor],
    mask_b: torch.Tensor,
) -> torch.Tensor:
    """The paper's `separate` mode: masked means of premise and hypothesis, concatenated.

    The two texts are encoded apart (their T may differ): `[..., B, 2H]`.
    """
    return torch.cat([masked_mean(hidden_a, mask_a), masked_mean(hidden_b, mask_b)], dim=-1)


RelationPooling = Literal["cls", "mean", "entity"]


def entity_pair(
    hidden: torch.Tensor | Sequence[torch.Tensor],
    attention_mask: torch.Tensor,
    positions: torch.Tensor,
    is_decoder: bool = False,
    encoder_decoder: bool = False,
) -> torch.Tensor:
    """The two entities of a relation sentence: the vectors at their first sub-tokens,
    concatenated, `[..., B, 2H]` (the entity-start representation of relation probing).

    `positions` is `[B, 2]` long: the token index of each entity's first sub-token (both the
    same where one placeholder stands for both entities). A row holding -1 (a placeholder
    missing or cut off) takes the sentence vector (`pool_pair_joint`, `auto`) twice instead.
    """
    hidden = _stack(hidden)
    mask = _check_mask(hidden, attention_mask)
    positions = torch.as_tensor(positions, dtype=torch.long, device=hidden.device)
    n_batch = hidden.shape[-3]
    if tuple(positions.shape) != (n_batch, 2):
        raise ValueError(f"positions must be [B, 2] = ({n_batch}, 2), got {tuple(positions.shape)}")
    missing = (positions < 0).any(dim=-1)  # [B]
    at = torch.where(missing.unsqueeze(-1), 0, positions)
    rows = torch.arange(n_batch, device=hidden.device).unsqueeze(-1)  # [B, 1]
    if bool((at >= mask.shape[-1]).any()) or not bool(mask[rows, at].all()):
        raise ValueError("an entity position falls outside the example's real tokens")
    picked = hidden[..., rows, at, :]  # [..., B, 2, H]
    if bool(missing.any()):
        sentence = pool_pair_joint(
            hidden, attention_mask, "auto", is_decoder, encoder_decoder
        ).unsqueeze(-2)
        picked = torch.where(missing[:, None, None], sentence, picked)
    return picked.flatten(-2)


def pool_relation(
    hidden: torch.Tensor | Sequence[torch.Tensor],
    attention_mask: torch.Tensor,
    positions: torch.Tensor,
    mode: RelationPooling = "entity",
    is_decoder: bool = False,
    encoder_decoder: bool = False,
) -> torch.Tensor:
    """A relation sentence's probing vector: `entity` (`entity_pair`, `[..., B, 2H]`), `cls`
    (the sentence vector of :func:`sentence_pooling`: CLS for encoders, the last real token for
    decoders, the mean for encoder–decoders) or `mean` (the masked mean), both `[..., B, H]`."""
    if mode == "entity":
        return entity_pair(hidden, attention_mask, positions, is_decoder, encoder_decoder)
    if mode == "cls":
        return pool_pair_joint(hidden, attention_mask, "auto", is_decoder, encoder_decoder)
    if mode == "mean":
        return masked_mean(hidden, attention_mask)
    raise ValueError(f"relation pooling must be entity, cls or mean, got {mode!r}")
