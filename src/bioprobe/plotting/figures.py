"""The workflow's figures, from the tidy result tables (see `bioprobe.summary` for the columns).

Every figure has a ``build_*`` function returning the matplotlib `Figure` (for tests and
notebooks) and a ``plot_*`` function that builds it, writes ``<stem>.png`` and ``<stem>.pdf``
with `save_figure`, closes it and returns the written paths.

Layouts are computed from the data: one panel per task × model (or per task × metric, or per
measure), panel sizes fixed in inches so a figure grows with its grid instead of squeezing it,
one legend outside the panels on the right, layer axes thinned to a handful of ticks. When
models of different depth share a figure, layer axes show normalised depth (layer / L). Nothing
depends on model names, hidden sizes or depths.

Missing input: a table that is ``None``, empty, lacks its columns or has no rows for the
requested probe / metric / split raises a `ValueError` that names the table and what it does
have, rather than writing an empty figure that would pass unnoticed into a report.
"""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from bioprobe.methods.full import Full
from bioprobe.pipeline.grid import PRETRAINED, RANDOM_INIT
from bioprobe.pipeline.tables import CKA_COLUMNS, KEY
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
    GROUP,
    MAIN_METRICS,
    MEASURES,
    SPECIAL_METHODS,
    correlation,
    internal_measures,
    load_table,
)

__all__ = [
    "build_attention_by_layer",
    "build_attention_heatmaps",
    "build_cka",
    "build_correlations",
    "build_downstream",
    "build_probes",
    "downstream_metrics",
    "internal_measures",
    "plot_attention_by_layer",
    "plot_attention_heatmaps",
    "plot_cka",
    "plot_correlations",
    "plot_downstream",
    "plot_probes",
]

#: Main metrics drawn per task by `plot_downstream`, by task kind (recognised by its metrics).
NER_METRICS = ("entity_f1", "token_macro_f1")
PAIR_METRICS = ("accuracy", "macro_f1")
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


def _curve_legend(fig: Figure, order: list[str], palette: dict, has_control: bool) -> None:
    """One entry per variant, plus the task / control line styles when there are controls."""
    handles = [
        Line2D(
            [],
            [],
            color=palette[v],
            linestyle=":" if v == RANDOM_INIT else "-",
            linewidth=1.6,
            label=v,
        )
        for v in order
    ]
    if has_control:
        handles += [
            _spacer(),
            Line2D([], [], color="0.35", linestyle="-", label="task labels"),
            Line2D([], [], color="0.35", linestyle="--", linewidth=0.9, label="control task"),
        ]
    _outside_legend(fig, handles, title="training data")


