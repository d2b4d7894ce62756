"""Attention-map similarity and entropy, vectorised over layers and heads.

An example's attention maps are one tensor `[L, Hh, T, T]` (layer, head, query, key; each row a
probability distribution over keys), trimmed to the real tokens of that example; T varies
between examples, and the same example under two variants of one model has the same T. A batch
of same-length examples is `[B, L, Hh, T, T]`. Maps may be stored as float16: everything is
upcast and computed in float32; per-example results are accumulated in float64.

Measures, each `[..., L, Hh]`:
- `cosine_flat`: cosine similarity of the flattened T×T maps (the paper's measure);
- `js_rows`: Jensen–Shannon divergence between matching query rows (natural log, so in
  [0, ln 2]), averaged over rows;
- `head_entropy`: each row's entropy (nats), averaged over rows; ln T for uniform attention.

Layer numbering in tidy rows: attention layer l (1-based) is the layer that produces hidden
state l, where hidden state 0 is the embeddings; so attention and hidden-state tables join on
`layer`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

LN2 = float(np.log(2.0))
_TINY = torch.finfo(torch.float32).tiny
_EPS = 1e-12


def _as_maps(maps: Any) -> torch.Tensor:
    """float32 tensor `[..., L, Hh, T, T]` (numpy, memmaps and float16 accepted)."""
    if isinstance(maps, torch.Tensor):
        tensor = maps.float()
    else:  # np.asarray(..., float32) copies, so read-only memmaps are fine
        tensor = torch.from_numpy(np.asarray(maps, dtype=np.float32))
    if tensor.dim() < 4 or tensor.shape[-1] != tensor.shape[-2]:
        raise ValueError(
            f"attention maps must be [..., L, Hh, T, T] with square maps, got {tuple(tensor.shape)}"
        )
    return tensor


def _safe_log(p: torch.Tensor) -> torch.Tensor:
    # 0 · log(0) must be 0: clamp, then the product with p == 0 is exactly 0.
    return p.clamp_min(_TINY).log()


def _row_entropy(p: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    return -(p * log_p).sum(dim=-1)


def head_entropy(maps: Any) -> torch.Tensor:
    """Mean over query rows of the row entropy (nats): `[..., L, Hh, T, T]` -> `[..., L, Hh]`."""
    p = _as_maps(maps)
    return _row_entropy(p, _safe_log(p)).mean(dim=-1)


def cosine_flat(a: Any, b: Any) -> torch.Tensor:
    """Cosine similarity of the flattened T×T maps: `[..., L, Hh]`."""
    a, b = _pair(a, b)
    return _cosine(a, b)


def js_rows(a: Any, b: Any) -> torch.Tensor:
    """Row-wise Jensen–Shannon divergence (nats, in [0, ln 2]), mean over rows: `[..., L, Hh]`."""
    a, b = _pair(a, b)
    return _js(a, b).mean(dim=-1)


def _pair(a: Any, b: Any) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = _as_maps(a), _as_maps(b)
    if a.shape != b.shape:
        raise ValueError(f"attention maps differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    return a, b


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a.flatten(-2), b.flatten(-2)
    dot = (a * b).sum(dim=-1)
    return dot / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(_EPS)


def _js(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-row JS divergence `[..., T]`, accurate even when the two maps are close.

    With m = (a+b)/2 and r = (a−b)/(a+b): JS = ½ Σ m·f(r), f(r) = (1+r)ln(1+r) + (1−r)ln(1−r)
    = ln(1−r²) + 2r·atanh(r). The last form has no first-order cancellation, so the tiny
    divergences between a fine-tuned and a pretrained head keep float32 relative precision (the
    textbook Σ p(log p − log m) loses them to rounding). f(±1) = 2 ln 2 (one side is 0);
    entries where both are 0 contribute 0.
    """
    total = a + b
    r = torch.where(total > 0, (a - b) / total.clamp_min(_TINY), 0.0)
    f = torch.where(r.abs() < 1, torch.log1p(-r * r) + 2 * r * torch.atanh(r), 2 * LN2)
    return (0.25 * (total * f).sum(dim=-1)).clamp(0.0, LN2)


