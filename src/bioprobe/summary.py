"""Summary and correlation tables over the tidy result tables.

Inputs are the collected tidy tables (DataFrames or paths to their TSVs), all keyed by
``task, model, method, size, seed``:

- downstream: ``split, metric, value``
- probes: ``layer, probe, target, metric, value``
- attention similarity: ``layer, head, metric, value``
- representation similarity: ``layer, metric, value`` (metric ``cka``, ``procrustes``, ``svcca``)

`internal_measures` puts, per fine-tuned variant and seed, the downstream main score next to the
internal measures (best-layer and last-layer probe score, mean attention similarity, mean CKA:
the ``cka`` rows of the representation-similarity table);
`correlations` relates them (Spearman and Pearson, per task and model, and per task over its
models pooled as ``model="all models"``; Spearman's p by permutation, and Holm-adjusted over
each task's family of correlations);
`summary_table` averages everything over seeds per task × model × method × size, the test
score's bootstrap interval (mean over seeds) beside its sd over seeds, and where fine-tuning
overtakes the best prompting method; `to_markdown` renders any of them with 3 decimals.

Prompting methods (`prompting`: their ids, kind ``prompting``; size-0 runs, nothing trained)
are no fine-tuned variants: they have no internal measures, so neither `internal_measures`
nor the correlations see them; the summary table has their rows and compares each fine-tuned
method with the best of them.

Metrics are chosen per task, by the caller: `main_metrics` (the downstream score each task is
judged by) and `probe_metrics` (the probe score), each a mapping ``{task: metric}`` or one metric
for every task. The workflow passes each task type's ``main_metric`` and ``probe_metric``
(`bioprobe.tasks`), so nothing here knows a task type.

Missing input: the downstream table is required (a `ValueError` naming it when it is missing or
has no rows for the requested split); the internal-measure tables are optional (``None`` or empty
gives NaN columns), so a partial run still summarises what it has.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from bioprobe.pipeline.grid import PRETRAINED, RANDOM_INIT
from bioprobe.pipeline.tables import (
    ATTENTION_COLUMNS,
    BLURB_COLUMNS,
    DOWNSTREAM_COLUMNS,
    DOWNSTREAM_INTERVAL,
    ERASURE_COLUMNS,
    KEY,
    PROBE_COLUMNS,
    REPRESENTATION_SIMILARITY_COLUMNS,
)
from bioprobe.settings import PermutationSettings

__all__ = [
    "CORRELATION_COLUMNS",
    "KEY",
    "MEASURES",
    "POOLED",
    "SPECIAL_METHODS",
    "check_prompting",
    "correlations",
    "holm",
    "internal_measures",
    "load_table",
    "summary_table",
    "task_metrics",
    "to_markdown",
]

#: A variant (what `summary_table` averages over seeds): the run key without the seed.
GROUP = [c for c in KEY if c != "seed"]
#: Methods that are not fine-tuning: the published model and its random-weights control.
#: (Prompting methods are not fine-tuning either; their ids come from the config, `prompting`.)
SPECIAL_METHODS = (PRETRAINED, RANDOM_INIT)
#: Metrics per task: a mapping {task: metric}, or one metric for every task.
TaskMetrics = str | Mapping[str, str]
#: The internal measures `internal_measures` computes, with their axis labels.
MEASURES = {
    "probe_best": "best-layer probe score",
    "probe_last": "last-layer probe score",
    "attention_similarity": "mean attention similarity",
    "cka": "mean CKA",
    "procrustes": "mean Procrustes distance",
    "svcca": "mean SVCCA",
}
#: The representation-similarity measures (`metric` of that table) among `MEASURES`: each is a
#: run's mean over layers, NaN where `cka.metrics` left it out.
SIMILARITY_MEASURES = ("cka", "procrustes", "svcca")

# the collectors' column lists (bioprobe.pipeline.tables): what each tidy table must have
_REQUIRED = {
    "downstream": [c for c in DOWNSTREAM_COLUMNS if c not in DOWNSTREAM_INTERVAL],
    "probes": PROBE_COLUMNS,
    "attention_similarity": ATTENTION_COLUMNS,
    "representation_similarity": REPRESENTATION_SIMILARITY_COLUMNS,
    "blurb": BLURB_COLUMNS,
    "erasure": ERASURE_COLUMNS,
}


def load_table(
    table: pd.DataFrame | str | Path | None, name: str, *, required: bool = True
) -> pd.DataFrame | None:
    """A tidy table as a DataFrame (read from a TSV path if needed), its columns checked.

    `name` is one of ``downstream``, ``probes``, ``attention_similarity``,
    ``representation_similarity``, ``blurb``.
    A missing (``None``) or empty table raises a `ValueError` naming it when `required`, else
    gives None.
    """
    if table is None:
        if required:
            raise ValueError(f"the {name} table is missing (got None)")
        return None
    df = pd.read_csv(table, sep="\t") if isinstance(table, (str, Path)) else table
    if df.empty:
        if required:
            raise ValueError(f"the {name} table is empty")
        return None
    missing = [c for c in _REQUIRED[name] if c not in df.columns]
    if missing:
        raise ValueError(f"the {name} table lacks columns {missing} (has {list(df.columns)})")
    if name == "downstream":  # a table without intervals (or from before them): NaN
        df = df.assign(**{c: df[c] if c in df.columns else np.nan for c in DOWNSTREAM_INTERVAL})
    return df


def task_metrics(metrics: TaskMetrics, tasks: Iterable[str], what: str) -> dict[str, str]:
    """`metrics` for each of `tasks`: one metric for all, or looked up in a mapping, where a
    task it lacks is a ValueError naming `what` (the argument) and the task."""
    tasks = sorted(set(tasks))
    if isinstance(metrics, str):
        return dict.fromkeys(tasks, metrics)
    missing = [t for t in tasks if t not in metrics]
    if missing:
        raise ValueError(f"{what} gives no metric for task(s) {', '.join(missing)}")
    return {t: metrics[t] for t in tasks}


def _is_finetuned(method: pd.Series, prompting: Sequence[str] = ()) -> pd.Series:
    return ~method.isin([*SPECIAL_METHODS, *prompting])


def check_prompting(table: pd.DataFrame, prompting: Sequence[str], name: str) -> None:
    """A ValueError naming the method where `table` has size-0 rows of a method that is
    neither pretrained, random-init nor among `prompting`: fine-tuning never has size 0, so
    it is a prompting method the caller did not name (it would count as fine-tuning)."""
    size0 = set(table.loc[table["size"] == 0, "method"])
    unnamed = sorted(size0 - {*SPECIAL_METHODS, *prompting})
    if unnamed:
        raise ValueError(
            f"the {name} table has size-0 rows of method(s) {', '.join(unnamed)}: a prompting "
            "method? pass its id in prompting= (fine-tuned runs have sizes above 0)"
        )


def _downstream_main(
    downstream: pd.DataFrame, split: str, main_metrics: TaskMetrics
) -> pd.DataFrame:
    """Per key: the task's main metric on `split`: KEY + ``metric``, ``downstream`` and its
    interval ``ci_low``, ``ci_high``."""
    df = downstream[downstream["split"] == split]
    if df.empty:
        splits = sorted(downstream["split"].unique())
        raise ValueError(f"the downstream table has no rows for split {split!r} (has {splits})")
    chosen = task_metrics(main_metrics, df["task"], "main_metrics")
    for task, metric in chosen.items():
        if not ((df["task"] == task) & (df["metric"] == metric)).any():
            has = sorted(df.loc[df["task"] == task, "metric"].unique())
            raise ValueError(
                f"the downstream table has no {metric!r} rows for task {task!r} on split"
                f" {split!r} (it has {', '.join(has)})"
            )
    df = df[df["metric"] == df["task"].map(chosen)]
    out = df.groupby(KEY, as_index=False, sort=True).agg(
        metric=("metric", "first"),
        downstream=("value", "mean"),
        ci_low=("ci_low", "mean"),
        ci_high=("ci_high", "mean"),
    )
    return out


def _probe_rows(
    probes: pd.DataFrame | None, probe: str, metrics: TaskMetrics, target: str = "task"
) -> pd.DataFrame | None:
    """The rows of `probe` and `target` in each task's metric; None when there are none."""
    if probes is None:
        return None
    chosen = task_metrics(metrics, probes["task"], "probe_metrics")
    df = probes[
        (probes["probe"] == probe)
        & (probes["metric"] == probes["task"].map(chosen))
        & (probes["target"] == target)
    ]
    return None if df.empty else df


