"""The workflow's figures, from the tidy result tables (see `bioprobe.summary` for the columns).

Every figure has a ``build_*`` function returning the matplotlib `Figure` (for tests and
notebooks) and a ``plot_*`` function that builds it, writes ``<stem>.png`` and ``<stem>.pdf``
with `save_figure`, closes it and returns the written paths.

Layouts are computed from the data: one panel per task × model (or per task × metric, or per
measure), panel sizes fixed in inches so a figure grows with its grid instead of squeezing it,
one legend outside the panels on the right, layer axes thinned to a handful of ticks. When
models of different depth share a figure, layer axes show normalised depth (layer / L). Nothing
depends on model names, hidden sizes or depths.

Metrics are chosen per task by the caller (`metrics=`: a mapping ``{task: metric}``, or one
metric for every task); the workflow passes each task type's ``main_metric`` and
``probe_metric``, so no figure knows a task type.

Missing input: a table that is ``None``, empty, lacks its columns or has no rows for the
requested probe / metric / split raises a `ValueError` that names the table and what it does
have, rather than writing an empty figure that would pass unnoticed into a report.
"""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from bioprobe.blurb import BLURB_NAME, CATEGORIES, coverage_note
from bioprobe.chance import chance_value, read_chance
from bioprobe.methods.full import Full
from bioprobe.pipeline.grid import PRETRAINED, RANDOM_INIT, split_instructed
from bioprobe.pipeline.tables import DOWNSTREAM_INTERVAL, KEY, PROBE_SWEEP_COLUMNS
from bioprobe.plotting.style import (
    LEGEND_W,
    PANEL_H,
    PANEL_W,
    PRETRAINED_COLOR,
    RANDOM_COLOR,
    figure_size,
    model_colors,
    model_markers,
    save_figure,
    size_colors,
    style_context,
    tick_step,
)
from bioprobe.summary import (
    CORRELATION_COLUMNS,
    GROUP,
    MEASURES,
    POOLED,
    SPECIAL_METHODS,
    TaskMetrics,
    check_prompting,
    internal_measures,
    load_table,
    task_metrics,
)
from bioprobe.summary import correlations as compute_correlations

__all__ = [
    "build_attention_by_layer",
    "build_attention_heatmaps",
    "build_blurb",
    "build_correlations",
    "build_downstream",
    "build_probe_sweep",
    "build_probes",
    "build_probes_mdl",
    "build_representation_similarity",
    "internal_measures",
    "plot_attention_by_layer",
    "plot_attention_heatmaps",
    "plot_blurb",
    "plot_correlations",
    "plot_downstream",
    "plot_probe_sweep",
    "plot_probes",
    "plot_probes_mdl",
    "plot_representation_similarity",
]

#: Metrics drawn per task: one metric for all, or {task: metric or [metrics, headline first]}.
DrawnMetrics = str | Mapping[str, str | Sequence[str]]
_HEATMAP_CMAP = "viridis"
_BAND = {"alpha": 0.13, "linewidth": 0}


# --------------------------------------------------------------------------------- helpers