def _layer_curves_figure(
    data: pd.DataFrame, *, y_label: str, suptitle: str, sharey: str | bool
) -> Figure:
    """Lines of ``value`` against layer, a line per variant (colour) and target (dashes).

    `data`: KEY + ``layer``, ``value`` and ``target`` (``task`` or ``control``); one row per seed
    and layer (seeds give the sd band of the task lines).
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
    for i, (task, method) in enumerate(rows):
        row = _row_data(data, task, method)
        for j, model in enumerate(models):
            ax = axes[i, j]
            panel = row[row["model"] == model]
            ax.set_title(_panel_title(_row_title(task, method), model))
            if panel.empty:
                _no_data(ax)
                continue
            _draw_curves(ax, panel, order, palette)
            _layer_ticks(ax, normalised)
            ax.set_xlabel("normalised depth (layer / L)" if normalised else "layer")
            ax.set_ylabel(y_label if j == 0 else "")
            if i < n_rows - 1:
                ax.set_xlabel("")

    _curve_legend(fig, order, palette, has_control=(data["target"] == "control").any())
    _suptitle(fig, suptitle, LEGEND_W)
    return fig


# ---------------------------------------------------------------------------- downstream


def downstream_metrics(metrics) -> list[str]:
    """The metrics `plot_downstream` draws for a task with these metrics."""
    present = set(metrics)
    for group in (NER_METRICS, PAIR_METRICS):
        if group[0] in present:
            return [m for m in group if m in present]
    for m in MAIN_METRICS:
        if m in present:
            return [m]
    return sorted(present)[:1]


def _downstream_rows(df, split: str) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """The `split` rows of the metrics drawn, and the panels: (task, metric) pairs in order."""
    df = load_table(df, "downstream")
    d = df[df["split"] == split]
    _require(d, "downstream", f"split {split!r}", {"splits": df["split"]})
    panels = []
    for task in sorted(d["task"].unique()):
        panels += [(task, m) for m in downstream_metrics(d.loc[d["task"] == task, "metric"])]
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
    ax, part: pd.DataFrame, models: list[str], colors: dict, markers: dict, dashes: dict | None
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
        errorbar="sd",
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


def _downstream_legend(
    fig: Figure, models: list[str], colors: dict, markers: dict, methods: list[str]
) -> None:
    """An entry per model (colour and marker), then per method (line style) when several."""
    handles = [
        Line2D([], [], color=colors[m], marker=markers[m], markeredgecolor="white", label=m)
        for m in models
    ]
    if len(methods) > 1:
        handles += [_spacer()] + [
            Line2D([], [], color="0.3", linestyle=ls, label=m)
            for m, ls in zip(methods, ["-", "--", ":", "-."] * 4, strict=False)
        ]
    _outside_legend(fig, handles, title="model")


@_styled
def build_downstream(df, split: str = "test") -> Figure:
    """Downstream score vs training size: a panel per task × main metric, a line per model."""
    d, panels = _downstream_rows(df, split)
    d, methods = _with_pretrained_start(d)
    models = sorted(d["model"].unique())
    colors, markers = model_colors(models), model_markers(models)
    sizes = sorted(d["size"].unique())
    dashes = ["", (4, 2), (1.5, 1.5), (5, 1.5, 1, 1.5)] * 4
    method_dashes = dict(zip(methods, dashes, strict=False)) if len(methods) > 1 else None

    tasks = sorted({t for t, _ in panels})
    legend_w = 1.7
    n_cols = max(sum(1 for t, _ in panels if t == task) for task in tasks)
    fig, axes = plt.subplots(
        len(tasks),
        n_cols,
        figsize=figure_size(len(tasks), n_cols, legend_w=legend_w),
        sharex=True,
        squeeze=False,
    )
    for i, task in enumerate(tasks):
        task_metrics = [m for t, m in panels if t == task]
        for j in range(n_cols):
            ax = axes[i, j]
            if j >= len(task_metrics):  # tasks with fewer metrics leave their row's tail empty
                ax.set_visible(False)
                continue
            metric = task_metrics[j]
            part = d[(d["task"] == task) & (d["metric"] == metric)]
            _draw_downstream_panel(ax, part, models, colors, markers, method_dashes)
            ax.set_title(_panel_title(task, metric))
            ax.set_xticks(sizes)
            ax.set_ylabel(metric)
            ax.set_xlabel("training data (% of train split; 0 = pretrained)")
            if i < len(tasks) - 1:
                ax.set_xlabel("")
            ax.xaxis.set_tick_params(labelbottom=True)
    _downstream_legend(fig, models, colors, markers, methods)
    _suptitle(
        fig, f"Downstream score ({split} split) vs training data\nband = sd over seeds", legend_w
    )
    return fig


def plot_downstream(df, out_stem: str | Path, split: str = "test") -> list[Path]:
    """`build_downstream`, saved as ``<out_stem>.png`` and ``.pdf``."""
    return _save(build_downstream(df, split=split), out_stem)


# -------------------------------------------------------------------------------- probes


@_styled
def build_probes(df, probe: str = "linear", metric: str = "macro_f1") -> Figure:
    """Probe score vs layer: a panel per task (rows) × model (columns), a line per variant."""
    df = load_table(df, "probes")
    d = df[(df["probe"] == probe) & (df["metric"] == metric)]
    _require(
        d,
        "probes",
        f"probe {probe!r}, metric {metric!r}",
        {"probes": df["probe"], "metrics": df["metric"]},
    )
    d = d[[*KEY, "layer", "target", "value"]]
    return _layer_curves_figure(
        d,
        y_label=f"probe {metric}",
        suptitle=f"{probe} probe per layer ({metric})\ncontrol task dashed; band = sd over seeds",
        sharey="row",
    )


def plot_probes(
    df, out_stem: str | Path, probe: str = "linear", metric: str = "macro_f1"
) -> list[Path]:
    """`build_probes`, saved as ``<out_stem>.png`` and ``.pdf``."""
    return _save(build_probes(df, probe=probe, metric=metric), out_stem)


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
        suptitle=f"Attention {metric}{what} per layer, mean over heads\nband = sd over seeds",
        sharey=True,
    )


def plot_attention_by_layer(df, out_stem: str | Path, metric: str = "cosine") -> list[Path]:
    """`build_attention_by_layer`, saved as ``<out_stem>.png`` and ``.pdf``."""
    return _save(build_attention_by_layer(df, metric=metric), out_stem)


# ----------------------------------------------------------------------------------- CKA


@_styled
def build_cka(df) -> Figure:
    """Linear CKA to the pretrained model per layer, a line per variant; a panel per
    task (rows) × model (columns)."""
    d = load_table(df, "cka")
    return _layer_curves_figure(
        d[CKA_COLUMNS].assign(target="task"),
        y_label="linear CKA to pretrained",
        suptitle="Linear CKA to the pretrained model per layer\nband = sd over seeds",
        sharey=True,
    )


def plot_cka(df, out_stem: str | Path) -> list[Path]:
    """`build_cka`, saved as ``<out_stem>.png`` and ``.pdf``."""
    return _save(build_cka(df), out_stem)


# -------------------------------------------------------------------------- correlations


def _format_corr(res: dict) -> str:
    n = res["n"]
    rho, p = res["spearman_rho"], res["spearman_p"]
    if not np.isfinite(rho):
        return f"Spearman ρ = n/a\nn = {n}"
    p_text = "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
    return f"Spearman ρ = {rho:.2f}\n{p_text}, n = {n}"


def _measure_label(measure: str, attrs: dict) -> str:
    label = MEASURES.get(measure, measure)
    if measure.startswith("probe") and "probe" in attrs:
        label += f"\n({attrs['probe']} probe, {attrs.get('probe_metric', '')})"
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


def _draw_scatter(
    ax, part: pd.DataFrame, measure: str, models: list[str], colors: dict, method_style: dict
) -> None:
    """Downstream score against `measure`, hue = model; `method_style`: seaborn's style
    keywords that mark each fine-tuning method (empty for one method: one marker)."""
    if part.empty:
        _no_data(ax)
        return
    sns.scatterplot(
        data=part,
        x=measure,
        y="downstream",
        hue="model",
        hue_order=models,
        palette=colors,
        style=method_style.get("style"),
        style_order=method_style.get("style_order"),
        markers=method_style.get("markers", True),
        s=28,
        alpha=0.85,
        edgecolor="white",
        linewidth=0.4,
        legend=False,
        ax=ax,
    )


def _add_statistic(ax, part: pd.DataFrame, measure: str) -> None:
    """The panel's Spearman ρ, p and n, where it covers the fewest points ("best" legend
    placement)."""
    ax.legend(
        handles=[Line2D([], [], linestyle="none")],
        labels=[_format_corr(correlation(part[measure], part["downstream"]))],
        loc="best",
        handlelength=0,
        handletextpad=0,
        fontsize=7.5,
        framealpha=0.85,
        borderpad=0.4,
    )


def _correlation_legend(
    fig: Figure, models: list[str], colors: dict, methods: list[str], method_markers: dict
) -> None:
    """An entry per model (colour), then per method (marker) when methods are marked."""
    handles = [
        Line2D([], [], color=colors[m], marker="o", linestyle="none", label=m) for m in models
    ]
    if method_markers:
        handles += [_spacer()] + [
            Line2D([], [], color="0.3", marker=method_markers[m], linestyle="none", label=m)
            for m in methods
        ]
    _outside_legend(fig, handles, title="model / method" if method_markers else "model")


@_styled
def build_correlations(measures_df: pd.DataFrame, measures: Sequence[str] | None = None) -> Figure:
    """Downstream score against each internal measure (see `internal_measures`): a row per task
    (tasks score on different metrics, so they are never pooled), a column per measure, hue =
    model, marker = fine-tuning method when there are several; the panel's Spearman ρ, p and n
    are those of `correlations.tsv` for that task."""
    d, measures = _correlation_inputs(measures_df, measures)
    methods = sorted(d["method"].unique()) if "method" in d.columns else []
    method_markers = model_markers(methods) if len(_finetune_methods(methods)) > 1 else {}
    method_style = (
        dict(style="method", style_order=methods, markers=method_markers) if method_markers else {}
    )
    models, tasks = sorted(d["model"].unique()), sorted(d["task"].unique())
    colors = model_colors(models)
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
            _draw_scatter(ax, part, measure, models, colors, method_style)
            ax.set_xlabel(_measure_label(measure, d.attrs) if i == n_rows - 1 else "")
            ax.set_ylabel(f"{task}\n{metric or 'downstream score'}" if j == 0 else "")
            ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
            # similarities near 1 would get an offset label ("1e-5+9.999e-1") over the title
            ax.ticklabel_format(axis="x", useOffset=False)
            _add_statistic(ax, part, measure)
    _correlation_legend(fig, models, colors, methods, method_markers)
    _suptitle(fig, "Downstream score (test split) against internal measures, per task", LEGEND_W)
    return fig


def plot_correlations(
    measures_df: pd.DataFrame, out_stem: str | Path, measures: Sequence[str] | None = None
) -> list[Path]:
    """`build_correlations`, saved as ``<out_stem>.png`` and ``.pdf``."""
    return _save(build_correlations(measures_df, measures=measures), out_stem)


# ------------------------------------------------------------------------------- saving


def _save(fig: Figure, stem: str | Path) -> list[Path]:
    try:
        with style_context():  # savefig reads rc too (PDF font type, face colour)
            return save_figure(fig, stem)
    finally:
        plt.close(fig)
