"""Figures on synthetic tidy tables: files written, panels, labels, legends, paper scale."""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from bioprobe.blurb import CATEGORIES, blurb_table
from bioprobe.chance import chance_rows
from bioprobe.plotting import figures as F
from bioprobe.plotting.style import model_colors, save_figure, size_colors, tick_step
from bioprobe.summary import KEY, POOLED, correlations

# ------------------------------------------------------------------------ synthetic tables

NER_METRICS = ["entity_f1", "entity_precision", "entity_recall", "token_macro_f1", "token_micro_f1"]
PAIR_METRICS = ["accuracy", "macro_f1", "micro_f1"]
#: per kind: the headline downstream metric, and the downstream figure's panels
HEADLINE = {"ner": "entity_f1", "pair": "macro_f1"}
DRAWN = {"ner": ["entity_f1", "token_macro_f1"], "pair": ["accuracy", "macro_f1"]}


def main_metrics(tasks: dict[str, str]) -> dict[str, str]:
    return {task: HEADLINE[kind] for task, kind in tasks.items()}


def drawn_metrics(tasks: dict[str, str]) -> dict[str, list[str]]:
    return {task: DRAWN[kind] for task, kind in tasks.items()}


def synthetic_tables(
    tasks: dict[str, str],
    models: dict[str, tuple[int, int]],
    sizes=(10, 50, 100),
    seeds=(1, 2),
    methods=("full",),
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """Tidy downstream / probes / attention_similarity / representation_similarity tables
    with plausible trends.

    tasks: id -> "ner" | "pair"; models: id -> (layers L, heads).
    """
    rng = np.random.default_rng(seed)
    variants = [("pretrained", 0), ("random-init", 0)] + [(m, s) for m in methods for s in sizes]
    down, probes, att, sim = [], [], [], []
    for (task, kind), (model, (n_layers, n_heads)), (method, size), sd in itertools.product(
        tasks.items(), models.items(), variants, seeds
    ):
        key = {"task": task, "model": model, "method": method, "size": size, "seed": sd}
        frac = size / 100
        noise = rng.normal(0, 0.02)
        if method != "random-init":
            base = 0.05 if method == "pretrained" else 0.5 + 0.35 * frac + noise
            for split, metric in itertools.product(
                ("validation", "test"), NER_METRICS if kind == "ner" else PAIR_METRICS
            ):
                down.append({**key, "split": split, "metric": metric, "value": base})
        layers = np.arange(n_layers + 1)
        depth = layers / n_layers
        if method == "random-init":
            curve = 0.3 + 0.02 * rng.normal(size=layers.size)
        else:
            curve = 0.5 + 0.3 * np.sin(np.pi * depth) * (1 - 0.5 * depth) + 0.2 * frac * depth
            curve = curve + 0.01 * rng.normal(size=layers.size)
        control = 0.25 + 0.05 * depth
        for layer in layers:
            for target, value in (("task", curve[layer]), ("control", control[layer])):
                for metric in ("accuracy", "macro_f1"):
                    probes.append(
                        {
                            **key,
                            "layer": int(layer),
                            "probe": "linear",
                            "target": target,
                            "metric": metric,
                            "value": float(value),
                        }
                    )
            for metric in ("selectivity", "selectivity_macro_f1"):
                probes.append(
                    {
                        **key,
                        "layer": int(layer),
                        "probe": "linear",
                        "target": "task",
                        "metric": metric,
                        "value": float(curve[layer] - control[layer]),
                    }
                )
        if method != "pretrained":
            drop = 0.6 if method == "random-init" else 0.05 + 0.3 * frac
            for layer in layers:
                moved = drop * layer / n_layers
                for metric, value in SIMILARITY_CURVES.items():
                    sim.append(
                        {**key, "layer": int(layer), "metric": metric, "value": value(moved)}
                    )
        lay, head = np.meshgrid(np.arange(1, n_layers + 1), np.arange(1, n_heads + 1))
        lay, head = lay.ravel(), head.ravel()
        metrics = {"entropy": 1.5 + 0.05 * head + rng.normal(0, 0.05, lay.size)}
        if method != "pretrained":
            drop = 0.7 if method == "random-init" else 0.1 * frac + 0.01
            cos = 1 - drop * (lay / n_layers) ** 2 + rng.normal(0, 0.01, lay.size)
            metrics["cosine"] = np.clip(cos, 0, 1)
            metrics["js_divergence"] = 1 - metrics["cosine"]
        for metric, values in metrics.items():
            att.append(
                pd.DataFrame({**key, "layer": lay, "head": head, "metric": metric, "value": values})
            )
    return {
        "downstream": pd.DataFrame(down),
        "probes": pd.DataFrame(probes),
        "attention_similarity": pd.concat(att, ignore_index=True),
        "representation_similarity": pd.DataFrame(sim),
    }


#: each representation-similarity measure of the synthetic tables as a function of how far a
#: layer moved (0 at layer 0, up to 0.6 for random-init's last layer)
SIMILARITY_CURVES = {
    "cka": lambda moved: 1 - moved,
    "procrustes": lambda moved: 1.4 * moved,
    "svcca": lambda moved: 1 - 0.5 * moved,
}


SMALL_TASKS = {"ner-a": "ner", "pair-b": "pair"}
SMALL_MODELS = {"enc": (4, 2), "dec": (6, 3)}  # different depths: normalised x axis


@pytest.fixture(scope="module")
def small():
    return synthetic_tables(SMALL_TASKS, SMALL_MODELS)


@pytest.fixture(scope="module")
def measures(small):
    return F.internal_measures(
        small["downstream"],
        small["probes"],
        small["attention_similarity"],
        small["representation_similarity"],
        main_metrics=main_metrics(SMALL_TASKS),
    )


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def visible_axes(fig):
    """Panels: visible axes that are not colour bars."""
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def legend_labels(fig):
    return [t.get_text() for leg in fig.legends for t in leg.get_texts()]


def assert_written(paths, stem):
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert [p.with_suffix("") for p in paths] == [stem, stem]
    for p in paths:
        assert p.stat().st_size > 1000
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"


# ------------------------------------------------------------------------------- style


def test_style_helpers():
    assert tick_step(24) == 4
    assert tick_step(16, 5) == 4
    assert tick_step(6) == 1
    colors = size_colors([10, 50, 100])
    assert colors[0] == (0.0, 0.0, 0.0)
    assert len({colors[s] for s in (10, 50, 100)}) == 3


def test_save_figure_is_deterministic(tmp_path):
    def draw():
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([0, 1, 2], [1, 0, 2], label="x")
        ax.set_title("ρ = 0.5")
        return fig

    a = save_figure(draw(), tmp_path / "a")
    b = save_figure(draw(), tmp_path / "b")
    assert [p.name for p in a] == ["a.png", "a.pdf"]
    for pa, pb in zip(a, b, strict=True):
        assert pa.read_bytes() == pb.read_bytes()
    assert b"CreationDate" not in a[1].read_bytes()
    assert b"Software" not in a[0].read_bytes()


# --------------------------------------------------------------------------- downstream


def test_downstream(small, tmp_path):
    fig = F.build_downstream(small["downstream"], drawn_metrics(SMALL_TASKS))
    axes = visible_axes(fig)
    # NER: entity_f1 + token_macro_f1; pairs: accuracy + macro_f1
    assert sorted(ax.get_title() for ax in axes) == [
        "ner-a · entity_f1",
        "ner-a · token_macro_f1",
        "pair-b · accuracy",
        "pair-b · macro_f1",
    ]
    assert axes[0].get_ylabel() == "entity_f1"
    assert "train split" in axes[-1].get_xlabel()
    assert list(axes[0].get_xticks()) == [0, 10, 50, 100]  # size 0 = the pretrained point
    assert set(legend_labels(fig)) == {"enc", "dec"}
    assert fig.legends[0].get_bbox_to_anchor() is not None
    # every line starts at size 0
    xs = {tuple(line.get_xdata()) for line in axes[0].get_lines() if len(line.get_xdata()) > 1}
    assert all(x[0] == 0 for x in xs)
    paths = F.plot_downstream(small["downstream"], tmp_path / "down", drawn_metrics(SMALL_TASKS))
    assert_written(paths, tmp_path / "down")
    again = F.plot_downstream(small["downstream"], tmp_path / "again", drawn_metrics(SMALL_TASKS))
    for a, b in zip(paths, again, strict=True):  # reruns give identical bytes
        assert a.read_bytes() == b.read_bytes()


def with_intervals(down: pd.DataFrame) -> pd.DataFrame:
    """Test rows get an interval [value - 0.05, value + 0.03] (collect_downstream's columns)."""
    test = down["split"] == "test"
    return down.assign(
        ci_low=np.where(test, down["value"] - 0.05, np.nan),
        ci_high=np.where(test, down["value"] + 0.03, np.nan),
    )


def test_downstream_one_seed_draws_each_scores_interval(tmp_path):
    t = synthetic_tables({"ner-a": "ner"}, {"enc": (3, 2)}, seeds=(1,))
    down = with_intervals(t["downstream"])
    fig = F.build_downstream(down, drawn_metrics({"ner-a": "ner"}), confidence=0.9)
    assert "bars = 90% bootstrap CI over test examples" in fig._suptitle.get_text()
    ax = visible_axes(fig)[0]
    (bars,) = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    spans = sorted((seg[0][1], seg[1][1]) for seg in bars.lines[2][0].get_segments())
    rows = down[(down["split"] == "test") & (down["metric"] == "entity_f1")]
    rows = rows[rows["method"].isin(["full", "pretrained"])]
    expected = sorted(zip(rows["ci_low"], rows["ci_high"], strict=True))
    np.testing.assert_allclose(spans, expected)
    paths = F.plot_downstream(down, tmp_path / "ci", drawn_metrics({"ner-a": "ner"}))
    assert_written(paths, tmp_path / "ci")


def test_downstream_several_seeds_draw_the_seed_band_not_intervals(small):
    fig = F.build_downstream(with_intervals(small["downstream"]), drawn_metrics(SMALL_TASKS))
    assert "band = sd over seeds (up to 2 per point)" in fig._suptitle.get_text()
    for ax in visible_axes(fig):
        assert not [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
        assert ax.collections  # the sd bands
    # one seed without intervals (a table from before them): nothing around the lines
    t = synthetic_tables({"ner-a": "ner"}, {"enc": (3, 2)}, seeds=(1,))
    fig = F.build_downstream(t["downstream"], drawn_metrics({"ner-a": "ner"}))
    assert "one seed, no band" in fig._suptitle.get_text()


def test_downstream_two_methods_style_by_method(tmp_path):
    t = synthetic_tables({"ner-a": "ner"}, {"enc": (3, 2)}, methods=("full", "lora"))
    fig = F.build_downstream(t["downstream"], drawn_metrics({"ner-a": "ner"}))
    assert {"full", "lora", "enc"} <= set(legend_labels(fig))


def test_downstream_draws_each_tasks_metrics(small):
    metrics = {"ner-a": "entity_f1", "pair-b": ["macro_f1", "accuracy", "pearson"]}
    fig = F.build_downstream(small["downstream"], metrics)
    # headline first; a further metric the task lacks (pearson) is left out
    assert [ax.get_title() for ax in visible_axes(fig)] == [
        "ner-a · entity_f1",
        "pair-b · macro_f1",
        "pair-b · accuracy",
    ]
    with pytest.raises(ValueError, match="no 'pearson' rows for task 'pair-b'"):
        F.build_downstream(small["downstream"], {"ner-a": "entity_f1", "pair-b": "pearson"})
    with pytest.raises(ValueError, match="gives no metric for task 'pair-b'"):
        F.build_downstream(small["downstream"], {"ner-a": "entity_f1"})


def test_downstream_missing_split_names_table():
    df = synthetic_tables({"ner-a": "ner"}, {"enc": (2, 2)})["downstream"]
    metrics = drawn_metrics({"ner-a": "ner"})
    with pytest.raises(ValueError, match="downstream table has no rows for split 'dev'"):
        F.build_downstream(df, metrics, split="dev")
    with pytest.raises(ValueError, match="downstream table is empty"):
        F.build_downstream(df.iloc[:0], metrics)
    with pytest.raises(ValueError, match="downstream table is missing"):
        F.build_downstream(None, metrics)


#: the prompting methods of the synthetic tables and their level (each seed 0.01 either side)
PROMPTING = {"zero-shot": 0.62, "few-shot-2": 0.7}


def with_prompting(down: pd.DataFrame, levels: dict[str, float] = PROMPTING) -> pd.DataFrame:
    """`down` plus prompting rows: size 0, each of the table's seeds, every task × model ×
    split × metric at the method's level, the k-th model's 0.03 * k above it, seed s off it
    by 0.02 * (s - mean seed)."""
    base = down[down["method"] == "pretrained"]
    model_rank = base["model"].rank(method="dense") - 1
    shift = 0.03 * model_rank + 0.02 * (base["seed"] - base["seed"].mean())
    rows = [base.assign(method=m, value=level + shift) for m, level in levels.items()]
    return pd.concat([down, *rows], ignore_index=True)


def line_data(ax) -> list[tuple]:
    """Each line of `ax` as (x, y, colour, style), to compare two figures' lines."""
    return [
        (tuple(line.get_xdata()), tuple(line.get_ydata()), line.get_color(), line.get_linestyle())
        for line in ax.get_lines()
    ]


def test_downstream_prompting_is_a_level_not_a_line_over_sizes(small, tmp_path):
    down = with_prompting(small["downstream"])
    metrics = drawn_metrics(SMALL_TASKS)
    fig = F.build_downstream(down, metrics, prompting=list(PROMPTING))
    plain = F.build_downstream(small["downstream"], metrics)
    labels = legend_labels(fig)
    assert {"zero-shot (prompting)", "few-shot-2 (prompting)", "enc", "dec"} <= set(labels)
    assert "zero-shot" not in labels  # no fine-tuning method's dash pattern for it
    colors = model_colors(SMALL_MODELS)
    shapes = {m: set() for m in PROMPTING}
    for ax, ax_plain in zip(visible_axes(fig), visible_axes(plain), strict=True):
        assert list(ax.get_xticks()) == [0, 10, 50, 100]
        lines = line_data(ax)
        # the fine-tuning lines and markers, the pretrained start included, are unchanged
        kept = line_data(ax_plain)
        assert all(line in lines for line in kept)
        extra = [line for line in lines if line not in kept]
        # nothing else over the sizes: the horizontals (axes x 0..1) and the markers at x < 0
        assert all(x == (0, 1) or max(x) < 0 for x, *_ in extra)
        task, metric = ax.get_title().split(" · ")
        rows = down[(down["task"] == task) & (down["metric"] == metric)]
        rows = rows[(rows["split"] == "test") & rows["method"].isin(PROMPTING)]
        bars = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
        for (method, model), g in rows.groupby(["method", "model"]):
            mean, sd = g["value"].mean(), g["value"].std()
            # a dashed line across the panel at the mean over seeds, in the model's colour
            assert [
                line
                for line in extra
                if line[0] == (0, 1)
                and np.allclose(line[1], mean)
                and line[2] == colors[model]
                and line[3] == "--"
            ]
            # an open marker left of size 0 with the sd over seeds as its bar
            (bar,) = [b for b in bars if np.isclose(b.lines[0].get_ydata()[0], mean)]
            assert bar.lines[0].get_color() == colors[model]
            marker = bar.lines[0]
            assert marker.get_xdata()[0] < 0
            assert marker.get_markerfacecolor() == "white"
            shapes[method].add(marker.get_marker())
            (segment,) = bar.lines[2][0].get_segments()
            np.testing.assert_allclose([segment[0][1], segment[1][1]], [mean - sd, mean + sd])
    # a marker shape per prompting method, whatever the model
    assert all(len(s) == 1 for s in shapes.values()) and len(set.union(*shapes.values())) == 2
    paths = F.plot_downstream(down, tmp_path / "prompting", metrics, prompting=list(PROMPTING))
    assert_written(paths, tmp_path / "prompting")
    # unnamed, a prompting method would pass for fine-tuning: an error naming it
    with pytest.raises(ValueError, match=r"method\(s\) few-shot-2, zero-shot: a prompting method"):
        F.build_downstream(down, metrics)


def test_downstream_prompting_one_seed_bar_is_its_interval():
    t = synthetic_tables({"ner-a": "ner"}, {"enc": (3, 2)}, seeds=(1,))
    down = with_intervals(with_prompting(t["downstream"], {"zero-shot": 0.6}))
    fig = F.build_downstream(down, drawn_metrics({"ner-a": "ner"}), prompting=["zero-shot"])
    ax = visible_axes(fig)[0]
    bars = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    (bar,) = [b for b in bars if b.lines[0] is not None]  # the run's own bars have no marker
    assert bar.lines[0].get_xdata()[0] < 0
    (segment,) = bar.lines[2][0].get_segments()
    np.testing.assert_allclose([segment[0][1], segment[1][1]], [0.55, 0.63])
    assert "one seed; bars = 95% bootstrap CI" in fig._suptitle.get_text()


# ------------------------------------------------------------------------------- probes


def test_probes(small, tmp_path):
    fig = F.build_probes(small["probes"])
    axes = visible_axes(fig)
    assert len(axes) == len(SMALL_TASKS) * len(SMALL_MODELS)
    assert axes[0].get_title() == "ner-a · dec"
    assert axes[1].get_title() == "ner-a · enc"
    assert axes[0].get_ylabel() == "probe macro_f1"
    assert axes[-1].get_xlabel() == "normalised depth (layer / L)"  # depths 4 and 6
    labels = legend_labels(fig)
    assert labels[:5] == ["random-init", "pretrained", "10%", "50%", "100%"]
    assert "control task" in labels
    # control lines are dashed, random-init task lines dotted-ish (a dash pattern, grey)
    styles = {line.get_linestyle() for line in axes[0].get_lines()}
    assert "-" in styles and "--" in styles
    paths = F.plot_probes(small["probes"], tmp_path / "probes")
    assert_written(paths, tmp_path / "probes")


def chance_table(levels: dict[str, dict[str, float]], split: str = "test") -> pd.DataFrame:
    """A chance table with the given {task: {metric: value}}."""
    rows = [
        {"task": t, "split": split, "metric": m, "value": v, "baseline": "given"}
        for t, metrics in levels.items()
        for m, v in metrics.items()
    ]
    return pd.DataFrame(rows)


def dash_pattern(line) -> tuple:
    """A line's dash pattern in units of its width (matplotlib scales dashes by it)."""
    if not hasattr(line, "get_linewidth") or line.get_linestyle() in ("None", "none", ""):
        return ("no line",)
    seq = line._dash_pattern[1]
    return tuple(round(x / line.get_linewidth(), 2) for x in seq) if seq else ()


def chance_lines(ax) -> list[float]:
    """The y of the horizontal chance lines of a panel (axhline: x spans the axes, 0 to 1)."""
    return [
        float(line.get_ydata()[0])
        for line in ax.get_lines()
        if list(line.get_xdata()) == [0, 1] and line.get_ydata()[0] == line.get_ydata()[1]
    ]


def test_probes_chance_line_and_every_line_style_in_legend(small):
    chance = chance_table({"ner-a": {"macro_f1": 0.12}})  # pair-b: no chance level
    fig = F.build_probes(small["probes"], chance=chance)
    axes = visible_axes(fig)
    assert chance_lines(axes[0]) == [pytest.approx(0.12)]  # ner-a · dec
    assert chance_lines(axes[2]) == []  # pair-b · dec
    assert axes[0].patches, "the region below chance is shaded"
    assert axes[0].get_ylim()[0] <= 0.12  # the line is inside the panel
    labels = legend_labels(fig)
    for entry in ("task labels", "control task", "random-init control", "chance"):
        assert entry in labels
    # every dash pattern drawn (task, control, random-init and its control) has a legend entry
    drawn = {dash_pattern(line) for ax in axes for line in ax.get_lines()}
    shown = {dash_pattern(h) for leg in fig.legends for h in leg.legend_handles}
    assert len(drawn) == 4 and drawn <= shown
    # the split named in the title, and a band mentioned only with several seeds
    title = fig._suptitle.get_text()
    assert "test split" in title and "band = sd over seeds" in title
    one_seed = small["probes"][small["probes"]["seed"] == 1]
    title = F.build_probes(one_seed)._suptitle.get_text()
    assert "band = sd" not in title and "one seed, no band" in title
    assert "chance" not in legend_labels(F.build_probes(one_seed))


def test_chance_rows_feed_the_figures(small):
    # the chance table as the workflow writes it: the demo NLI's three balanced classes
    rows = chance_rows("pair-b", "test", ["a", "b", "c"] * 4, ["a", "b", "c"])
    chance = pd.DataFrame(rows)
    fig = F.build_downstream(small["downstream"], drawn_metrics(SMALL_TASKS), chance=chance)
    titles = {ax.get_title(): ax for ax in visible_axes(fig)}
    assert chance_lines(titles["pair-b · macro_f1"]) == [pytest.approx(1 / 3)]
    assert chance_lines(titles["pair-b · accuracy"]) == [pytest.approx(1 / 3)]
    assert chance_lines(titles["ner-a · entity_f1"]) == []  # no clean chance level
    assert "chance" in legend_labels(fig)
    assert "band = sd over seeds" in fig._suptitle.get_text()


def test_probes_metric_per_task(small):
    fig = F.build_probes(small["probes"], metric={"ner-a": "macro_f1", "pair-b": "accuracy"})
    axes = visible_axes(fig)
    assert [axes[0].get_ylabel(), axes[2].get_ylabel()] == ["probe macro_f1", "probe accuracy"]
    assert "the probe metric of each task" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match=r"gives no metric for task.*pair-b"):
        F.build_probes(small["probes"], metric={"ner-a": "macro_f1"})


def test_probes_same_depth_uses_layer_numbers(small):
    df = small["probes"][small["probes"]["model"] == "enc"]
    fig = F.build_probes(df)
    axes = visible_axes(fig)
    assert len(axes) == 2
    assert axes[-1].get_xlabel() == "layer"


def test_probes_unknown_probe_names_table(small):
    with pytest.raises(ValueError, match=r"probes table has no rows for probe 'mlp'.*linear"):
        F.build_probes(small["probes"], probe="mlp")


def test_probes_mdl_draws_compression_over_the_uniform_line(small, tmp_path):
    scores = small["probes"]
    scores = scores[(scores["probe"] == "linear") & (scores["metric"] == "macro_f1")]
    mdl = scores.assign(probe="mdl", metric="compression", value=1 + 4 * scores["value"])
    table = pd.concat([small["probes"], mdl])  # the linear rows beside: only mdl is drawn
    fig = F.build_probes_mdl(table, split="validation")
    axes = visible_axes(fig)
    assert len(axes) == len(SMALL_TASKS) * len(SMALL_MODELS)
    assert axes[0].get_ylabel() == "MDL compression"
    assert all(chance_lines(ax) == [pytest.approx(1.0)] for ax in axes)
    assert "validation split" in fig._suptitle.get_text()
    assert "control task" in legend_labels(fig)
    # a panel's lines are the table's compression values (seed means of each variant)
    drawn = {round(y, 6) for line in axes[0].get_lines() for y in line.get_ydata()}
    panel = mdl[(mdl["task"] == "ner-a") & (mdl["model"] == "dec")]
    means = panel.groupby(["method", "size", "target", "layer"])["value"].mean()
    assert {round(v, 6) for v in means} <= drawn
    assert_written(F.plot_probes_mdl(table, tmp_path / "probes_mdl"), tmp_path / "probes_mdl")
    with pytest.raises(ValueError, match=r"probes table has no rows for probe 'mdl'"):
        F.build_probes_mdl(small["probes"])


# ---------------------------------------------------------------------------- attention


def test_attention_heatmaps(small, tmp_path):
    figs = F.build_attention_heatmaps(small["attention_similarity"])
    assert sorted(figs) == sorted(SMALL_TASKS)
    fig = figs["ner-a"]
    panels = visible_axes(fig)
    # models (rows) × variants (columns): random-init + 3 sizes; pretrained has no cosine
    assert len(panels) == len(SMALL_MODELS) * 4
    assert [ax.get_title() for ax in panels[:4]] == ["random-init", "10%", "50%", "100%"]
    assert panels[0].get_ylabel() == "dec\nlayer"
    assert panels[-1].get_xlabel() == "head"
    colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colorbars) == 1
    assert colorbars[0].get_ylabel() == "attention cosine"
    # one colour scale shared by every panel of every task
    clims = {m.get_clim() for f in figs.values() for ax in visible_axes(f) for m in ax.collections}
    assert len(clims) == 1
    paths = F.plot_attention_heatmaps(small["attention_similarity"], tmp_path / "att")
    assert [p.name for p in paths] == [
        "att_ner-a.png",
        "att_ner-a.pdf",
        "att_pair-b.png",
        "att_pair-b.pdf",
    ]