def _styled(fn):
    """Run a build function inside the bioprobe style (rc settings scoped to the call)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with style_context():
            return fn(*args, **kwargs)

    return wrapper


def _require(df: pd.DataFrame, name: str, what: str, has: dict[str, Sequence]) -> None:
    if df.empty:
        detail = "; ".join(f"{k}: {sorted(map(str, set(v)))}" for k, v in has.items())
        raise ValueError(f"the {name} table has no rows for {what} (it has {detail})")


def _finetune_methods(methods) -> list[str]:
    return sorted(m for m in set(methods) if m not in SPECIAL_METHODS)


def _variant_label(method: str, size: int) -> str:
    if method in SPECIAL_METHODS:
        return method
    return f"{int(size)}%"


def _variant_order(df: pd.DataFrame) -> list[tuple[str, str, int]]:
    """(label, method, size) of the variants in `df`: random-init, pretrained, sizes ascending."""
    rank = {RANDOM_INIT: 0, PRETRAINED: 1}
    pairs = df[["method", "size"]].drop_duplicates()
    out = {}
    for method, size in sorted(
        pairs.itertuples(index=False), key=lambda p: (rank.get(p[0], 2), int(p[1]), p[0])
    ):
        out.setdefault(_variant_label(method, size), (method, int(size)))
    return [(label, m, s) for label, (m, s) in out.items()]


def _variant_colors(df: pd.DataFrame) -> dict[str, tuple]:
    sizes = size_colors(df.loc[~df["method"].isin(SPECIAL_METHODS), "size"])
    colors = {}
    for label, method, size in _variant_order(df):
        if method == RANDOM_INIT:
            colors[label] = RANDOM_COLOR
        elif method == PRETRAINED:
            colors[label] = PRETRAINED_COLOR
        else:
            colors[label] = sizes[size]
    return colors


def _row_facets(df: pd.DataFrame) -> list[tuple[str, str | None]]:
    """Panel rows: one per task, or per task × fine-tuning method when there are several (or
    the only one is not full fine-tuning: the row title then names it)."""
    methods = _finetune_methods(df["method"])
    rows = []
    for task in sorted(df["task"].unique()):
        if not methods or methods == [Full.name]:  # the default method needs no row title
            rows.append((task, None))
        else:
            rows += [(task, m) for m in methods]
    return rows


def _row_data(df: pd.DataFrame, task: str, method: str | None) -> pd.DataFrame:
    d = df[df["task"] == task]
    if method is not None:
        d = d[d["method"].isin([*SPECIAL_METHODS, method])]
    return d


def _row_title(task: str, method: str | None) -> str:
    return task if method is None else f"{task} ({method})"


def _no_data(ax) -> None:
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _depth_axis(df: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """Add column ``x``: the layer, or layer / L (L = the model's deepest layer) when depths
    differ between the models in `df`."""
    depth = df.groupby("model")["layer"].transform("max")
    normalise = df.groupby("model")["layer"].max().nunique() > 1
    df = df.assign(x=df["layer"] / depth if normalise else df["layer"])
    return df, bool(normalise)


def _layer_ticks(ax, normalised: bool) -> None:
    if normalised:
        ax.set_xlim(-0.02, 1.02)
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
        ax.set_xticklabels(["0", ".25", ".5", ".75", "1"])
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True, steps=[1, 2, 4, 5, 10]))


def _outside_legend(fig: Figure, handles: list, title: str | None = None) -> None:
    fig.legend(
        handles=handles,
        loc="outside right upper",
        title=title,
        frameon=False,
        handlelength=2.6,
        alignment="left",
    )


def _suptitle(fig: Figure, text: str, legend_w: float) -> None:
    """Figure title centred over the panels, not over panels + legend (it would run into it),
    wrapped to their width."""
    width = fig.get_size_inches()[0]
    available = width - legend_w
    max_chars = max(20, int(available / 0.1))  # ~0.1 inch per character at 11 pt
    lines = [textwrap.fill(line, max_chars) for line in text.split("\n")]
    fig.suptitle("\n".join(lines), x=available / 2 / width)


def _panel_title(*parts: str) -> str:
    """Parts joined by ' · ', or one per line when that would overflow a panel's width."""
    joined = " · ".join(parts)
    return joined if len(joined) <= 36 else "\n".join(parts)


def _spacer() -> Line2D:
    return Line2D([], [], linestyle="none", label=" ")


def _n_seeds(df: pd.DataFrame) -> int:
    """The most seeds any variant of `df` has (1 when it has no seed column)."""
    if "seed" not in df.columns or df.empty:
        return 1
    keys = [c for c in GROUP if c in df.columns]
    return int(df.groupby(keys)["seed"].nunique().max())


def _band_note(df: pd.DataFrame) -> str:
    """What a band means, said only where one is drawn (several seeds)."""
    return "band = sd over seeds" if _n_seeds(df) > 1 else "one seed, no band"


_CHANCE_LINE = {"color": "0.4", "linewidth": 0.9, "zorder": 0.6}
_CHANCE_FILL = {"color": "0.9", "linewidth": 0, "zorder": 0.1}


def _chance_line(ax: Axes, level: float | None) -> bool:
    """The chance level as a horizontal line (its value joins the y range); False if none."""
    if level is None:
        return False
    ax.axhline(level, **_CHANCE_LINE)
    return True


def _shade_below_chance(levels: Sequence[tuple[Axes, float]]) -> None:
    """Shade each panel below its chance line, once every panel is drawn: shared y axes have
    their final limits only then, and the limits are kept as they are."""
    for ax, level in levels:
        lo, hi = ax.get_ylim()
        ax.axhspan(min(lo, level), level, **_CHANCE_FILL)
        ax.set_ylim(lo, hi)


def _chance_handle() -> Patch:
    return Patch(facecolor=_CHANCE_FILL["color"], edgecolor=_CHANCE_LINE["color"], label="chance")


# ------------------------------------------------------------------ per-layer line figures

_DASHES = {
    "task": "",
    "control": (3.5, 2.0),
    "random": (1.2, 1.6),
    "random control": (4, 1.5, 1, 1.5),
}


def _curve_data(data: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """`data` with the x axis (``x``, see `_depth_axis`), the legend entry (``variant``) and
    the dash pattern (``kind``: task / control, and their random-init forms) of each row."""
    data, normalised = _depth_axis(data)
    is_random = data["method"] == RANDOM_INIT
    kind = np.where(data["target"] == "control", "control", "task")
    data = data.assign(
        variant=[_variant_label(m, s) for m, s in zip(data["method"], data["size"], strict=True)],
        kind=np.where(is_random, np.where(kind == "control", "random control", "random"), kind),
    )
    return data, normalised


def _draw_curves(ax, panel: pd.DataFrame, order: list[str], palette: dict[str, tuple]) -> None:
    """One panel's lines: control lines thin and without a band first, task lines over them
    with the sd band over seeds."""
    for target, width, errorbar in (("control", 0.9, None), ("task", 1.4, "sd")):
        part = panel[panel["target"] == target]
        if part.empty:
            continue
        sns.lineplot(
            data=part,
            x="x",
            y="value",
            hue="variant",
            hue_order=[v for v in order if v in set(part["variant"])],
            palette=palette,
            style="kind",
            dashes=_DASHES,
            errorbar=errorbar,
            err_kws=_BAND,
            linewidth=width,
            legend=False,
            ax=ax,
        )


#: the legend's names of the solid (task) and dashed (control) lines of a probe figure
TARGET_LABELS = ("task labels", "control task")


def _style_handles(kinds: set[str], labels: tuple[str, str] = TARGET_LABELS) -> list[Line2D]:
    """A legend entry for each control line style drawn: the control task, and random-init's
    control (random-init's task line has its variant entry)."""
    if "control" not in kinds and "random control" not in kinds:
        return []
    handles = [Line2D([], [], color="0.35", dashes=(), label=labels[0])]
    if "control" in kinds:
        handles.append(
            Line2D([], [], color="0.35", dashes=_DASHES["control"], lw=0.9, label=labels[1])
        )
    if "random control" in kinds:
        handles.append(
            Line2D(
                [],
                [],
                color=RANDOM_COLOR,
                dashes=_DASHES["random control"],
                lw=0.9,
                label="random-init control",
            )
        )
    return handles


def _curve_legend(
    fig: Figure,
    order: list[str],
    palette: dict,
    kinds: set[str],
    chance: bool,
    target_labels: tuple[str, str] = TARGET_LABELS,
) -> None:
    """One entry per variant (in its own line style), then the line styles of the task and
    control lines when there are controls, then the chance level when drawn."""
    handles = [
        Line2D(
            [],
            [],
            color=palette[v],
            dashes=_DASHES["random"] if v == RANDOM_INIT else (),
            linewidth=1.6,
            label=v,
        )
        for v in order
    ]
    styles = _style_handles(kinds, target_labels)
    if styles:
        handles += [_spacer(), *styles]
    if chance:
        handles += [_spacer(), _chance_handle()]
    _outside_legend(fig, handles, title="training data")


def _layer_curves_figure(
    data: pd.DataFrame,
    *,
    y_label: str | Mapping[str, str],
    suptitle: str,
    sharey: str | bool,
    chance: Mapping[str, float] | None = None,
    note: str = "",
    target_labels: tuple[str, str] = TARGET_LABELS,
    zero_line: bool = False,
) -> Figure:
    """Lines of ``value`` against layer, a line per variant (colour) and target (dashes).

    `data`: KEY + ``layer``, ``value`` and ``target`` (``task`` or ``control``); one row per seed
    and layer (seeds give the sd band of the task lines). `y_label`: one for every row of
    panels, or one per task. `chance`: per task, a chance level to draw (tasks it lacks get
    none). `suptitle` gets a second line: `note`, then whether there is a band.
    `target_labels`: the legend's names of the solid and dashed lines; `zero_line`: a grey
    line at 0 (for differences).
    """
    data, normalised = _curve_data(data)
    order = [label for label, _, _ in _variant_order(data)]
    palette = _variant_colors(data)
    rows = _row_facets(data)
    models = sorted(data["model"].unique())
    n_rows, n_cols = len(rows), len(models)

    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=figure_size(n_rows, n_cols, legend_w=LEGEND_W),
        sharex=True,
        sharey=sharey,
        squeeze=False,
    )
    shaded = []
    for i, (task, method) in enumerate(rows):
        row = _row_data(data, task, method)
        for j, model in enumerate(models):
            ax = axes[i, j]
            panel = row[row["model"] == model]
            ax.set_title(_panel_title(_row_title(task, method), model))
            if panel.empty:
                _no_data(ax)
                continue
            if zero_line:
                ax.axhline(0.0, color="0.6", lw=0.8, zorder=0)
            _draw_curves(ax, panel, order, palette)
            level = (chance or {}).get(task)
            if _chance_line(ax, level):
                shaded.append((ax, level))
            _layer_ticks(ax, normalised)
            ax.set_xlabel("normalised depth (layer / L)" if normalised else "layer")
            label = y_label[task] if isinstance(y_label, Mapping) else y_label
            ax.set_ylabel(label if j == 0 else "")
            if i < n_rows - 1:
                ax.set_xlabel("")
    _shade_below_chance(shaded)
    kinds = set(data["kind"]) - {"task"}
    _curve_legend(fig, order, palette, kinds, bool(shaded), target_labels)
    second = "; ".join(x for x in (note, _band_note(data)) if x)
    _suptitle(fig, f"{suptitle}\n{second}", LEGEND_W)
    return fig


# ---------------------------------------------------------------------------- downstream


def _drawn_metrics(metrics: DrawnMetrics, task: str, present: set[str]) -> list[str]:
    """The metrics drawn for `task`, headline first: the headline must be in the table, the
    others are drawn where the task has them."""
    wanted = metrics if isinstance(metrics, str) else metrics.get(task)
    if wanted is None:
        raise ValueError(f"metrics gives no metric for task {task!r}")
    wanted = [wanted] if isinstance(wanted, str) else list(wanted)
    if not wanted or wanted[0] not in present:
        raise ValueError(
            f"the downstream table has no {wanted[0] if wanted else None!r} rows for task"
            f" {task!r} (it has {', '.join(sorted(present))})"
        )
    return [m for m in dict.fromkeys(wanted) if m in present]


def _downstream_rows(
    df, metrics: DrawnMetrics, split: str
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """The `split` rows of the metrics drawn, and the panels: (task, metric) pairs in order."""
    df = load_table(df, "downstream")
    d = df[df["split"] == split]
    _require(d, "downstream", f"split {split!r}", {"splits": df["split"]})
    panels = []
    for task in sorted(d["task"].unique()):
        present = set(d.loc[d["task"] == task, "metric"])
        panels += [(task, m) for m in _drawn_metrics(metrics, task, present)]
    d = d[pd.MultiIndex.from_frame(d[["task", "metric"]]).isin(panels)]
    return d, panels


def _with_pretrained_start(d: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The fine-tuned rows plus the pretrained rows copied into every fine-tuning method (the
    pretrained model, size 0, is the first point of each method's line), and those methods."""
    methods = _finetune_methods(d["method"])
    pre = d[d["method"] == PRETRAINED]
    ft = d[~d["method"].isin(SPECIAL_METHODS)]
    if methods:
        d = pd.concat([ft, *[pre.assign(method=m) for m in methods]], ignore_index=True)
    else:
        d = pre
    return d, methods


def _draw_downstream_panel(
    ax,
    part: pd.DataFrame,
    models: list[str],
    colors: dict,
    markers: dict,
    dashes: dict | None,
    errorbar: str | None = "sd",
) -> None:
    """Lines per model with the sd band over seeds (dashed by method when `dashes` is given),
    markers by model on the seed means."""
    style = dict(style="method", dashes=dashes, markers=False) if dashes is not None else {}
    sns.lineplot(
        data=part,
        x="size",
        y="value",
        hue="model",
        hue_order=[m for m in models if m in set(part["model"])],
        palette=colors,
        errorbar=errorbar,
        err_style="band",
        err_kws=_BAND,
        legend=False,
        ax=ax,
        **style,
    )
    # seaborn ties markers to `style` (the method here), so draw the model markers on the means
    means = part.groupby(["model", "method", "size"], as_index=False)["value"].mean()
    for model, g in means.groupby("model"):
        ax.plot(
            g["size"],
            g["value"],
            linestyle="none",
            marker=markers[model],
            color=colors[model],
            markeredgecolor="white",
            markeredgewidth=0.5,
        )


def _draw_intervals(ax, part: pd.DataFrame, models: list[str], colors: dict) -> None:
    """Each point's confidence interval (``ci_low``, ``ci_high``) as an error bar in its
    model's colour, the models' bars nudged apart (1 % of the size axis) so that none hides
    another; points without one get none."""
    part = part.dropna(subset=["ci_low", "ci_high"])
    drawn = [m for m in models if m in set(part["model"])]
    step = 0.01 * max(float(part["size"].max()), 1.0) if len(part) else 0.0
    for k, model in enumerate(drawn):
        g = part[part["model"] == model]
        ax.errorbar(
            g["size"] + (k - (len(drawn) - 1) / 2) * step,
            g["value"],
            yerr=[g["value"] - g["ci_low"], g["ci_high"] - g["value"]],
            fmt="none",
            ecolor=colors[model],
            elinewidth=0.8,
            capsize=2.0,
            alpha=0.8,
        )


def _downstream_band_note(d: pd.DataFrame, confidence: float) -> str:
    """What the bands or bars around the lines mean: the sd over seeds with several seeds,
    else each run's bootstrap interval over test examples where the table has them."""
    n = _n_seeds(d)
    if n > 1:
        return f"band = sd over seeds (up to {n} per point)"
    if d[["ci_low", "ci_high"]].notna().to_numpy().any():
        return f"one seed; bars = {confidence:.0%} bootstrap CI over test examples"
    return "one seed, no band"


#: a dash pattern per fine-tuning method where lines are coloured by model
_METHOD_DASHES = ["", (4, 2), (1.5, 1.5), (5, 1.5, 1, 1.5)] * 4


def _method_dashes(methods: list[str]) -> dict | None:
    return dict(zip(methods, _METHOD_DASHES, strict=False)) if len(methods) > 1 else None


#: per prompting method, its line's dash pattern and its open marker (its colour: the model's)
_PROMPTING_STYLES = [((5, 2), "D"), ((1.2, 1.5), "v"), ((6, 1.5, 1.5, 1.5), "p"), ((2.5, 2.5), "h")]
#: a prompting marker is open: the pretrained point at size 0 is filled
_PROMPTING_MARKER = {"markerfacecolor": "white", "markeredgewidth": 1.3}


def _prompting_styles(prompting: Sequence[str]) -> dict[str, tuple]:
    return {
        m: _PROMPTING_STYLES[i % len(_PROMPTING_STYLES)] for i, m in enumerate(sorted(prompting))
    }


def _split_prompting(
    d: pd.DataFrame, prompting: Sequence[str], name: str
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, tuple]]:
    """The rows of `d` (of the `name` table) that are not prompting, those that are, and the
    style of each prompting method present."""
    check_prompting(d, prompting, name)
    is_prompting = d["method"].isin(list(prompting))
    prompted = _instructed_levels(d[is_prompting])
    return d[~is_prompting], prompted, _prompting_styles(set(prompted["method"]))


def _instructed_levels(prompted: pd.DataFrame) -> pd.DataFrame:
    """An instruction-tuned model's evaluations (method ``<instruction>+<prompting>``) drawn
    as prompting levels too, at the largest size tuned, which their name then says
    (``instruct 100% + zero-shot``); every size is in the table."""
    parts = prompted["method"].map(split_instructed)
    is_instructed = parts.notna().to_numpy()
    instructed, parts = prompted[is_instructed], parts[is_instructed]
    if instructed.empty:
        return prompted
    largest = instructed.groupby("method")["size"].transform("max")
    keep = (instructed["size"] == largest).to_numpy()
    names = [
        f"{instruction} {int(size)}% + {prompting}"
        for (instruction, prompting), size in zip(
            parts[keep], instructed["size"][keep], strict=True
        )
    ]
    return pd.concat([prompted[~is_instructed], instructed[keep].assign(method=names)])


def _draw_prompting(
    ax,
    part: pd.DataFrame,
    models: list[str],
    colors: dict,
    styles: dict[str, tuple],
    right: float,
    intervals: bool,
) -> None:
    """Each prompting method's score per model (nothing trained, size 0): its mean over seeds
    as a dashed line across the panel in the model's colour, where the fine-tuning line that
    crosses it shows the data fine-tuning needs to beat it, and an open marker at the left
    edge, left of the pretrained point (another thing: the untrained head at size 0). The
    marker's bar is the sd over seeds (a few-shot seed draws other demonstrations), or with
    one seed its bootstrap interval (`intervals`) where known. `right`: the largest size
    drawn, which the markers' spacing follows."""
    if part.empty:
        return
    stats = part.groupby(["method", "model"])["value"].agg(["mean", "std", "count"])
    if intervals:
        ci = part.groupby(["method", "model"])[DOWNSTREAM_INTERVAL].mean()
    step = 0.035 * max(right, 1.0)
    drawn = [(m, model) for m in styles for model in models if (m, model) in stats.index]
    for k, (method, model) in enumerate(drawn):
        mean, sd, n = stats.loc[(method, model)]  # n: rows, one per seed
        dashes, marker = styles[method]
        yerr = None
        if n > 1:
            yerr = sd
        elif intervals and ci.loc[(method, model)].notna().all():
            low, high = ci.loc[(method, model)]
            yerr = [[mean - low], [high - mean]]
        ax.axhline(mean, color=colors[model], dashes=dashes, linewidth=1.1, zorder=1.8)
        ax.errorbar(
            -(k + 1) * step,
            mean,
            yerr=yerr,
            fmt=marker,
            color=colors[model],
            markersize=5.5,
            **_PROMPTING_MARKER,
            elinewidth=0.8,
            capsize=2.0,
            zorder=3,
        )


def _downstream_legend_width(models, methods, prompting: Mapping[str, tuple]) -> float:
    """Inches the legend of `_downstream_legend` takes (the title centres on the rest): its
    longest entry at ~0.085 inch a character, beside the line sample."""
    labels = [*models, *methods, *(f"{m} (prompting)" for m in prompting), "chance"]
    return max(1.7, 0.085 * max(map(len, labels)) + 0.75)


def _downstream_legend(
    fig: Figure,
    models: list[str],
    colors: dict,
    markers: dict,
    methods: list[str],
    chance: bool = False,
    prompting: Mapping[str, tuple] | None = None,
) -> None:
    """An entry per model (colour and marker), then per method (the dash pattern its lines
    have) when several, then per prompting method (its dashes and open marker), then the
    chance level when drawn."""
    handles = [
        Line2D([], [], color=colors[m], marker=markers[m], markeredgecolor="white", label=m)
        for m in models
    ]
    if len(methods) > 1:
        handles += [_spacer()] + [
            Line2D([], [], color="0.3", dashes=dash, label=m)
            for m, dash in _method_dashes(methods).items()
        ]
    if prompting:
        handles += [_spacer()] + [
            Line2D(
                [],
                [],
                color="0.3",
                dashes=dashes,
                linewidth=1.1,
                marker=marker,
                label=f"{m} (prompting)",
                **_PROMPTING_MARKER,
            )
            for m, (dashes, marker) in prompting.items()
        ]
    if chance:
        handles += [_spacer(), _chance_handle()]
    _outside_legend(fig, handles, title="model")


@_styled
def build_downstream(
    df,
    metrics: DrawnMetrics,
    split: str = "test",
    chance: pd.DataFrame | str | Path | None = None,
    confidence: float = 0.95,
    prompting: Sequence[str] = (),
) -> Figure:
    """Downstream score vs training size: a panel per task × metric, a line per model.

    `metrics`: per task the metric (or metrics, headline first) to draw; the workflow gives each
    task type's ``main_metric`` and, where it differs, its ``blurb_metric``. `chance`: the
    chance table (`bioprobe.chance`); a panel whose metric has a chance level on `split` gets
    its line. With several seeds a band shows the sd over seeds (training randomness); with
    one, error bars show each score's bootstrap interval over test examples (``ci_low``,
    ``ci_high``; `confidence` is its level, for the title).

    `prompting`: the method ids that prompt (size 0, nothing trained): each is a dashed
    horizontal line per model at its mean over seeds, from an open marker at the panel's left
    edge (`_draw_prompting`), instead of a line over sizes.
    """
    d, panels = _downstream_rows(df, metrics, split)
    note = _downstream_band_note(d, confidence)
    d, prompted, prompt_styles = _split_prompting(d, prompting, "downstream")
    d, methods = _with_pretrained_start(d)
    intervals = _n_seeds(pd.concat([d, prompted])) == 1
    table = read_chance(chance)
    models = sorted({*d["model"], *prompted["model"]})
    colors, markers = model_colors(models), model_markers(models)
    sizes = sorted(d["size"].unique())
    method_dashes = _method_dashes(methods)

    tasks = sorted({t for t, _ in panels})
    legend_w = _downstream_legend_width(models, methods, prompt_styles)
    n_cols = max(sum(1 for t, _ in panels if t == task) for task in tasks)
    fig, axes = plt.subplots(
        len(tasks),
        n_cols,
        figsize=figure_size(len(tasks), n_cols, legend_w=legend_w),
        sharex=True,
        squeeze=False,
    )
    shaded = []
    for i, task in enumerate(tasks):
        task_metrics = [m for t, m in panels if t == task]
        for j in range(n_cols):
            ax = axes[i, j]
            if j >= len(task_metrics):  # tasks with fewer metrics leave their row's tail empty
                ax.set_visible(False)
                continue
            metric = task_metrics[j]
            part = d[(d["task"] == task) & (d["metric"] == metric)]
            if not part.empty:  # a task only prompted (no size 0, no training method)
                _draw_downstream_panel(ax, part, models, colors, markers, method_dashes)
            if intervals:
                _draw_intervals(ax, part, models, colors)
            here = prompted[(prompted["task"] == task) & (prompted["metric"] == metric)]
            right = max(sizes, default=0)
            _draw_prompting(ax, here, models, colors, prompt_styles, right, intervals)
            level = chance_value(table, task, split, metric)
            if _chance_line(ax, level):
                shaded.append((ax, level))
            ax.set_title(_panel_title(task, metric))
            ax.set_xticks(sizes)
            ax.set_ylabel(metric)
            ax.set_xlabel("% of the train split (0 = pretrained)")
            if i < len(tasks) - 1:
                ax.set_xlabel("")
            ax.xaxis.set_tick_params(labelbottom=True)
    _shade_below_chance(shaded)
    _downstream_legend(
        fig, models, colors, markers, methods, chance=bool(shaded), prompting=prompt_styles
    )
    title = f"Downstream score ({split} split) vs training data\n{note}"
    _suptitle(fig, title, legend_w)
    return fig


def plot_downstream(
    df,
    out_stem: str | Path,
    metrics: DrawnMetrics,
    split: str = "test",
    chance: pd.DataFrame | str | Path | None = None,
    confidence: float = 0.95,
    prompting: Sequence[str] = (),
) -> list[Path]:
    """`build_downstream`, saved as ``<out_stem>.png`` and ``.pdf``."""
    fig = build_downstream(
        df, metrics, split=split, chance=chance, confidence=confidence, prompting=prompting
    )
    return _save(fig, out_stem)


# --------------------------------------------------------------------------------- BLURB


def _blurb_panels(d: pd.DataFrame) -> list[tuple[str, str]]:
    """(level, name) of each panel: the BLURB score, then each category in BLURB's order."""
    present = set(d.loc[d["level"] == "category", "name"])
    return [("blurb", BLURB_NAME)] + [("category", c) for c in CATEGORIES if c in present]


def _blurb_panel_title(part: pd.DataFrame, name: str) -> str:
    """The panel's name and what its mean is over (``5/5 datasets``), or that runs differ."""
    coverages = set(part["coverage"])
    if len(coverages) > 1:
        return f"{name}\n(coverage differs between runs)"
    # the count only: the suptitle names the missing categories, blurb.tsv the missing datasets
    count = coverages.pop().split(" (")[0].split(";")[0]
    return f"{name}\n({count})"


def _blurb_suptitle(d: pd.DataFrame, n_seeds: int) -> str:
    """What the score is, whether there is a band, and the categories a partial run misses."""
    seeds = "band = sd over seeds" if n_seeds > 1 else "one seed, no band"
    lines = [
        "BLURB score vs training data",
        f"BLURB = mean of the category means; {seeds}",
    ]
    categories = set(d.loc[d["level"] == "category", "name"])
    if len(categories) < len(CATEGORIES):
        lines.append(f"covers {coverage_note(categories)}: not comparable with published scores")
    return "\n".join(lines)


@_styled
def build_blurb(df, prompting: Sequence[str] = ()) -> Figure:
    """BLURB score vs training size, a line per model (colour) × method (dashes), then the same
    for each category's mean; lines are seed means, with an sd band only over several seeds.
    `df`: the BLURB table (`bioprobe.blurb.blurb_table`, ``results/tables/blurb.tsv``).
    `prompting`: the method ids that prompt, drawn as in `build_downstream`."""
    table = load_table(df, "blurb")
    d = table[table["level"].isin(["blurb", "category"])]
    _require(d, "blurb", "level blurb or category", {"levels": table["level"]})
    keys = ["model", "method", "size", "level", "name"]
    n_seeds = int(d.groupby(keys)["seed"].nunique().max())
    errorbar = "sd" if n_seeds > 1 else None
    d, prompted, prompt_styles = _split_prompting(d, prompting, "blurb")
    d, methods = _with_pretrained_start(d)
    models = sorted({*d["model"], *prompted["model"]})
    colors, markers = model_colors(models), model_markers(models)
    method_dashes = _method_dashes(methods)
    sizes = sorted(d["size"].unique())

    panels = _blurb_panels(pd.concat([d, prompted]))
    n_cols = min(len(panels), 4)
    n_rows = -(-len(panels) // n_cols)
    legend_w = _downstream_legend_width(models, methods, prompt_styles)
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=figure_size(n_rows, n_cols, panel_h=PANEL_H + 0.2, legend_w=legend_w),
        squeeze=False,
    )
    flat = axes.ravel()
    for k, (level, name) in enumerate(panels):
        ax = flat[k]
        part = d[(d["level"] == level) & (d["name"] == name)]
        if not part.empty:  # a category only prompted
            _draw_downstream_panel(ax, part, models, colors, markers, method_dashes, errorbar)
        here = prompted[(prompted["level"] == level) & (prompted["name"] == name)]
        _draw_prompting(ax, here, models, colors, prompt_styles, max(sizes, default=0), False)
        ax.set_title(
            _blurb_panel_title(pd.concat([part, here]), name), fontweight="bold" if k == 0 else None
        )
        ax.set_xticks(sizes)
        ax.set_ylabel("BLURB score" if level == "blurb" else "category mean")
        below = k + n_cols < len(panels)  # the x label once per column, under its last panel
        ax.set_xlabel("" if below else "% of the train split (0 = pretrained)")
    for ax in flat[len(panels) :]:
        ax.set_visible(False)
    _downstream_legend(fig, models, colors, markers, methods, prompting=prompt_styles)
    _suptitle(fig, _blurb_suptitle(pd.concat([d, prompted]), n_seeds), legend_w)
    return fig


def plot_blurb(df, out_stem: str | Path, prompting: Sequence[str] = ()) -> list[Path]:
    """`build_blurb`, saved as ``<out_stem>.png`` and ``.pdf``."""
    return _save(build_blurb(df, prompting=prompting), out_stem)


# -------------------------------------------------------------------------------- probes


@_styled
def build_probes(
    df,
    probe: str = "linear",
    metric: TaskMetrics = "macro_f1",
    chance: pd.DataFrame | str | Path | None = None,
    split: str = "test",
) -> Figure:
    """Probe score vs layer: a panel per task (rows) × model (columns), a line per variant.
    `metric`: the probe score drawn, one for every task or ``{task: metric}``. `chance`: the
    chance table (`bioprobe.chance`); each task's chance level of its metric on `split` (the
    probes' score split) is drawn where there is one (0 for correlations without it)."""
    df = load_table(df, "probes")
    chosen = task_metrics(metric, df["task"], "metric")
    d = df[(df["probe"] == probe) & (df["metric"] == df["task"].map(chosen))]
    shared = set(chosen.values())
    single = shared.pop() if len(shared) == 1 else None  # tasks that share a metric name it once
    _require(
        d,
        "probes",
        f"probe {probe!r}, metric {single!r}" if single else f"probe {probe!r}, metrics {chosen}",
        {"probes": df["probe"], "metrics": df["metric"]},
    )
    d = d[[*KEY, "layer", "target", "value"]]
    table = read_chance(chance)
    levels = {task: chance_value(table, task, split, m) for task, m in chosen.items()}
    return _layer_curves_figure(
        d,
        y_label={task: f"probe {m}" for task, m in chosen.items()},
        suptitle=f"{probe} probe per layer: {single or 'the probe metric of each task'},"
        f" {split} split",
        sharey="row",
        chance={task: v for task, v in levels.items() if v is not None},
        note="control task dashed" if (d["target"] == "control").any() else "",
    )


def plot_probes(
    df,
    out_stem: str | Path,
    probe: str = "linear",
    metric: TaskMetrics = "macro_f1",
    chance: pd.DataFrame | str | Path | None = None,
    split: str = "test",
) -> list[Path]:
    """`build_probes`, saved as ``<out_stem>.png`` and ``.pdf``."""
    return _save(build_probes(df, probe=probe, metric=metric, chance=chance, split=split), out_stem)


@_styled
def build_probes_mdl(df, split: str = "validation") -> Figure:
    """MDL compression (uniform / online codelength, `bioprobe.probing.mdl`) vs layer on the
    probes' fit split `split`: a panel per task × model, a line per variant, the control task
    dashed; a line at 1 (no better than the uniform code), shaded below."""
    df = load_table(df, "probes")
    d = df[(df["probe"] == "mdl") & (df["metric"] == "compression")]
    _require(d, "probes", "probe 'mdl', metric 'compression'", {"probes": df["probe"]})
    d = d[[*KEY, "layer", "target", "value"]]
    return _layer_curves_figure(
        d,
        y_label="MDL compression",
        suptitle="MDL compression per layer",
        sharey="row",
        chance=dict.fromkeys(d["task"].unique(), 1.0),
        note=f"{split} split; shaded: below the uniform code",
    )


def plot_probes_mdl(df, out_stem: str | Path, split: str = "validation") -> list[Path]:
    """`build_probes_mdl`, saved as ``<out_stem>.png`` and ``.pdf``."""
    return _save(build_probes_mdl(df, split=split), out_stem)


# ----------------------------------------------------------------------------- attention


def _attention_rows(df, metric: str) -> pd.DataFrame:
    df = load_table(df, "attention_similarity")
    d = df[df["metric"] == metric]
    _require(d, "attention_similarity", f"metric {metric!r}", {"metrics": df["metric"]})
    return d


def _heatmap_scale(
    mean: pd.DataFrame, vmin: float | None, vmax: float | None
) -> tuple[plt.Normalize, str]:
    """The colour scale shared by every panel, and the colour bar's `extend` (an arrow at the
    ends that cells beyond the scale saturate at)."""
    ref = mean.loc[mean["method"] != RANDOM_INIT, "value"]
    ref = ref if not ref.empty else mean["value"]
    lo = float(ref.min()) if vmin is None else vmin
    hi = float(ref.max()) if vmax is None else vmax
    if lo >= hi:
        lo, hi = lo - 0.5, hi + 0.5
    below, above = bool((mean["value"] < lo).any()), bool((mean["value"] > hi).any())
    extend = {(False, False): "neither", (True, False): "min", (False, True): "max"}.get(
        (below, above), "both"
    )
    return plt.Normalize(lo, hi), extend


def _draw_heatmap(ax, cell: pd.DataFrame, norm: plt.Normalize) -> None:
    """One layer × head grid, layer 1 at the top, a handful of tick labels per axis."""
    grid = cell.pivot(index="layer", columns="head", values="value").sort_index()
    # pcolormesh, as sns.heatmap draws it (which redraws the whole figure per
    # panel to check its tick labels: quadratic in the number of panels)
    ax.pcolormesh(grid.to_numpy(), cmap=_HEATMAP_CMAP, norm=norm)
    ax.set_xlim(0, grid.shape[1])
    ax.set_ylim(grid.shape[0], 0)  # layer 1 at the top, as in a matrix
    ax.grid(False)
    for axis, labels, n_max in ((ax.xaxis, grid.columns, 5), (ax.yaxis, grid.index, 6)):
        step = tick_step(len(labels), n_max)
        pos = np.arange(0, len(labels), step)
        axis.set_ticks(pos + 0.5, [str(labels[k]) for k in pos])
    ax.tick_params(axis="both", length=0, labelsize=7)
    ax.tick_params(axis="y", labelrotation=0)
    ax.tick_params(axis="x", labelrotation=0)


def _heatmap_figure(
    t: pd.DataFrame, task: str, metric: str, norm: plt.Normalize, extend: str
) -> Figure:
    """One task's heat maps: a panel per model (rows) × variant (columns), one colour bar."""
    models = sorted(t["model"].unique())
    variants = _variant_order(t)
    methods = _finetune_methods(t["method"])
    n_rows, n_cols = len(models), len(variants)
    heads = t.groupby("model")["head"].max()
    layers = t.groupby("model")["layer"].max()
    same_heads = heads.nunique() == 1
    aspect = float(np.clip(layers.max() / heads.max(), 0.6, 1.6))
    panel_w = 1.75
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=figure_size(n_rows, n_cols, panel_w, panel_w * aspect + 0.15, legend_w=1.1),
        squeeze=False,
    )
    for i, model in enumerate(models):
        for j, (label, method, size) in enumerate(variants):
            ax = axes[i, j]
            cell = t[(t["model"] == model) & (t["method"] == method) & (t["size"] == size)]
            title = label if len(methods) <= 1 or method in SPECIAL_METHODS else f"{method} {label}"
            ax.set_title(title if i == 0 else "")
            if cell.empty:
                _no_data(ax)
                continue
            _draw_heatmap(ax, cell, norm)
            # axis labels on the outer panels only; head ticks too when every model has as many
            ax.set_ylabel(f"{model}\nlayer" if j == 0 else "")
            if j > 0:
                ax.set_yticklabels([])
            ax.set_xlabel("head" if i == n_rows - 1 else "")
            if i < n_rows - 1 and same_heads:
                ax.set_xticklabels([])
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=_HEATMAP_CMAP)
    fig.colorbar(
        mappable,
        ax=axes,
        location="right",
        shrink=min(0.8, 3.5 / n_rows + 0.2),
        label=_metric_label(metric),
        aspect=25,
        extend=extend,
    )
    what = " to the pretrained model" if metric in ("cosine", "js_divergence") else ""
    _suptitle(fig, f"{task}: attention {metric}{what} per layer and head, mean over seeds", 1.1)
    return fig


@_styled
def build_attention_heatmaps(
    df, metric: str = "cosine", vmin: float | None = None, vmax: float | None = None
) -> dict[str, Figure]:
    """Layer × head heat maps of `metric` (mean over seeds), one figure per task: a panel per
    model (rows) × variant (columns), one colour scale shared by every panel of every task.

    The scale spans the pretrained and fine-tuned cells of all tasks (unless `vmin` / `vmax`
    are given): the random-weights control is usually far off and would flatten the contrast
    between sizes; its cells beyond the scale saturate and the colour bar gets an arrow.
    """
    d = _attention_rows(df, metric)
    mean = d.groupby([*GROUP, "layer", "head"], as_index=False)["value"].mean()
    norm, extend = _heatmap_scale(mean, vmin, vmax)
    return {
        task: _heatmap_figure(mean[mean["task"] == task], task, metric, norm, extend)
        for task in sorted(mean["task"].unique())
    }


def plot_attention_heatmaps(
    df,
    out_stem: str | Path,
    metric: str = "cosine",
    vmin: float | None = None,
    vmax: float | None = None,
) -> list[Path]:
    """`build_attention_heatmaps`: one file pair per task, ``<out_stem>_<task>.png``/``.pdf``."""
    paths = []
    stem = Path(out_stem)
    for task, fig in build_attention_heatmaps(df, metric=metric, vmin=vmin, vmax=vmax).items():
        paths += _save(fig, stem.with_name(f"{stem.name}_{task}"))
    return paths


def _metric_label(metric: str) -> str:
    """Short axis label of an attention metric (fits a 2.4-inch panel)."""
    return {
        "cosine": "attention cosine",
        "js_divergence": "attention JS divergence",
        "entropy": "attention entropy (nats)",
    }.get(metric, f"attention {metric}")


@_styled
def build_attention_by_layer(df, metric: str = "cosine") -> Figure:
    """Mean `metric` per layer (over heads, then seeds) against layer, a line per variant;
    a panel per task (rows) × model (columns)."""
    d = _attention_rows(df, metric)
    per_layer = d.groupby([*KEY, "layer"], as_index=False)["value"].mean()
    what = " to the pretrained model" if metric in ("cosine", "js_divergence") else ""
    return _layer_curves_figure(
        per_layer.assign(target="task"),
        y_label=_metric_label(metric),
        suptitle=f"Attention {metric}{what} per layer, mean over heads",
        sharey=True,
    )


def plot_attention_by_layer(df, out_stem: str | Path, metric: str = "cosine") -> list[Path]:
    """`build_attention_by_layer`, saved as ``<out_stem>.png`` and ``.pdf``."""
    return _save(build_attention_by_layer(df, metric=metric), out_stem)


# ------------------------------------------------------------- representation similarity

#: per measure (analysis.repsim.METRICS): axis label, title, and which way is "more similar"
_SIMILARITY_TEXT = {
    "cka": (
        "linear CKA to pretrained",
        "Linear CKA to the pretrained model per layer",
        "1 = same geometry, lower = moved",
    ),
    "procrustes": (
        "Procrustes distance (rad)",
        "Procrustes distance to the pretrained model per layer",
        "0 = same shape, π/2 = unrelated",
    ),
    "svcca": (
        "SVCCA with pretrained",
        "SVCCA with the pretrained model per layer",
        "1 = same 99 % subspace, lower = moved",
    ),
}


@_styled
def build_representation_similarity(df, metric: str = "cka") -> Figure:
    """One representation-similarity measure to the pretrained model per layer, a line per
    variant; a panel per task (rows) × model (columns)."""
    if metric not in _SIMILARITY_TEXT:
        raise ValueError(
            f"unknown similarity metric {metric!r} (known: {', '.join(_SIMILARITY_TEXT)})"
        )
    d = load_table(df, "representation_similarity")
    rows = d[d["metric"] == metric]
    _require(rows, "representation_similarity", f"metric {metric!r}", {"metric": d["metric"]})
    y_label, title, reading = _SIMILARITY_TEXT[metric]
    return _layer_curves_figure(
        rows[[*KEY, "layer", "value"]].assign(target="task"),
        y_label=y_label,
        suptitle=title,
        sharey=True,
        note=reading,
    )


def plot_representation_similarity(df, out_stem: str | Path, metric: str = "cka") -> list[Path]:
    """`build_representation_similarity`, saved as ``<out_stem>.png`` and ``.pdf``."""
    return _save(build_representation_similarity(df, metric=metric), out_stem)


# -------------------------------------------------------------------------- correlations


def _format_corr(res: Mapping[str, float]) -> str:
    """ρ, its Holm-adjusted permutation p and n of one correlation, compact enough for a line
    of an in-panel legend."""
    n = int(res["n"])
    rho, p = res["spearman_rho"], res["spearman_p_holm"]
    if not np.isfinite(rho):
        return f"ρ n/a, n={n}"
    p_text = "p_Holm<0.001" if p < 0.001 else f"p_Holm={p:.2f}"
    return f"ρ={rho:+.2f}, {p_text}, n={n}"


def _measure_label(measure: str, attrs: dict) -> str:
    label = MEASURES.get(measure, measure)
    if measure.startswith("probe") and "probe" in attrs:
        metrics = set(attrs.get("probe_metrics", {}).values())  # named when all tasks share it
        metric = f", {metrics.pop()}" if len(metrics) == 1 else ""
        label += f"\n({attrs['probe']} probe{metric})"
    elif measure == "attention_similarity" and "attention_metric" in attrs:
        label = f"mean attention {attrs['attention_metric']}"
    return label


def _correlation_inputs(
    measures_df: pd.DataFrame | str | Path | None, measures: Sequence[str] | None
) -> tuple[pd.DataFrame, Sequence[str]]:
    """The measures table (read from a TSV path if needed), checked, and the measures to draw
    (default: the `MEASURES` columns with any value)."""
    if isinstance(measures_df, (str, Path)):
        measures_df = pd.read_csv(measures_df, sep="\t")
    if measures_df is None or measures_df.empty:
        raise ValueError("the measures table is empty (see internal_measures)")
    missing = [c for c in ("task", "model", "downstream") if c not in measures_df.columns]
    if missing:
        raise ValueError(f"the measures table lacks columns {missing} (see internal_measures)")
    if measures is None:
        measures = [
            m for m in MEASURES if m in measures_df.columns and measures_df[m].notna().any()
        ]
    if not measures:
        raise ValueError(
            f"the measures table has no internal measure with values (looked for {list(MEASURES)})"
        )
    return measures_df, measures


#: marker areas (pt²) of the smallest and the largest training size
_SIZE_AREAS = (14.0, 64.0)


def _size_areas(sizes) -> dict[int, float]:
    """Training size -> marker area, evenly spaced by rank (sizes are few and far apart)."""
    ordered = sorted({int(s) for s in sizes})
    lo, hi = _SIZE_AREAS
    step = (hi - lo) / max(1, len(ordered) - 1)
    return {s: lo + k * step if len(ordered) > 1 else hi for k, s in enumerate(ordered)}


def _draw_scatter(
    ax, part: pd.DataFrame, measure: str, colors: dict, areas: dict, method_markers: dict
) -> None:
    """Downstream score against `measure`: a point per run, colour = model, area = training
    size, marker = method (when several); a thin line per model and method through its seed
    means in order of size, so each model's path with more data shows."""
    if part.empty:
        _no_data(ax)
        return
    groups = ["model", "method"] if "method" in part.columns else ["model"]
    for key, g in part.groupby(groups, sort=True):
        model = key[0]
        method = key[1] if len(key) > 1 else None
        path = g.groupby("size", sort=True)[[measure, "downstream"]].mean()
        ax.plot(path[measure], path["downstream"], color=colors[model], lw=0.8, alpha=0.45)
        ax.scatter(
            g[measure],
            g["downstream"],
            s=[areas[int(x)] for x in g["size"]],
            color=colors[model],
            marker=method_markers.get(method, "o"),
            alpha=0.9,
            edgecolors="white",
            linewidths=0.4,
            zorder=3,
        )


def _add_statistics(ax, stats: pd.DataFrame, models: list[str], colors: dict) -> None:
    """The panel's Spearman ρ, Holm-adjusted p and n per model (a line in its colour), then
    over the models pooled: its rows of `correlations.tsv`, indexed by model; where it covers
    the fewest points."""
    present = [m for m in models if m in stats.index]
    handles = [
        Line2D([], [], color=colors[m], marker="o", linestyle="none", markersize=4) for m in present
    ]
    labels = [_format_corr(stats.loc[m]) for m in present]
    if len(present) > 1:
        handles.append(Line2D([], [], linestyle="none"))
        labels.append(f"pooled: {_format_corr(stats.loc[POOLED])}")
    ax.legend(
        handles=handles,
        labels=labels,
        loc="best",
        handlelength=0.8,
        handletextpad=0.4,
        fontsize=6.5,
        framealpha=0.85,
        borderpad=0.3,
        labelspacing=0.2,
    )


def _correlation_legend(
    fig: Figure, models: list[str], colors: dict, areas: dict, method_markers: dict
) -> None:
    """An entry per model (colour), per training size (marker area), then per method (marker)
    when methods are marked."""
    handles = [
        Line2D([], [], color=colors[m], marker="o", linestyle="none", label=m) for m in models
    ]
    handles += [_spacer()] + [
        Line2D(
            [],
            [],
            color="0.45",
            marker="o",
            markersize=float(np.sqrt(area)),
            linestyle="none",
            label=f"{size}% data",
        )
        for size, area in areas.items()
    ]
    if method_markers:
        handles += [_spacer()] + [
            Line2D([], [], color="0.3", marker=marker, linestyle="none", label=m)
            for m, marker in method_markers.items()
        ]
    title = "model / training data / method" if method_markers else "model / training data"
    _outside_legend(fig, handles, title=title)


def _measure_ticks(ax) -> None:
    """A handful of x ticks written out in full (similarities near 1 would otherwise get an
    offset label, "1e-5+9.999e-1", over the title); three when they are long enough to run
    into each other (0.99993, 0.99994, ...)."""
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.ticklabel_format(axis="x", useOffset=False)
    labels = ax.xaxis.get_major_formatter().format_ticks(list(ax.get_xticks()))
    if max((len(label) for label in labels), default=0) > 6:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=3))


