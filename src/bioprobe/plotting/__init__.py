"""Figures of the workflow: one colour-blind-safe style (`style`), one function per figure
(`figures`; the per-example attention figure in `examples`). ``build_*`` return a matplotlib
Figure, ``plot_*`` write PNG + PDF and return the paths. Pages for the report: the interactive
attention head view (`headview`) and tables as HTML (`htmltable`), each one self-contained
file. `examples` and `headview` read attention maps (torch): import them from their modules, so
that the other figures' jobs start without torch. The names below are imported on first use
(PEP 562): a table page (`htmltable`) is then rendered without importing matplotlib and
seaborn, two of the four seconds such a job took."""

import importlib

#: each public name and the module that defines it
_HOME = {
    **dict.fromkeys(
        (
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
        ),
        "figures",
    ),
    "save_figure": "style",
    "style_context": "style",
}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