def _selectivity_metrics(probes: pd.DataFrame, metrics: TaskMetrics) -> dict[str, str]:
    """Per task, the selectivity that matches its probe metric (``selectivity_<metric>`` where
    the table has it, else the accuracy-based ``selectivity``)."""
    chosen = task_metrics(metrics, probes["task"], "probe_metrics")
    present = set(zip(probes["task"], probes["metric"], strict=True))
    return {
        task: name if (task, name := f"selectivity_{metric}") in present else "selectivity"
        for task, metric in chosen.items()
    }


def _load_inputs(downstream, probes, attention, similarity) -> tuple[pd.DataFrame | None, ...]:
    """The four tidy tables, checked: downstream required, the internal measures optional."""
    return (
        load_table(downstream, "downstream"),
        load_table(probes, "probes", required=False),
        load_table(attention, "attention_similarity", required=False),
        load_table(similarity, "representation_similarity", required=False),
    )


def _layer_curve(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean ``value`` per `keys` × layer (over seeds too when `keys` lacks ``seed``)."""
    return rows.groupby([*keys, "layer"], as_index=False, sort=True)["value"].mean()


def _peak(curve: pd.DataFrame, keys: list[str], by: str = "value") -> pd.DataFrame:
    """The row of each `keys` group where `by` is largest (first such layer on ties)."""
    return curve.loc[curve.groupby(keys, sort=True)[by].idxmax()]


def _run_means(
    table: pd.DataFrame | None, col: str, metric: str | None = None
) -> pd.DataFrame | None:
    """Per run (KEY): mean ``value`` over layers (and heads) as column `col`, optionally of one
    `metric`; None without the table."""
    if table is None:
        return None
    if metric is not None:
        table = table[table["metric"] == metric]
    means = table.groupby(KEY, as_index=False, sort=True)["value"].mean()
    return means.rename(columns={"value": col})


def _merge_measure(
    out: pd.DataFrame, measure: pd.DataFrame | None, col: str, on: list[str]
) -> pd.DataFrame:
    """`out` with column `col` from `measure` (left join on `on`), all NaN without it."""
    if measure is None:
        return out.assign(**{col: np.nan})
    return out.merge(measure, on=on, how="left")


def _scored_runs(
    down: pd.DataFrame,
    split: str,
    main_metrics: TaskMetrics,
    include_pretrained: bool,
    prompting: Sequence[str],
) -> pd.DataFrame:
    """The fine-tuned runs (and the pretrained ones if asked) with their main downstream score;
    prompting runs are left out."""
    out = _downstream_main(down, split, main_metrics)
    keep = _is_finetuned(out["method"], prompting)
    if include_pretrained:
        keep |= out["method"] == PRETRAINED
    return out[keep].reset_index(drop=True)


def _add_probe_scores(
    out: pd.DataFrame, probes: pd.DataFrame | None, probe: str, metric: TaskMetrics
) -> pd.DataFrame:
    """Per run: ``probe_best`` (peak of that seed's curve), its layer, ``probe_last``."""
    p = _probe_rows(probes, probe, metric)
    if p is None:
        return out.assign(probe_best=np.nan, probe_best_layer=np.nan, probe_last=np.nan)
    curves = _layer_curve(p, KEY)
    best = _peak(curves, KEY).rename(columns={"value": "probe_best", "layer": "probe_best_layer"})
    last = _peak(curves, KEY, by="layer")
    last = last.rename(columns={"value": "probe_last"}).drop(columns="layer")
    return out.merge(best, on=KEY, how="left").merge(last, on=KEY, how="left")


def internal_measures(
    downstream: pd.DataFrame | str | Path,
    probes: pd.DataFrame | str | Path | None = None,
    attention: pd.DataFrame | str | Path | None = None,
    similarity: pd.DataFrame | str | Path | None = None,
    *,
    main_metrics: TaskMetrics,
    split: str = "test",
    probe: str = "linear",
    probe_metrics: TaskMetrics = "macro_f1",
    attention_metric: str = "cosine",
    include_pretrained: bool = False,
    prompting: Sequence[str] = (),
) -> pd.DataFrame:
    """Per (task, model, method, size, seed): downstream main score and the internal measures.

    Columns: the key, ``metric`` (the task's main downstream metric, from `main_metrics`),
    ``downstream`` (its value on `split`), ``probe_best`` (the best layer's probe score, that
    seed's curve), ``probe_best_layer``, ``probe_last`` (the last layer's), both for `probe`,
    target ``task`` and the task's metric in `probe_metrics`; ``attention_similarity`` (mean of
    `attention_metric` over layers and heads); ``cka``, ``procrustes`` and ``svcca`` (each the
    mean over layers 0..L of that metric's rows of the representation-similarity table
    `similarity`). A measure
    whose table is missing is NaN. Rows are the fine-tuned variants (the pretrained model too with
    `include_pretrained`: its head is untrained, and it has no attention similarity or CKA);
    the runs of `prompting` methods (their ids) are left out, so `correlations` never sees them.
    """
    down, probes, attention, similarity = _load_inputs(downstream, probes, attention, similarity)
    check_prompting(down, prompting, "downstream")
    out = _scored_runs(down, split, main_metrics, include_pretrained, prompting)
    out = _add_probe_scores(out, probes, probe, probe_metrics)
    attention_means = _run_means(attention, "attention_similarity", attention_metric)
    out = _merge_measure(out, attention_means, "attention_similarity", on=KEY)
    for measure in SIMILARITY_MEASURES:
        out = _merge_measure(out, _run_means(similarity, measure, measure), measure, on=KEY)

    cols = [*KEY, "metric", "downstream", "probe_best_layer", *MEASURES]
    out = out[cols].sort_values(KEY, kind="mergesort").reset_index(drop=True)
    out.attrs.update(
        split=split,
        probe=probe,
        probe_metrics=task_metrics(probe_metrics, out["task"], "probe_metrics"),
        attention_metric=attention_metric,
    )
    return out


def _usable(x: np.ndarray, y: np.ndarray) -> bool:
    """At least 3 pairs and neither side constant: a correlation is defined."""
    return len(x) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0


#: `statistics.permutation`'s defaults (exact up to 8 points), for calls from a notebook
DEFAULT_PERMUTATION = PermutationSettings()


def spearman_permutation_p(
    x: np.ndarray, y: np.ndarray, settings: PermutationSettings = DEFAULT_PERMUTATION
) -> float:
    """Two-sided permutation p of Spearman's ρ: the share of pairings of the values whose
    |ρ| is at least the observed one; every pairing while n! <= `settings.resamples` (exact),
    else that many seeded random pairings. scipy's t approximation is wrong for few points:
    it says p = 0 for a perfect ρ on 3 points, where the exact p is 1/3."""
    ry = stats.rankdata(y)
    ry = (ry - ry.mean()) / np.linalg.norm(ry - ry.mean())

    def abs_rho(rx: np.ndarray, axis: int = -1) -> np.ndarray:
        rx = rx - rx.mean(axis=axis, keepdims=True)
        return np.abs(rx @ ry) / np.linalg.norm(rx, axis=axis)

    result = stats.permutation_test(
        (stats.rankdata(x),),
        abs_rho,
        permutation_type="pairings",
        vectorized=True,
        n_resamples=settings.resamples,
        alternative="greater",
        rng=np.random.default_rng(settings.seed),
    )
    return float(result.pvalue)


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (NaN stays NaN and does not count
    in the family): the k-th smallest of m is multiplied by m - k + 1, kept monotone, capped
    at 1. It controls the family-wise error rate under any dependence between the tests."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out


def correlation(
    x: Sequence[float],
    y: Sequence[float],
    permutation: PermutationSettings = DEFAULT_PERMUTATION,
) -> dict[str, float | int]:
    """Spearman (with its permutation p, `spearman_permutation_p`) and Pearson (scipy's p) of
    the finite pairs; NaN where n < 3 or either side is constant."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    res: dict[str, float | int] = dict.fromkeys(
        ("spearman_rho", "spearman_p_permutation", "pearson_r", "pearson_p"), math.nan
    )
    res["n"] = len(x)
    if _usable(x, y):
        r = stats.pearsonr(x, y)
        res.update(
            spearman_rho=float(stats.spearmanr(x, y).statistic),
            spearman_p_permutation=spearman_permutation_p(x, y, permutation),
            pearson_r=float(r.statistic),
            pearson_p=float(r.pvalue),
        )
    return res


#: the `model` value of a correlation over all of a task's models together
POOLED = "all models"
CORRELATION_COLUMNS = [
    "measure",
    "task",
    "model",
    "spearman_rho",
    "spearman_p_permutation",
    "spearman_p_holm",
    "pearson_r",
    "pearson_p",
    "n",
]


def correlations(
    measures_df: pd.DataFrame,
    measures: Sequence[str] | None = None,
    *,
    target: str = "downstream",
    permutation: PermutationSettings = DEFAULT_PERMUTATION,
) -> pd.DataFrame:
    """Correlation of `target` with each measure, per task and model, and per task over its
    models pooled (``model="all models"``).

    Tasks are never pooled: they score on different metrics. A pooled row mixes models whose
    scores and measures differ in level, so it says more about which model is better than
    about the measure; the per-model rows are the ones to read. Columns
    `CORRELATION_COLUMNS`; `n` counts the rows where both are finite; the statistics are NaN
    for n < 3 or constant input. ``spearman_p_holm`` adjusts the permutation p-values for the
    family of a task's correlations (every measure × model, pooled rows included: a task's row
    of the correlations figure), `holm`. `measures` defaults to the `MEASURES` columns present.
    """
    if measures is None:
        measures = [m for m in MEASURES if m in measures_df.columns]
    missing = [c for c in [target, "task", "model", *measures] if c not in measures_df.columns]
    if missing:
        raise ValueError(f"the measures table lacks columns {missing}")
    rows = []
    for measure in measures:
        for task, by_task in measures_df.groupby("task", sort=True):
            groups = [*by_task.groupby("model", sort=True), (POOLED, by_task)]
            for model, g in groups:
                stats_ = correlation(g[measure], g[target], permutation)
                rows.append({"measure": measure, "task": task, "model": model, **stats_})
    out = pd.DataFrame(rows, columns=CORRELATION_COLUMNS)
    for _, family in out.groupby("task", sort=False):
        out.loc[family.index, "spearman_p_holm"] = holm(family["spearman_p_permutation"])
    return out


def _variants(*tables: pd.DataFrame | None) -> pd.DataFrame:
    """Every variant (GROUP) any table has: random-init has no downstream scores."""
    return pd.concat(
        [t[GROUP] for t in tables if t is not None], ignore_index=True
    ).drop_duplicates()


def _seed_mean_scores(down: pd.DataFrame, split: str, main_metrics: TaskMetrics) -> pd.DataFrame:
    """Per variant: main metric, mean of its score over seeds and the mean of the seeds'
    bootstrap interval bounds, sample sd over seeds, number of seeds."""
    scores = _downstream_main(down, split, main_metrics)
    return scores.groupby(GROUP, as_index=False, sort=True).agg(
        metric=("metric", "first"),
        score_mean=("downstream", "mean"),
        ci_low=("ci_low", "mean"),
        ci_high=("ci_high", "mean"),
        score_std=("downstream", "std"),
        n_seeds=("seed", "nunique"),
    )


def _add_best_layer(
    out: pd.DataFrame, probes: pd.DataFrame | None, probe: str, metric: TaskMetrics
) -> pd.DataFrame:
    """Per variant: where the seed-mean probe curve peaks (``best_layer``, ``probe_score``)
    and the seed-mean selectivity at that layer."""
    p = _probe_rows(probes, probe, metric)
    if p is None:
        return out.assign(best_layer=np.nan, probe_score=np.nan, selectivity=np.nan)
    best = _peak(_layer_curve(p, GROUP), GROUP)
    best = best.rename(columns={"layer": "best_layer", "value": "probe_score"})
    sel = _probe_rows(probes, probe, _selectivity_metrics(probes, metric))
    if sel is not None:
        sel = _layer_curve(sel, GROUP)
        sel = sel.rename(columns={"layer": "best_layer", "value": "selectivity"})
        best = best.merge(sel, on=[*GROUP, "best_layer"], how="left")
    else:
        best["selectivity"] = np.nan
    return out.merge(best, on=GROUP, how="left")


def _variant_means(runs: pd.DataFrame | None, col: str) -> pd.DataFrame | None:
    """Per variant: the mean over seeds of per-run means, so every seed weighs the same."""
    if runs is None:
        return None
    return runs.groupby(GROUP, as_index=False, sort=True)[col].mean()


#: the summary's comparison with prompting, present where the grid has prompting methods
PROMPTING_COLUMNS = ["best_prompting", "prompting_score", "beats_prompting_from"]
_SUMMARY_COLUMNS = [
    *GROUP,
    "metric",
    "score_mean",
    "ci_low",
    "ci_high",
    "score_std",
    "n_seeds",
    "best_layer",
    "probe_score",
    "selectivity",
    "attention_similarity",
    *SIMILARITY_MEASURES,
    *PROMPTING_COLUMNS,
]


def _add_prompting_comparison(out: pd.DataFrame, prompting: Sequence[str]) -> pd.DataFrame:
    """Per task × model, the prompting method with the highest seed-mean score
    (``best_prompting``, the first id on ties) and that score (``prompting_score``); on the
    rows of each fine-tuned method, the smallest size whose seed-mean score exceeds it
    (``beats_prompting_from``), NA where none does or nothing was prompted."""
    prompted = out[out["method"].isin(prompting) & out["score_mean"].notna()]
    best = prompted.sort_values(["score_mean", "method"], ascending=[False, True], kind="mergesort")
    best = best.drop_duplicates(["task", "model"])[["task", "model", "method", "score_mean"]]
    best = best.rename(columns={"method": "best_prompting", "score_mean": "prompting_score"})
    out = out.merge(best, on=["task", "model"], how="left")
    ahead = out[
        _is_finetuned(out["method"], prompting) & (out["score_mean"] > out["prompting_score"])
    ]
    first = ahead.groupby(["task", "model", "method"], as_index=False)["size"].min()
    first = first.rename(columns={"size": "beats_prompting_from"})
    out = out.merge(first, on=["task", "model", "method"], how="left")
    out["beats_prompting_from"] = out["beats_prompting_from"].astype("Int64")
    return out


def summary_table(
    downstream: pd.DataFrame | str | Path,
    probes: pd.DataFrame | str | Path | None = None,
    attention: pd.DataFrame | str | Path | None = None,
    similarity: pd.DataFrame | str | Path | None = None,
    *,
    main_metrics: TaskMetrics,
    split: str = "test",
    probe: str = "linear",
    probe_metrics: TaskMetrics = "macro_f1",
    attention_metric: str = "cosine",
    prompting: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per task × model × method × size, everything averaged over seeds.

    Columns: ``task, model, method, size, metric`` (the task's main downstream metric, from
    `main_metrics`), ``score_mean``, ``ci_low`` and ``ci_high`` (the means over seeds of each
    seed's bootstrap interval over test examples: the uncertainty of one run's score from the
    finite test set), ``score_std`` (sample sd over seeds, NaN for one seed: the spread from
    training randomness), ``n_seeds``; ``best_layer`` (the layer where the seed-mean probe
    curve of the task's metric in `probe_metrics` peaks), ``probe_score`` (that mean),
    ``selectivity`` (seed-mean selectivity at that layer: ``selectivity_<probe metric>``
    where the table has it, else the accuracy-based ``selectivity``); ``attention_similarity``
    (mean of `attention_metric` over layers, heads and seeds); ``cka``, ``procrustes``,
    ``svcca`` (each measure's mean over layers and seeds). Variants without downstream rows
    (random-init) keep NaN scores.

    Against prompting (`prompting`: the prompting method ids; their rows are size 0 and have
    scores only), on every row of a task × model: ``best_prompting`` (the prompting method with
    the highest ``score_mean`` there) and ``prompting_score`` (that ``score_mean``); on the
    rows of each fine-tuned method, ``beats_prompting_from``: the smallest size at which that
    method's ``score_mean`` exceeds ``prompting_score`` (the data fine-tuning needs to beat
    prompting). Without `prompting` the three columns are left out; with it, all three are NA
    where the task × model has no prompting run, and
    ``beats_prompting_from`` also where the method never exceeds it and on the rows of
    pretrained, random-init and prompting.
    """
    down, probes, attention, similarity = _load_inputs(downstream, probes, attention, similarity)
    check_prompting(down, prompting, "downstream")
    out = _variants(down, probes, attention, similarity)
    out = out.merge(_seed_mean_scores(down, split, main_metrics), on=GROUP, how="left")
    out = _add_best_layer(out, probes, probe, probe_metrics)
    runs = {"attention_similarity": _run_means(attention, "attention_similarity", attention_metric)}
    runs |= {m: _run_means(similarity, m, m) for m in SIMILARITY_MEASURES}
    for col, means in runs.items():
        out = _merge_measure(out, _variant_means(means, col), col, on=GROUP)
    out = _add_prompting_comparison(out, prompting)
    # a grid without prompting methods has nothing to compare with: no three empty columns
    columns = _SUMMARY_COLUMNS if prompting else _SUMMARY_COLUMNS[: -len(PROMPTING_COLUMNS)]
    out = out[columns].sort_values(GROUP, kind="mergesort").reset_index(drop=True)
    out["n_seeds"] = out["n_seeds"].astype("Int64")
    out["best_layer"] = out["best_layer"].astype("Int64")
    return out


def to_markdown(df: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table, floats with `digits` decimals, NaN as empty cells."""
    cells = df.astype(object).where(df.notna(), None)  # NaN and pd.NA alike -> empty cell
    return cells.to_markdown(index=False, floatfmt=f".{digits}f", missingval="") + "\n"