def _correlation_table(
    table: pd.DataFrame | str | Path | None, d: pd.DataFrame, measures: Sequence[str]
) -> pd.DataFrame:
    """The correlations (`summary.correlations`' columns) indexed by measure, task and model:
    read from `table` (a path or frame), else computed from the measures `d`."""
    if table is None:
        table = compute_correlations(d, measures)
    elif isinstance(table, (str, Path)):
        table = pd.read_csv(table, sep="\t")
    missing = [c for c in CORRELATION_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"the correlations table lacks columns {missing}")
    return table.set_index(["measure", "task", "model"]).sort_index()


@_styled
def build_correlations(
    measures_df: pd.DataFrame,
    measures: Sequence[str] | None = None,
    correlations: pd.DataFrame | str | Path | None = None,
) -> Figure:
    """Downstream score against each internal measure (see `internal_measures`): a row per task
    (tasks score on different metrics, so they are never pooled), a column per measure; colour
    = model, marker area = training size, marker = fine-tuning method when there are several.
    Each panel states Spearman's ρ, its permutation p after Holm's adjustment over the task's
    row (every measure × model, pooled included) and n, per model and over its models pooled:
    the numbers of `correlations` (`correlations.tsv`; computed with the default permutation
    settings when not given). Training size moves both axes, so a pooled ρ mostly says which
    model and which size score higher; the per-model ρ says whether the measure tracks the
    score within a model."""
    d, measures = _correlation_inputs(measures_df, measures)
    table = _correlation_table(correlations, d, measures)
    methods = _finetune_methods(d["method"]) if "method" in d.columns else []
    method_markers = model_markers(methods) if len(methods) > 1 else {}
    models, tasks = sorted(d["model"].unique()), sorted(d["task"].unique())
    colors = model_colors(models)
    areas = _size_areas(d["size"]) if "size" in d.columns else {}
    n_rows, n_cols = len(tasks), len(measures)
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=figure_size(n_rows, n_cols, PANEL_W, PANEL_H + 0.3, legend_w=LEGEND_W),
        sharey="row",
        squeeze=False,
    )
    for i, task in enumerate(tasks):
        rows = d[d["task"] == task]
        metric = ", ".join(sorted(rows["metric"].dropna().unique())) if "metric" in d else ""
        for j, measure in enumerate(measures):
            ax = axes[i, j]
            part = rows[rows[measure].notna() & rows["downstream"].notna()]
            _draw_scatter(ax, part, measure, colors, areas, method_markers)
            ax.set_xlabel(_measure_label(measure, d.attrs) if i == n_rows - 1 else "")
            ax.set_ylabel(f"{task}\n{metric or 'downstream score'}" if j == 0 else "")
            _measure_ticks(ax)
            if not part.empty:
                _add_statistics(ax, table.loc[(measure, task)], models, colors)
    _correlation_legend(fig, models, colors, areas, method_markers)
    title = (
        "Downstream score (test split) against internal measures, per task\n"
        "Spearman ρ per model, then pooled over models (training size drives a pooled ρ);\n"
        "p: permutation test, Holm-adjusted over each task's row; points of one model are not"
        " independent"
    )
    _suptitle(fig, title, LEGEND_W)
    return fig