def _as_batch(maps: torch.Tensor) -> torch.Tensor:
    if maps.dim() == 4:
        return maps.unsqueeze(0)
    if maps.dim() == 5:
        return maps
    raise ValueError(f"expected [L, Hh, T, T] or [B, L, Hh, T, T], got {tuple(maps.shape)}")


class _Accumulator:
    """Sums per-example `[L, Hh]` metrics in float64; memory O(L·Hh) plus the current batch."""

    def __init__(self) -> None:
        self.n_examples = 0
        self._sums: dict[str, torch.Tensor] = {}
        self._heads: tuple[int, int] | None = None

    def _check(self, maps: torch.Tensor) -> None:
        heads = (maps.shape[-4], maps.shape[-3])
        if self._heads is None:
            self._heads = heads
        elif heads != self._heads:
            raise ValueError(f"[L, Hh] changed from {self._heads} to {heads} between updates")

    def _add(self, batch_metrics: dict[str, torch.Tensor]) -> None:
        for name, value in batch_metrics.items():  # value: [B, L, Hh]
            total = value.detach().cpu().double().sum(dim=0)
            self._sums[name] = self._sums[name] + total if name in self._sums else total
        self.n_examples += next(iter(batch_metrics.values())).shape[0]

    def result(self) -> dict[str, np.ndarray]:
        """Metrics averaged over the examples seen: name -> float64 array `[L, Hh]`."""
        if self.n_examples == 0:
            raise ValueError("no examples were added")
        return {name: (s / self.n_examples).numpy() for name, s in sorted(self._sums.items())}


class EntropyAccumulator(_Accumulator):
    """Mean attention entropy per layer and head of one variant (pretrained, random-init, …)."""

    def update(self, maps: Any) -> None:
        """Add one example `[L, Hh, T, T]` or a batch of same-length ones `[B, L, Hh, T, T]`."""
        p = _as_batch(_as_maps(maps))
        self._check(p)
        self._add({"entropy": head_entropy(p)})


class AttentionComparison(_Accumulator):
    """Streaming comparison of a variant's attention maps with the pretrained model's.

    `result()` keys: `cosine`, `js_divergence`, `entropy` (of the variant) and
    `entropy_reference` (of the pretrained model), each `[L, Hh]` averaged over examples.
    """

    def update(self, maps_variant: Any, maps_pretrained: Any) -> None:
        """Add one example `[L, Hh, T, T]` (or a batch `[B, L, Hh, T, T]`) under both models."""
        a, b = _pair(maps_variant, maps_pretrained)
        a, b = _as_batch(a), _as_batch(b)
        self._check(a)
        log_a, log_b = _safe_log(a), _safe_log(b)
        self._add(
            {
                "cosine": _cosine(a, b),
                "js_divergence": _js(a, b).mean(dim=-1),
                "entropy": _row_entropy(a, log_a).mean(dim=-1),
                "entropy_reference": _row_entropy(b, log_b).mean(dim=-1),
            }
        )


_RESERVED = ("layer", "head", "metric", "value")


def to_tidy_rows(result: Mapping[str, np.ndarray], key: Mapping[str, Any]) -> list[dict]:
    """Tidy rows `{**key, layer, head, metric, value}`, ordered by layer, head, metric.

    Layers and heads are numbered from 1 (attention layer l produces hidden state l; hidden
    state 0 is the embeddings). Every array in `result` must be `[L, Hh]`.
    """
    clash = sorted(set(key) & set(_RESERVED))
    if clash:
        raise ValueError(f"key columns {clash} clash with the row's own columns")
    arrays = {name: np.asarray(result[name], dtype=np.float64) for name in sorted(result)}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"every metric must be one [L, Hh] array, got shapes {sorted(shapes)}")
    n_layers, n_heads = next(iter(shapes))
    return [
        {
            **key,
            "layer": layer + 1,
            "head": head + 1,
            "metric": name,
            "value": float(a[layer, head]),
        }
        for layer in range(n_layers)
        for head in range(n_heads)
        for name, a in arrays.items()
    ]