def test_attention_heatmap_cell_is_seed_mean(small):
    df = small["attention_similarity"]
    fig = F.build_attention_heatmaps(df)["ner-a"]
    panel = visible_axes(fig)[4]  # enc (second row), random-init
    mesh = panel.collections[0]
    got = np.asarray(mesh.get_array()).reshape(4, 2)  # enc: 4 layers × 2 heads
    sel = df[
        (df["task"] == "ner-a")
        & (df["model"] == "enc")
        & (df["method"] == "random-init")
        & (df["metric"] == "cosine")
    ]
    want = sel.groupby(["layer", "head"])["value"].mean().unstack().to_numpy()
    np.testing.assert_allclose(got, want)


def test_attention_by_layer_entropy_includes_pretrained(small, tmp_path):
    fig = F.build_attention_by_layer(small["attention_similarity"], metric="entropy")
    assert len(visible_axes(fig)) == 4
    assert "pretrained" in legend_labels(fig)
    assert "control task" not in legend_labels(fig)
    paths = F.plot_attention_by_layer(small["attention_similarity"], tmp_path / "abl")
    assert_written(paths, tmp_path / "abl")


def test_attention_missing_metric(small):
    with pytest.raises(ValueError, match="attention_similarity table has no rows for metric"):
        F.build_attention_by_layer(small["attention_similarity"], metric="kl")