def plot_correlations(
    measures_df: pd.DataFrame,
    out_stem: str | Path,
    measures: Sequence[str] | None = None,
    correlations: pd.DataFrame | str | Path | None = None,
) -> list[Path]:
    """`build_correlations`, saved as ``<out_stem>.png`` and ``.pdf``."""
    return _save(build_correlations(measures_df, measures, correlations), out_stem)


# --------------------------------------------------------------------------- probe sweep

#: the two sweeps of `probing.sweep`: line style and marker, legend name
_SWEEP_STYLES = {
    "C": ({"linestyle": "-", "marker": "o"}, "C sweep (full rank)"),
    "rank": ({"linestyle": (0, (3.5, 2.0)), "marker": "s"}, "rank sweep (at the default C)"),
}


def _sweep_points(d: pd.DataFrame, default_C: float) -> pd.DataFrame:
    """Per variant (seeds averaged), complexity and setting: the task and control scores at
    one layer, the variant's best by task score at the C swept nearest `default_C`."""
    wide = (
        d.groupby([*GROUP, "layer", "complexity", "setting", "target"])["value"]
        .mean()
        .unstack("target")
        .rename(columns={"task": "task_score", "control": "control_score"})
        .reset_index()
    )
    c_rows = wide[wide["complexity"] == "C"]
    nearest = c_rows.loc[(np.log(c_rows["setting"]) - np.log(default_C)).abs().idxmin(), "setting"]
    at_default = c_rows[c_rows["setting"] == nearest]
    best = at_default.loc[at_default.groupby(GROUP)["task_score"].idxmax(), [*GROUP, "layer"]]
    return wide.merge(best, on=[*GROUP, "layer"])


