"""The instruction-tuning figure: does instruction tuning change a model's inside the way task
fine-tuning does, and in which layers?

One row per task × model, three panels per row, each against the layer: the representation
similarity to the pretrained model (CKA by default), the mean attention similarity to it (cosine
by default), and the probe score. In each, a line per instruction method (the instruction-tuned
model, dumped on the task's analysis data) and per task fine-tuning method, at a matched size
(the largest size both have; where none is shared, each its largest, said in the legend), and
in the probe panel the pretrained model as the reference both start from. Means over seeds,
a band of ± sd where there are several.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bioprobe.pipeline.grid import PRETRAINED
from bioprobe.plotting.figures import (
    _BAND,
    _SIMILARITY_TEXT,
    _attention_rows,
    _band_note,
    _layer_ticks,
    _metric_label,
    _outside_legend,
    _panel_title,
    _require,
    _save,
    _styled,
    _suptitle,
)
from bioprobe.plotting.style import LEGEND_W, PRETRAINED_COLOR, figure_size
from bioprobe.summary import SPECIAL_METHODS, TaskMetrics, load_table, task_metrics

#: instruction methods in warm colours, task fine-tuning in cool ones
_INSTRUCTION_COLORS = ["#c0392b", "#e67e22", "#8e44ad", "#d35400"]
_FINETUNE_COLORS = ["#1f77b4", "#17becf", "#2ca02c", "#7f7f7f"]


def matched_sizes(
    instruction: pd.DataFrame, finetuned: pd.DataFrame
) -> tuple[int | None, int | None]:
    """The size each side is drawn at: the largest they share, else each its largest."""
    inst, fine = set(instruction["size"]), set(finetuned["size"])
    shared = inst & fine
    if shared:
        return max(shared), max(shared)
    return (max(inst) if inst else None), (max(fine) if fine else None)


def _variants(
    table: pd.DataFrame, instruction_methods: Sequence[str]
) -> list[tuple[str, int, str, str]]:
    """(method, size, label, colour) of each line: instruction methods, then task methods."""
    is_inst = table["method"].isin(list(instruction_methods))
    is_fine = ~is_inst & ~table["method"].isin(SPECIAL_METHODS)
    inst_size, fine_size = matched_sizes(table[is_inst], table[is_fine])
    lines = []
    for i, m in enumerate(sorted(set(table.loc[is_inst, "method"]))):
        label = f"{m}: instruction-tuned,\n{inst_size}% of the instruction set"
        lines.append((m, inst_size, label, _INSTRUCTION_COLORS[i % len(_INSTRUCTION_COLORS)]))
    for i, m in enumerate(sorted(set(table.loc[is_fine, "method"]))):
        label = f"{m}: fine-tuned on the task,\n{fine_size}% of its training split"
        lines.append((m, fine_size, label, _FINETUNE_COLORS[i % len(_FINETUNE_COLORS)]))
    return lines


def _draw(ax, rows: pd.DataFrame, color, dashes="") -> bool:
    """Mean over seeds per layer (± sd where several); False where there is nothing."""
    if rows.empty:
        return False
    stats = rows.groupby("layer")["value"].agg(["mean", "std"]).reset_index()
    ax.plot(stats["layer"], stats["mean"], color=color, dashes=dashes, linewidth=1.6,
            marker="o", markersize=2.8)  # fmt: skip
    if rows["seed"].nunique() > 1:
        ax.fill_between(stats["layer"], stats["mean"] - stats["std"],
                        stats["mean"] + stats["std"], color=color, **_BAND)  # fmt: skip
    return True


@_styled
def build_instruction_tuning(
    probes,
    attention,
    representation,
    instruction_methods: Sequence[str],
    probe: str = "linear",
    metric: TaskMetrics = "macro_f1",
    attention_metric: str = "cosine",
    similarity: str = "cka",
    split: str = "test",
) -> Figure:
    """The figure of the module docstring from the probes, attention-similarity and
    representation-similarity tables. `metric`: the probe score per task (one or ``{task:
    metric}``)."""
    probes = load_table(probes, "probes")
    attention = _attention_rows(attention, attention_metric)
    attention = attention.groupby(["task", "model", "method", "size", "seed", "layer"],
                                  as_index=False)["value"].mean()  # fmt: skip
    representation = load_table(representation, "representation_similarity")
    representation = representation[representation["metric"] == similarity]
    chosen = task_metrics(metric, probes["task"], "metric")
    probes = probes[(probes["probe"] == probe) & (probes["target"] == "task")
                    & (probes["metric"] == probes["task"].map(chosen))]  # fmt: skip
    has_instruction = representation["method"].isin(list(instruction_methods))
    _require(
        representation[has_instruction],
        "representation_similarity",
        f"instruction methods {', '.join(instruction_methods)}",
        {"methods": representation["method"]},
    )
    pairs = sorted(set(map(tuple, representation[has_instruction][["task", "model"]].values)))
    columns = [
        (representation, _SIMILARITY_TEXT[similarity][0]),
        (attention, _metric_label(attention_metric) + " to pretrained"),
        (probes, None),
    ]
    legend_w = LEGEND_W + 0.9  # the entries say what each line was tuned on
    fig, axes = plt.subplots(
        len(pairs), 3, squeeze=False, layout="constrained",
        figsize=figure_size(len(pairs), 3, legend_w=legend_w, extra_h=0.8),
    )  # fmt: skip
    handles: dict[str, Line2D] = {}
    for r, (task, model) in enumerate(pairs):
        for c, (table, y_label) in enumerate(columns):
            ax = axes[r][c]
            here = table[(table["task"] == task) & (table["model"] == model)]
            for method, size, label, color in _variants(here, instruction_methods):
                if _draw(ax, here[(here["method"] == method) & (here["size"] == size)], color):
                    handles.setdefault(label, Line2D([], [], color=color, label=label))
            if table is probes:
                pretrained = here[here["method"] == PRETRAINED]
                if _draw(ax, pretrained, PRETRAINED_COLOR, dashes=(3, 2)):
                    handles.setdefault(PRETRAINED, Line2D([], [], color=PRETRAINED_COLOR,
                                       dashes=(3, 2), label=PRETRAINED))  # fmt: skip
                y_label = f"{probe} probe {chosen[task]}"
            ax.set_ylabel(y_label)
            ax.ticklabel_format(axis="y", useOffset=False)  # 0.99999, not 1e-6 + 0.9999
            ax.set_title(_panel_title(task, model), fontsize="medium")
            _layer_ticks(ax, False)
            if r == len(pairs) - 1:
                ax.set_xlabel("layer")
    legend = list(handles.values())
    _outside_legend(fig, legend)
    notes = _band_note(representation[has_instruction])
    _suptitle(
        fig,
        "Instruction tuning vs task fine-tuning per layer: similarity to the pretrained model "
        f"(1 = unchanged) and the probe score, {split} split\n{notes}",
        legend_w,
    )
    return fig


def plot_instruction_tuning(
    probes, attention, representation, out_stem: str | Path, **options
) -> list[Path]:
    """`build_instruction_tuning`, saved as ``<out_stem>.png`` and ``.pdf``."""
    return _save(build_instruction_tuning(probes, attention, representation, **options), out_stem)