# ---------------------------------------------------------------- representation similarity


@pytest.mark.parametrize(
    ("metric", "y_label"),
    [
        ("cka", "linear CKA to pretrained"),
        ("procrustes", "Procrustes distance (rad)"),
        ("svcca", "SVCCA with pretrained"),
    ],
)
def test_representation_similarity(small, tmp_path, metric, y_label):
    table = small["representation_similarity"]
    fig = F.build_representation_similarity(table, metric=metric)
    axes = visible_axes(fig)
    assert len(axes) == 4
    assert axes[0].get_ylabel() == y_label
    assert "random-init" in legend_labels(fig)
    assert "pretrained" not in legend_labels(fig)
    # the lines are this measure's: from its value at layer 0 to random-init's last layer
    drawn = np.concatenate([line.get_ydata() for ax in axes for line in ax.get_lines()])
    curve = SIMILARITY_CURVES[metric]
    assert sorted([drawn.min(), drawn.max()]) == pytest.approx(sorted([curve(0), curve(0.6)]))
    paths = F.plot_representation_similarity(table, tmp_path / metric, metric=metric)
    assert_written(paths, tmp_path / metric)


def test_representation_similarity_bad_tables(small):
    with pytest.raises(ValueError, match="representation_similarity table is empty"):
        F.build_representation_similarity(pd.DataFrame(columns=[*KEY, "layer", "metric", "value"]))
    only_cka = small["representation_similarity"].query("metric == 'cka'")
    with pytest.raises(ValueError, match=r"no rows for metric 'svcca' \(it has metric: \['cka'\]"):
        F.build_representation_similarity(only_cka, metric="svcca")
    with pytest.raises(ValueError, match=r"lacks columns \['metric'\]"):  # an old cka.tsv
        F.build_representation_similarity(only_cka.drop(columns="metric"))
    with pytest.raises(ValueError, match="unknown similarity metric 'pwcca'"):
        F.build_representation_similarity(only_cka, metric="pwcca")