def _draw_sweep(ax, points: pd.DataFrame, color, label_settings: bool, default_C: float) -> None:
    """One variant's sweeps, each a line through its settings in order; where
    `label_settings`, the first and last setting named, but on the default's point (its star)
    or an earlier label's (ranks from K - 1 up are all the full-rank probe's point)."""
    default = points[(points["complexity"] == "C") & np.isclose(points["setting"], default_C)]
    labelled = list(zip(default["control_score"], default["task_score"], strict=True))
    for complexity, (style, _) in _SWEEP_STYLES.items():
        line = points[points["complexity"] == complexity].sort_values("setting")
        if line.empty:
            continue
        ax.plot(line["control_score"], line["task_score"], color=color, lw=1.2, ms=3.5, **style)
        ends = line.iloc[[0, -1]].drop_duplicates(["control_score", "task_score"])
        for _, p in ends.iterrows() if label_settings else ():
            xy = (p["control_score"], p["task_score"])
            if any(np.allclose(xy, seen) for seen in labelled):
                continue
            labelled.append(xy)
            name = "C" if complexity == "C" else "rank "
            ax.annotate(
                f"{name}={p['setting']:g}" if name == "C" else f"{name}{p['setting']:g}",
                xy,
                xytext=(4, -9 if complexity == "C" else 4),
                textcoords="offset points",
                fontsize=6.5,
                color="0.3",
            )


