"""Figures of the workflow: one colour-blind-safe style (`style`), one function per figure
(`figures`; the per-example attention figure in `examples`). ``build_*`` return a matplotlib
Figure, ``plot_*`` write PNG + PDF and return the paths. Pages for the report: the interactive
attention head view (`headview`) and tables as HTML (`htmltable`), each one self-contained
file. `examples` and `headview` read attention maps (torch): import them from their modules, so
that the other figures' jobs start without torch."""

from bioprobe.plotting.figures import (
    build_attention_by_layer,
    build_attention_heatmaps,
    build_blurb,
    build_cka,
    build_correlations,
    build_downstream,
    build_probes,
    internal_measures,
    plot_attention_by_layer,
    plot_attention_heatmaps,
    plot_blurb,
    plot_cka,
    plot_correlations,
    plot_downstream,
    plot_probes,
)
from bioprobe.plotting.style import save_figure, style_context

__all__ = [
    "build_attention_by_layer",
    "build_attention_heatmaps",
    "build_blurb",
    "build_cka",
    "build_correlations",
    "build_downstream",
    "build_probes",
    "internal_measures",
    "plot_attention_by_layer",
    "plot_attention_heatmaps",
    "plot_blurb",
    "plot_cka",
    "plot_correlations",
    "plot_downstream",
    "plot_probes",
    "save_figure",
    "style_context",
]
