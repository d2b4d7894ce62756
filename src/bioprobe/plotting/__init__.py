"""Figures of the workflow: one colour-blind-safe style (`style`), one function per figure
(`figures`; the per-example attention figure in `examples`). ``build_*`` return a matplotlib
Figure, ``plot_*`` write PNG + PDF and return the paths. Pages for the report: the interactive
attention head view (`headview`) and tables as HTML (`htmltable`), each one self-contained
file. `examples` and `headview` read attention maps (torch): import them from their modules, so
that the other figures' jobs start without torch. The names below are imported on first use
(PEP 562): a table page (`htmltable`) is then rendered without importing matplotlib and
seaborn, two of the four seconds such a job took."""

import importlib

#: the modules whose public names (their `__all__`) the package lends
_HOMES = ("figures", "style")


def __getattr__(name: str):
    for home in _HOMES:
        module = importlib.import_module(f"{__name__}.{home}")
        if name in module.__all__:
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