def _sweep_panel(ax, panel: pd.DataFrame, order, palette, default_C: float) -> bool:
    """A panel's curves, its y = x line (selectivity 0, control at least as good below it)
    and the default setting starred; whether a default was found."""
    scores = panel[["control_score", "task_score"]]
    lo, hi = scores.min().min(), scores.max().max()
    pad = 0.05 * max(hi - lo, 0.05)
    lo, hi = lo - pad, hi + pad
    ax.fill_between([lo, hi], [lo, lo], [lo, hi], color="0.93", lw=0, zorder=0)
    ax.plot([lo, hi], [lo, hi], color="0.55", lw=0.8, ls=":", zorder=0.5)
    starred = False
    drawn = [v for v in order if v in set(panel["variant"])]
    named = PRETRAINED if PRETRAINED in drawn else drawn[0]  # whose settings are labelled
    for variant in drawn:
        points = panel[panel["variant"] == variant]
        _draw_sweep(ax, points, palette[variant], variant == named, default_C)
        default = points[(points["complexity"] == "C") & np.isclose(points["setting"], default_C)]
        for _, p in default.iterrows():
            xy = (p["control_score"], p["task_score"])
            ax.plot(*xy, marker="*", ms=11, color=palette[variant], mec="w")
            starred = True
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal", adjustable="box")
    return starred