# ------------------------------------------------------------------------- correlations


def panel_stats(ax) -> list[str]:
    """The lines of a correlation panel's statistics box."""
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_correlations_figure(measures, tmp_path):
    fig = F.build_correlations(measures)
    axes = visible_axes(fig)
    assert len(axes) == 12  # a row per task (never pooled: their metrics differ) x 6 measures
    assert axes[6].get_xlabel().startswith("best-layer probe score")
    assert axes[0].get_xlabel() == ""  # measure named once, under the bottom row
    assert axes[0].get_ylabel().startswith("ner-a\n")
    labels = [ax.get_xlabel() for ax in axes[8:]]  # the similarity measures, each its own panel
    assert [label.split("\n")[0] for label in labels] == [
        "mean attention cosine",
        "mean CKA",
        "mean Procrustes distance",
        "mean SVCCA",
    ]
    assert axes[6].get_ylabel().startswith("pair-b\n")
    # a line per model (sorted: dec, enc), then the pooled one: the numbers of correlations.tsv
    table = correlations(measures, ["probe_best"]).set_index(["task", "model"])
    lines = panel_stats(axes[6])
    assert len(lines) == 3 and lines[2].startswith("pooled: ρ=")
    for line, model in zip(lines, ["dec", "enc", POOLED], strict=True):
        row = table.loc[("pair-b", model)]
        assert f"ρ={row['spearman_rho']:+.2f}" in line and line.endswith(f"n={row['n']}")
    # p is Holm's over the task's whole row (6 measures x 3), not over the panel
    holm_p = correlations(measures).set_index(["measure", "task", "model"])["spearman_p_holm"]
    p = holm_p.loc[("probe_best", "pair-b", "dec")]
    assert (f"p_Holm={p:.2f}" if p >= 0.001 else "p_Holm<0.001") in lines[0]
    # colour = model, marker area = training size: one entry each in the figure legend
    assert {"enc", "dec", "10% data", "50% data", "100% data"} <= set(legend_labels(fig))
    areas = {tuple(c.get_sizes()) for c in axes[0].collections}
    assert len({a for sizes in areas for a in sizes}) == 3  # three sizes, three areas
    assert "per model" in fig._suptitle.get_text()
    paths = F.plot_correlations(measures, tmp_path / "corr")
    assert_written(paths, tmp_path / "corr")


