"""Attention examples: the maps of a few analysis examples under the pretrained and a fine-tuned
variant, with their tokens, and the heads that changed most on each.

Both dumps hold the same attention set (the first examples of the attention split, trimmed to
their real tokens, `bioprobe.analysis.extract`), and ``meta.json`` holds each example's token
strings. An example's change per head is the Jensen–Shannon divergence between matching query
rows (`attention.js_rows`, nats in [0, ln 2]), with the cosine of the flattened maps beside it.

Examples are chosen for where the change shows: among those with at most `max_tokens` tokens
(a map stays legible), the ones whose most-changed head changed most; they illustrate
fine-tuning's largest effects, not a typical example.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bioprobe.analysis.attention import cosine_flat, js_rows
from bioprobe.analysis.dumpio import ATTENTION, read_attention, read_meta
from bioprobe.errors import BioprobeError

__all__ = [
    "AttentionExample",
    "HeadChange",
    "attention_set",
    "head_changes",
    "load_examples",
    "select_examples",
    "top_heads",
]


@dataclass(frozen=True)
class HeadChange:
    """How one head's attention on one example moved: 1-based layer and head, as in the
    attention table."""

    layer: int
    head: int
    js: float
    cosine: float


@dataclass(frozen=True)
class AttentionExample:
    """One analysis example under both variants: `pretrained` and `finetuned` are
    [L, heads, T, T] float32 maps over its T `tokens`; `index` is its place in the attention
    set."""

    index: int
    tokens: list[str]
    pretrained: np.ndarray
    finetuned: np.ndarray

    def change(self, layer: int, head: int) -> HeadChange:
        """JS divergence and cosine of one head (1-based) on this example."""
        a = self.finetuned[layer - 1, head - 1][None, None]
        b = self.pretrained[layer - 1, head - 1][None, None]
        return HeadChange(layer, head, float(js_rows(a, b)), float(cosine_flat(a, b)))

    def most_changed(self) -> HeadChange:
        """The head whose attention on this example moved most (largest JS divergence)."""
        ((layer, head),) = top_heads(head_changes(self.pretrained, self.finetuned), 1)
        return self.change(layer, head)


def head_changes(pretrained: np.ndarray, finetuned: np.ndarray) -> np.ndarray:
    """Per head, the JS divergence of one example's maps [L, heads, T, T]: [L, heads]."""
    return js_rows(finetuned, pretrained).numpy()


def top_heads(changes: np.ndarray, k: int = 1) -> list[tuple[int, int]]:
    """The `k` (layer, head) pairs, 1-based, with the largest change, largest first (ties: the
    lower layer, then the lower head)."""
    flat = np.asarray(changes, dtype=np.float64).ravel()
    order = np.lexsort((np.arange(flat.size), -flat))[:k]
    n_heads = changes.shape[1]
    return [(int(i // n_heads) + 1, int(i % n_heads) + 1) for i in order]


def select_examples(
    peak_changes: Sequence[float], lengths: Sequence[int], n: int, max_tokens: int
) -> list[int]:
    """Indices of `n` examples: those of at most `max_tokens` tokens whose most-changed head
    changed most (`peak_changes`: per example the largest head change), largest first; when
    fewer fit, the shortest others after them (a figure crops them)."""
    fits = [i for i, t in enumerate(lengths) if t <= max_tokens]
    chosen = sorted(fits, key=lambda i: (-peak_changes[i], i))[:n]
    rest = sorted((i for i in range(len(lengths)) if i not in chosen), key=lambda i: lengths[i])
    return chosen + rest[: n - len(chosen)]


def attention_set(dump: str | Path) -> dict:
    """A dump's attention set from its ``meta.json``: split, lengths, tokens, layer and head
    counts. A dump written before tokens were stored is an error saying how to rebuild it."""
    meta = read_meta(dump)
    info = meta.get("attention")
    if not info:
        raise BioprobeError(f"{dump}: the dump has no attention maps (attention.max_examples: 0?)")
    if "tokens" not in info:
        raise BioprobeError(
            f"{dump}: the dump stores no tokens of its attention examples (written by an older"
            " bioprobe); delete it, or re-run its extract job (snakemake --forcerun extract)"
        )
    return {**info, "n_layers": meta["n_layers"], "num_heads": meta["num_heads"]}


def _maps(dump: str | Path, info: dict) -> Iterator[np.ndarray]:
    """Each example's maps as a float32 array of its own (the dump is memory-mapped)."""
    path = Path(dump) / ATTENTION
    for m in read_attention(path, info["lengths"], info["n_layers"], info["num_heads"]):
        yield np.array(m, dtype=np.float32)


def _matching_sets(pretrained_dump: str | Path, finetuned_dump: str | Path) -> dict:
    """The attention set both dumps share; an error when they cover different examples."""
    pre, ft = attention_set(pretrained_dump), attention_set(finetuned_dump)
    for key in ("lengths", "tokens", "n_layers", "num_heads"):
        if pre[key] != ft[key]:
            raise BioprobeError(
                f"the attention sets of {pretrained_dump} and {finetuned_dump} differ in {key}"
            )
    return pre


def load_examples(
    pretrained_dump: str | Path, finetuned_dump: str | Path, n: int = 3, max_tokens: int = 32
) -> list[AttentionExample]:
    """The `n` examples `select_examples` picks, with both variants' maps. Reads the maps
    twice, one example at a time: first to measure each example's change, then to keep the
    chosen ones (memory: the chosen examples only)."""
    info = _matching_sets(pretrained_dump, finetuned_dump)
    pairs = zip(_maps(pretrained_dump, info), _maps(finetuned_dump, info), strict=True)
    peaks = [float(head_changes(p, f).max()) for p, f in pairs]
    chosen = select_examples(peaks, info["lengths"], n, max_tokens)
    examples = {}
    pairs = zip(_maps(pretrained_dump, info), _maps(finetuned_dump, info), strict=True)
    for i, (p, f) in enumerate(pairs):
        if i in chosen:
            examples[i] = AttentionExample(i, list(info["tokens"][i]), p, f)
    return [examples[i] for i in chosen]
