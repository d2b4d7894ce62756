"""Per-example attention figure: for a few analysis examples, the head that changed most, as
heat maps over the example's tokens: pretrained, fine-tuned, and their difference.

Rows are examples (`bioprobe.analysis.examples.load_examples` chooses them); within a panel, row
= the attending token (query), column = the token attended to (key), both labelled with the
tokens. Maps longer than `max_tokens` are cropped to their first tokens, and the row title says
so. The two attention panels of a row share one colour scale from 0; the difference panel is
diverging and symmetric around 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from bioprobe.analysis.examples import AttentionExample
from bioprobe.plotting.style import save_figure, style_context

__all__ = ["build_attention_examples", "display_token", "plot_attention_examples"]

_ATTENTION_CMAP = "Blues"  # 0 = white: only where attention goes is coloured
_DIFF_CMAP = "PuOr_r"  # diverging, colour-blind safe: orange = more attention after fine-tuning
#: word-start marks shown as SentencePiece's ▁ (GPT-2's byte-level Ġ), word-end marks dropped
#: (BioGPT's </w>); WordPiece's ## stays: it says "continues a word"
_WORD_START = ("Ġ", "▁")
_WORD_END = ("</w>",)
_INCH_PER_TOKEN = 0.13


def display_token(token: str) -> str:
    """A token as a reader takes it in: a word start marked ▁ whatever the tokenizer's mark,
    word-end marks dropped, newlines visible."""
    for mark in _WORD_START:
        if token.startswith(mark):
            token = "▁" + token[len(mark) :]
    for mark in _WORD_END:
        if token.endswith(mark) and len(token) > len(mark):
            token = token[: -len(mark)]
    return token.replace("Ċ", "\\n").replace("\n", "\\n")


def _heatmap(ax, grid: np.ndarray, tokens: Sequence[str], cmap: str, vmin: float, vmax: float):
    mesh = ax.pcolormesh(grid, cmap=cmap, vmin=vmin, vmax=vmax)
    n = len(tokens)
    ax.set_xlim(0, n)
    ax.set_ylim(n, 0)  # first token at the top, as in a matrix
    ax.set_aspect("equal")
    ax.grid(False)
    ticks = np.arange(n) + 0.5
    ax.set_xticks(ticks, tokens, rotation=90, fontsize=6.5)
    ax.set_yticks(ticks, tokens, fontsize=6.5)
    ax.tick_params(length=0, pad=1.5)
    return mesh


def _row_title(example: AttentionExample, shown: int) -> str:
    change = example.most_changed()
    crop = f", first {shown} of {len(example.tokens)} tokens" if shown < len(example.tokens) else ""
    return (
        f"example {example.index + 1}{crop}: layer {change.layer} head {change.head} changed most"
        f" (JS {change.js:.3g} nats, cosine {change.cosine:.4g})"
    )


def _draw_example(
    axes, fig: Figure, example: AttentionExample, variant: str, max_tokens: int
) -> None:
    """One row of `fig`: pretrained, fine-tuned and difference maps of the example's
    most-changed head, a colour bar for the first two and one for the difference."""
    change = example.most_changed()
    layer, head = change.layer, change.head
    t = min(len(example.tokens), max_tokens)
    tokens = [display_token(tok) for tok in example.tokens[:t]]
    pre = example.pretrained[layer - 1, head - 1, :t, :t]
    ft = example.finetuned[layer - 1, head - 1, :t, :t]
    top = float(max(pre.max(), ft.max(), 1e-6))
    for ax, grid in zip(axes[:2], (pre, ft), strict=True):
        mesh = _heatmap(ax, grid, tokens, _ATTENTION_CMAP, 0.0, top)
    fig.colorbar(mesh, ax=list(axes[:2]), shrink=0.8, pad=0.01, label="attention weight")
    diff = ft - pre
    span = float(max(np.abs(diff).max(), 1e-6))
    mesh = _heatmap(axes[2], diff, tokens, _DIFF_CMAP, -span, span)
    # the row's title over the middle panel, the column names on the line below it
    axes[1].set_title(f"{_row_title(example, t)}\n{variant}", fontsize=8.5)
    for ax, name in ((axes[0], "pretrained"), (axes[2], "difference")):
        ax.set_title(f"\n{name}", fontsize=8.5)
    fig.colorbar(mesh, ax=axes[2], shrink=0.8, pad=0.01, label="fine-tuned − pretrained")
    axes[0].set_ylabel("attending token (query)")
    axes[0].set_xlabel("attended token (key)")
    for ax in axes[1:]:
        ax.set_yticklabels([])


def build_attention_examples(
    examples: Sequence[AttentionExample], *, title: str, variant: str, max_tokens: int = 32
) -> Figure:
    """A row per example: the heat maps of its most-changed head under the pretrained model,
    under `variant` (the fine-tuned model's label), and their difference. `title` names the
    task and model."""
    if not examples:
        raise ValueError("no attention examples to draw")
    t = min(max(len(e.tokens) for e in examples), max_tokens)
    panel = max(1.6, t * _INCH_PER_TOKEN) + 0.9  # the maps plus their token labels
    with style_context():
        fig, grid = plt.subplots(
            len(examples),
            3,
            figsize=(3 * panel + 1.6, len(examples) * (panel + 0.5) + 0.5),
            squeeze=False,
            layout="compressed",  # square maps: constrained layout that closes the gaps
        )
        for axes, example in zip(grid, examples, strict=True):
            _draw_example(axes, fig, example, variant, max_tokens)
        fig.suptitle(title)
    return fig


def plot_attention_examples(
    examples: Sequence[AttentionExample],
    out_stem: str | Path,
    *,
    title: str,
    variant: str,
    max_tokens: int = 32,
) -> list[Path]:
    """`build_attention_examples`, saved as ``<out_stem>.png`` and ``.pdf``."""
    fig = build_attention_examples(examples, title=title, variant=variant, max_tokens=max_tokens)
    try:
        with style_context():
            return save_figure(fig, out_stem)
    finally:
        plt.close(fig)