def test_correlations_figure_states_the_given_tables_numbers(measures):
    table = correlations(measures)
    table["spearman_p_holm"] = 0.5  # the workflow passes correlations.tsv: its numbers show
    fig = F.build_correlations(measures, correlations=table)
    assert all("p_Holm=0.50" in line for ax in visible_axes(fig) for line in panel_stats(ax))
    with pytest.raises(ValueError, match="correlations table lacks columns"):
        F.build_correlations(measures, correlations=table.drop(columns="spearman_p_holm"))


def test_correlations_figure_has_no_axis_offset_near_one(measures):
    near_one = measures.assign(cka=1 - 1e-6 * np.arange(len(measures)))
    fig = F.build_correlations(near_one, measures=["cka"])
    fig.canvas.draw()
    for ax in visible_axes(fig):
        assert ax.xaxis.get_offset_text().get_text() == ""
    assert_not_cramped(fig)  # the long labels (0.999995, ...) are slanted apart
    plt.close(fig)


def test_correlations_figure_handles_tiny_and_constant_input(measures):
    tiny = measures.iloc[:2].copy()  # one model, two points
    fig = F.build_correlations(tiny)
    assert panel_stats(visible_axes(fig)[0]) == ["ρ n/a, n=2"]
    flat = measures.assign(cka=0.5)
    fig = F.build_correlations(flat, measures=["cka"])
    assert all("n/a" in line for line in panel_stats(visible_axes(fig)[0]))