@_styled
def build_probe_sweep(
    df, metric: TaskMetrics = "macro_f1", default_C: float = 1.0, split: str = "test"
) -> Figure:
    """The linear probe along its complexity (Hewitt & Liang 2019): control-task score (x)
    against task score (y) in each task's `metric` on `split`, a point per setting, the C
    sweep (full rank) and the rank sweep (at `default_C`) each a line in sweep order, a colour
    per variant, at the variant's best layer at `default_C` (starred); a panel per task ×
    model. Above the diagonal the probe is selective (task > control)."""
    if df is None or (isinstance(df, pd.DataFrame) and df.empty):
        raise ValueError("the probe_sweep table is missing or empty")
    d = pd.read_csv(df, sep="\t") if isinstance(df, str | Path) else df
    missing = [c for c in PROBE_SWEEP_COLUMNS if c not in d.columns]
    if missing:
        raise ValueError(f"the probe_sweep table lacks column(s) {', '.join(missing)}")
    chosen = task_metrics(metric, d["task"], "metric")
    rows = d[(d["metric"] == d["task"].map(chosen)) & d["target"].isin(["task", "control"])]
    _require(rows, "probe_sweep", f"metrics {chosen}", {"metrics": d["metric"]})
    points = pd.concat(
        [_sweep_points(part, default_C) for _, part in rows.groupby(["task", "model"])],
        ignore_index=True,
    )
    points["variant"] = [
        _variant_label(m, s) for m, s in zip(points["method"], points["size"], strict=True)
    ]
    order = [label for label, _, _ in _variant_order(points)]
    palette = _variant_colors(points)
    tasks, models = sorted(points["task"].unique()), sorted(points["model"].unique())
    size = figure_size(
        len(tasks), len(models), panel_w=PANEL_W + 0.3, panel_h=PANEL_W, legend_w=LEGEND_W + 0.6
    )
    fig, axes = plt.subplots(len(tasks), len(models), figsize=size, squeeze=False)
    starred = False
    for i, task in enumerate(tasks):
        for j, model in enumerate(models):
            ax = axes[i, j]
            ax.set_title(_panel_title(task, model))
            panel = points[(points["task"] == task) & (points["model"] == model)]
            if panel.empty:
                _no_data(ax)
                continue
            starred |= _sweep_panel(ax, panel, order, palette, default_C)
            ax.set_xlabel(f"control task {chosen[task]}")
            ax.set_ylabel(f"task {chosen[task]}" if j == 0 else "")
    handles = [Line2D([], [], color=palette[v], lw=1.6, label=v) for v in order]
    handles += [_spacer()]
    handles += [
        Line2D([], [], color="0.35", lw=1.2, ms=3.5, label=label, **style)
        for style, label in _SWEEP_STYLES.values()
    ]
    if starred:
        star = {"marker": "*", "ms": 10, "color": "0.35", "linestyle": "none"}
        handles.append(Line2D([], [], label=f"default (C = {default_C:g})", **star))
    handles.append(Line2D([], [], color="0.55", lw=0.8, ls=":", label="task = control"))
    _outside_legend(fig, handles, title="training data")
    _suptitle(
        fig,
        f"Probe complexity vs selectivity ({split} split)\n"
        f"layer: best at C = {default_C:g}; shaded: control ≥ task",
        LEGEND_W + 0.6,
    )
    return fig


