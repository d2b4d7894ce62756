"""Figures of the workflow: one colour-blind-safe style (`style`), one function per figure
(`figures`). ``build_*`` return a matplotlib Figure, ``plot_*`` write PNG + PDF and return the
paths."""

from bioprobe.plotting.figures import (
    build_attention_by_layer,
    build_attention_heatmaps,
    build_cka,
    build_correlations,
    build_downstream,
    build_probes,
    internal_measures,
    plot_attention_by_layer,
    plot_attention_heatmaps,
    plot_cka,
    plot_correlations,
    plot_downstream,
    plot_probes,
)
from bioprobe.plotting.style import save_figure, style_context

__all__ = [
    "build_attention_by_layer",
    "build_attention_heatmaps",
    "build_cka",
    "build_correlations",
    "build_downstream",
    "build_probes",
    "internal_measures",
    "plot_attention_by_layer",
    "plot_attention_heatmaps",
    "plot_cka",
    "plot_correlations",
    "plot_downstream",
    "plot_probes",
    "save_figure",
    "style_context",
]