def test_correlations_figure_marks_each_method(tmp_path):
    t = synthetic_tables({"ner-a": "ner"}, {"enc": (3, 2)}, methods=("full", "lora"))
    m = F.internal_measures(
        t["downstream"],
        t["probes"],
        None,
        t["representation_similarity"],
        main_metrics=main_metrics({"ner-a": "ner"}),
    )
    fig = F.build_correlations(m)
    assert {"full", "lora"} <= set(legend_labels(fig))
    assert fig.legends[0].get_title().get_text() == "model / training data / method"


def test_correlations_figure_without_measures(measures):
    with pytest.raises(ValueError, match="no internal measure"):
        F.build_correlations(
            measures.drop(columns=["probe_best", "probe_last", "cka", "svcca"]).assign(
                attention_similarity=np.nan, procrustes=np.nan
            )
        )


# -------------------------------------------------------------------------------- BLURB

#: the small tables' tasks as BLURB datasets: NER, and the pair task as question answering
BLURB_SPEC = {
    "ner-a": {"category": "named entity recognition", "metric": "entity_f1"},
    "pair-b": {"category": "question answering", "metric": "accuracy"},
}


@pytest.fixture(scope="module")
def blurb(small):
    return blurb_table(small["downstream"], BLURB_SPEC)


def marker_means(ax, color) -> tuple[list, list]:
    """x and y of the seed-mean markers drawn in `color` (the model's)."""
    for line in ax.get_lines():
        if line.get_linestyle() == "None" and line.get_color() == color:
            return list(line.get_xdata()), list(line.get_ydata())
    raise AssertionError("no markers in that colour")


def test_blurb(blurb, tmp_path):
    fig = F.build_blurb(blurb)
    axes = visible_axes(fig)
    assert [ax.get_title() for ax in axes] == [
        "BLURB\n(2/6 categories)",
        "named entity recognition\n(1/1 datasets)",
        "question answering\n(1/1 datasets)",
    ]
    assert [ax.get_ylabel() for ax in axes] == ["BLURB score", "category mean", "category mean"]
    assert list(axes[0].get_xticks()) == [0, 10, 50, 100]  # size 0 = the pretrained point
    title = fig._suptitle.get_text().replace("\n", " ")
    assert "band = sd over seeds" in title
    assert "covers 2/6 categories (missing: PICO, relation extraction" in title
    assert set(legend_labels(fig)) == {"enc", "dec"}
    assert axes[0].collections  # two seeds: an sd band
    # the markers are the seed means of the BLURB score, the pretrained point first
    rows = blurb[(blurb["level"] == "blurb") & (blurb["model"] == "enc")]
    want = rows.groupby("size")["value"].mean()
    x, y = marker_means(axes[0], model_colors(["dec", "enc"])["enc"])
    assert x == list(want.index)
    np.testing.assert_allclose(y, want.to_numpy())
    assert_not_cramped(fig)
    paths = F.plot_blurb(blurb, tmp_path / "blurb")
    assert_written(paths, tmp_path / "blurb")