def plot_probe_sweep(
    df,
    out_stem: str | Path,
    metric: TaskMetrics = "macro_f1",
    default_C: float = 1.0,
    split: str = "test",
) -> list[Path]:
    """`build_probe_sweep`, saved as ``<out_stem>.png`` and ``.pdf``."""
    return _save(build_probe_sweep(df, metric=metric, default_C=default_C, split=split), out_stem)


# ------------------------------------------------------------------------------- erasure


_MIN_DROP_RANGE = 0.05


@_styled
def build_erasure(df, metrics: TaskMetrics) -> Figure:
    """Causal erasure: per layer, how much each fine-tuned variant's test score (each task's
    `metrics`) drops when the layer's task information is erased (LEACE, solid) and when a
    random subspace of the same rank is (control, dashed); a panel per task × model."""
    d = load_table(df, "erasure")
    wanted = task_metrics(metrics, d["task"], "metrics")
    names = {task: f"{metric}_drop" for task, metric in wanted.items()}
    rows = d[d["metric"] == d["task"].map(names)]
    _require(rows, "erasure", "drop rows of the main metrics", {"metric": d["metric"]})
    fig = _layer_curves_figure(
        rows[[*KEY, "layer", "target", "value"]],
        y_label={task: f"{metric} drop" for task, metric in wanted.items()},
        suptitle="Score drop when a layer is erased",
        sharey=False,
        target_labels=("LEACE (task labels)", "random subspace"),
        zero_line=True,
    )
    for ax in fig.axes:  # at least ±0.05: a drop of one test example must not fill a panel
        low, high = ax.get_ylim()
        ax.set_ylim(min(low, -_MIN_DROP_RANGE), max(high, _MIN_DROP_RANGE))
    return fig


def plot_erasure(df, out_stem: str | Path, metrics: TaskMetrics) -> list[Path]:
    """`build_erasure`, saved as ``<out_stem>.png`` and ``.pdf``."""
    return _save(build_erasure(df, metrics), out_stem)


# ------------------------------------------------------------------------------- saving


def _save(fig: Figure, stem: str | Path) -> list[Path]:
    try:
        with style_context():  # savefig reads rc too (PDF font type, face colour)
            return save_figure(fig, stem)
    finally:
        plt.close(fig)