def test_blurb_one_seed_has_no_band_and_full_coverage_no_caveat():
    kinds = ["ner", "pair"] * 3
    tasks = {f"t{i}": kind for i, kind in enumerate(kinds)}
    t = synthetic_tables(tasks, {"enc": (2, 2)}, seeds=(1,), methods=("full", "lora"))
    spec = {
        f"t{i}": {"category": c, "metric": HEADLINE[kinds[i]]} for i, c in enumerate(CATEGORIES)
    }
    fig = F.build_blurb(blurb_table(t["downstream"], spec))
    axes = visible_axes(fig)
    assert [ax.get_title().split("\n")[0] for ax in axes] == ["BLURB", *CATEGORIES]
    assert axes[0].get_title() == "BLURB\n(6/6 categories)"
    assert len(fig.axes) == 8  # two rows of four panels, the last one hidden
    assert not any(ax.collections for ax in axes)  # one seed: no band
    title = fig._suptitle.get_text()
    assert "one seed, no band" in title and "covers" not in title
    assert {"full", "lora"} <= set(legend_labels(fig))  # a dash pattern per method
    assert_not_cramped(fig)


def test_blurb_missing_table():
    with pytest.raises(ValueError, match="blurb table is missing"):
        F.build_blurb(None)


def test_blurb_prompting_is_a_level(small):
    down = with_prompting(small["downstream"])
    table = blurb_table(down, BLURB_SPEC)
    fig = F.build_blurb(table, prompting=list(PROMPTING))
    plain = F.build_blurb(blurb_table(small["downstream"], BLURB_SPEC))
    assert {"zero-shot (prompting)", "few-shot-2 (prompting)"} <= set(legend_labels(fig))
    lines, kept = line_data(visible_axes(fig)[0]), line_data(visible_axes(plain)[0])
    assert all(line in lines for line in kept)  # the fine-tuning lines are unchanged
    extra = [line for line in lines if line not in kept]
    assert all(x == (0, 1) or max(x) < 0 for x, *_ in extra)  # horizontals, markers left of 0
    # the BLURB score of zero-shot prompting, the mean over seeds: a dashed line in enc's colour
    rows = table[(table["level"] == "blurb") & (table["method"] == "zero-shot")]
    mean = rows.loc[rows["model"] == "enc", "value"].mean()
    (line,) = [line for line in extra if line[0] == (0, 1) and np.allclose(line[1], mean)]
    assert line[2:] == (model_colors(SMALL_MODELS)["enc"], "--")


# ---------------------------------------------------------------------------- paper scale


def assert_not_cramped(fig):
    """After layout: no two panel titles, tick labels of one axis, legends, colour bars or the
    figure title overlap, and the legend sits outside every panel."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()

    def boxes(artists):
        return [a.get_window_extent(renderer) for a in artists if a.get_visible() and a.get_text()]

    def disjoint(bs, what):
        for k, a in enumerate(bs):
            for b in bs[k + 1 :]:
                assert not a.overlaps(b), f"{what} overlap: {a} {b}"

    panels = visible_axes(fig)
    disjoint(boxes([ax.title for ax in panels]), "panel titles")
    for ax in panels:
        disjoint(boxes(ax.get_xticklabels()), "x tick labels")
        disjoint(boxes(ax.get_yticklabels()), "y tick labels")
    extras = [leg.get_window_extent(renderer) for leg in fig.legends]
    extras += [ax.get_window_extent(renderer) for ax in fig.axes if ax.get_label() == "<colorbar>"]
    if fig._suptitle is not None:
        extras.append(fig._suptitle.get_window_extent(renderer))
    disjoint(extras, "legend / colour bar / figure title")
    for box in extras[: len(fig.legends)]:
        for ax in panels:
            assert not box.overlaps(ax.get_window_extent(renderer)), "legend over a panel"
    width, height = fig.canvas.get_width_height()
    for box in extras:  # nothing clipped at the figure edge
        assert box.x0 >= -1 and box.y0 >= -1 and box.x1 <= width + 1 and box.y1 <= height + 1


def test_small_figures_not_cramped():
    # two panel columns and long names: the legend is wide next to a narrow grid
    long = {"bert-base-cased-long-name": (4, 2), "gpt2-medium-long-name": (6, 3)}
    tasks = {"ncbi-disease-ner": "ner"}
    t = synthetic_tables(tasks, long)
    measures = F.internal_measures(
        t["downstream"],
        t["probes"],
        None,
        t["representation_similarity"],
        main_metrics=main_metrics(tasks),
    )
    for fig in (
        F.build_downstream(t["downstream"], drawn_metrics(tasks)),
        F.build_probes(t["probes"]),
        F.build_representation_similarity(t["representation_similarity"], metric="procrustes"),
        F.build_correlations(measures),
    ):
        assert_not_cramped(fig)
        plt.close(fig)


def test_paper_scale_renders(tmp_path):
    """4 models (12 and 24 layers, 12 and 16 heads) × 5 sizes, layouts stay readable."""
    models = {"m-a": (12, 12), "m-b": (24, 16), "m-c": (24, 16), "m-d": (12, 12)}
    t = synthetic_tables({"ner-a": "ner"}, models, sizes=(10, 25, 50, 75, 100), seeds=(1,))
    fig = F.build_probes(t["probes"])
    assert len(visible_axes(fig)) == 4
    w, h = fig.get_size_inches()
    assert w >= 4 * 2.5 and h >= 2.0  # panels keep their size instead of shrinking
    assert_not_cramped(fig)
    plt.close(fig)
    fig = F.build_attention_heatmaps(t["attention_similarity"])["ner-a"]
    assert len(visible_axes(fig)) == 4 * 6  # models × (random-init + 5 sizes)
    assert_not_cramped(fig)
    # tick thinning: at most 6 layer labels on a 24-layer panel
    panel = visible_axes(fig)[6]  # m-b row, first column
    assert panel.get_ylabel() == "m-b\nlayer"
    assert 3 <= len([x for x in panel.get_yticklabels() if x.get_text()]) <= 6
    paths = F.plot_attention_heatmaps(t["attention_similarity"], tmp_path / "h")
    assert len(paths) == 2


def _erasure_table() -> pd.DataFrame:
    rows = []
    for task, metric in (("ner", "entity_f1"), ("pair", "macro_f1")):
        for size, seed, layer, target in itertools.product(
            (30, 100), (1, 2), range(4), ("task", "control")
        ):
            drop = 0.1 * layer * size / 100 if target == "task" else 0.001 * seed
            key = dict(task=task, model="m", method="full", size=size, seed=seed, layer=layer)
            rows += [
                {**key, "target": target, "metric": metric, "value": 0.8 - drop},
                {**key, "target": target, "metric": f"{metric}_drop", "value": drop},
                {**key, "target": target, "metric": "rank", "value": 2.0},
            ]
    return pd.DataFrame(rows)


def test_erasure(tmp_path):
    df = _erasure_table()
    fig = F.build_erasure(df, {"ner": "entity_f1", "pair": "macro_f1"})
    axes = fig.axes
    assert len(axes) == 2  # a panel per task x model
    assert [ax.get_ylabel() for ax in axes] == ["entity_f1 drop", "macro_f1 drop"]
    for ax in axes:  # a drop of nearly nothing still gets a readable range around 0
        low, high = ax.get_ylim()
        assert low <= -0.05 and high >= 0.05
    # the task panel's LEACE line reaches the largest drop drawn (0.3 at layer 3, 100 %)
    tops = [line.get_ydata().max() for line in axes[0].get_lines() if len(line.get_ydata()) == 4]
    assert max(tops) == pytest.approx(0.3)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"LEACE (task labels)", "random subspace", "30%", "100%"} <= set(labels)
    plt.close(fig)
    assert [p.suffix for p in F.plot_erasure(df, tmp_path / "erasure", "entity_f1")] == [
        ".png",
        ".pdf",
    ]


def test_erasure_without_drop_rows_names_the_table():
    df = _erasure_table()
    with pytest.raises(ValueError, match="erasure"):
        F.build_erasure(df[~df.metric.str.endswith("_drop")], "entity_f1")


# --- instruction tuning ---------------------------------------------------------------------


def test_instruction_tuning_figure_sets_the_tunings_side_by_side_per_layer():
    from bioprobe.plotting.instruction import build_instruction_tuning

    t = synthetic_tables(SMALL_TASKS, SMALL_MODELS, methods=("full", "instruct"))
    metric = {"ner-a": "macro_f1", "pair-b": "macro_f1"}
    fig = build_instruction_tuning(
        t["probes"], t["attention_similarity"], t["representation_similarity"],
        instruction_methods=["instruct"], metric=metric,
    )  # fmt: skip
    axes = visible_axes(fig)
    assert len(axes) == len(SMALL_TASKS) * len(SMALL_MODELS) * 3
    labels = legend_labels(fig)
    assert labels == [
        "instruct: instruction-tuned,\n100% of the instruction set",
        "full: fine-tuned on the task,\n100% of its training split",
        "pretrained",
    ]
    sim = t["representation_similarity"]
    for ax in axes[::3]:  # the CKA panels: each line is the seed mean per layer
        task, model = ax.get_title().split(" · ")
        ys = sorted(tuple(np.round(line.get_ydata(), 9)) for line in ax.get_lines())
        want = []
        for method in ("instruct", "full"):
            rows = sim[(sim.task == task) & (sim.model == model) & (sim.method == method)
                       & (sim["size"] == 100) & (sim.metric == "cka")]  # fmt: skip
            want.append(tuple(np.round(rows.groupby("layer")["value"].mean().values, 9)))
        assert ys == sorted(want)
    # the probe panels add the pretrained model, dashed
    assert all(len(ax.get_lines()) == 3 for ax in axes[2::3])
    assert "band = sd over seeds" in fig._suptitle.get_text()


def test_instruction_tuning_figure_matches_sizes_where_it_can():
    from bioprobe.plotting.instruction import matched_sizes

    frame = lambda sizes: pd.DataFrame({"size": sizes})  # noqa: E731
    assert matched_sizes(frame([10, 100]), frame([10, 50, 100])) == (100, 100)
    assert matched_sizes(frame([10, 50]), frame([50, 100])) == (50, 50)
    assert matched_sizes(frame([30]), frame([10, 100])) == (30, 100)  # none shared: each largest
    assert matched_sizes(frame([30]), frame([])) == (30, None)


def test_instruction_figure_needs_instruction_rows():
    from bioprobe.plotting.instruction import build_instruction_tuning

    t = synthetic_tables(SMALL_TASKS, SMALL_MODELS)
    with pytest.raises(ValueError, match="no rows for instruction methods instruct"):
        build_instruction_tuning(t["probes"], t["attention_similarity"],
                                 t["representation_similarity"], ["instruct"])  # fmt: skip


def test_downstream_draws_an_instruction_tuned_model_as_a_prompting_level(small):
    """Its evaluations (method instruct+zero-shot, size: the instruction set's) are a level
    like prompting's, at the largest size tuned, named with it."""
    down = with_prompting(small["downstream"], {"zero-shot": 0.62})
    tuned = down[down["method"] == "zero-shot"]
    down = pd.concat(
        [down, tuned.assign(method="instruct+zero-shot", size=10, value=0.3),
         tuned.assign(method="instruct+zero-shot", size=100, value=0.8)],
        ignore_index=True,
    )  # fmt: skip
    prompting = ["instruct+zero-shot", "zero-shot"]
    fig = F.build_downstream(down, drawn_metrics(SMALL_TASKS), prompting=prompting)
    labels = legend_labels(fig)
    assert "instruct 100% + zero-shot (prompting)" in labels
    assert not [label for label in labels if "10%" in label]
    for ax in visible_axes(fig):
        levels = {round(line.get_ydata()[0], 6) for line in ax.get_lines()
                  if tuple(line.get_xdata()) == (0, 1)}  # fmt: skip
        assert any(abs(y - 0.8) < 1e-9 for y in levels)  # the 100 % model's level
        assert not any(abs(y - 0.3) < 1e-9 for y in levels)  # not the 10 % one's
