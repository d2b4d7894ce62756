"""Tidy tables: every artifact carries its own key columns, so collecting is a concat."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from bioprobe.io import atomic_path, read_json
from bioprobe.settings import BootstrapSettings

KEY = ["task", "model", "method", "size", "seed"]
#: the percentile bootstrap interval of a test score (bioprobe.bootstrap); NaN on other splits
DOWNSTREAM_INTERVAL = ["ci_low", "ci_high"]
DOWNSTREAM_COLUMNS = [*KEY, "split", "metric", "value", *DOWNSTREAM_INTERVAL]


def eval_rows(record: dict) -> list[dict]:
    """One evaluation JSON -> rows (task, model, method, size, seed, split, metric, value);
    no intervals."""
    key = {k: record[k] for k in KEY}
    return [
        {**key, "split": split, "metric": metric, "value": value}
        for split, scores in sorted(record["scores"].items())
        for metric, value in sorted(scores.items())
    ]


def interval_rows(predictions: dict, bootstrap: BootstrapSettings) -> list[dict]:
    """One predictions file's content -> rows (key, split, metric, ci_low, ci_high) of its
    test scores."""
    from bioprobe.predictions import TEST, score_intervals

    key = {k: predictions[k] for k in KEY}
    return [
        {**key, "split": TEST, "metric": metric, "ci_low": low, "ci_high": high}
        for metric, (low, high) in sorted(score_intervals(predictions, bootstrap).items())
    ]


def sort_tidy(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Deterministic row order over the key columns (value and intervals excluded)."""
    keys = [c for c in columns if c != "value" and c not in DOWNSTREAM_INTERVAL]
    return df[columns].sort_values(keys, kind="mergesort").reset_index(drop=True)


def collect_downstream(
    paths: Iterable[str | Path],
    predictions: Iterable[str | Path] = (),
    bootstrap: BootstrapSettings | None = None,
) -> pd.DataFrame:
    """The evaluation JSONs' scores, each test score with the bootstrap interval computed from
    the runs' `predictions` files (`bootstrap`: default settings; no files: NaN intervals)."""
    rows = [row for p in paths for row in eval_rows(read_json(p))]
    on = [*KEY, "split", "metric"]
    df = pd.DataFrame(rows, columns=[*on, "value"])
    bootstrap = bootstrap or BootstrapSettings()
    cis = [row for p in predictions for row in interval_rows(read_json(p), bootstrap)]
    df = df.merge(pd.DataFrame(cis, columns=[*on, *DOWNSTREAM_INTERVAL]), on=on, how="left")
    return sort_tidy(df, DOWNSTREAM_COLUMNS)


def write_tsv(df: pd.DataFrame, path: str | Path) -> None:
    """Tab-separated, fixed float format: identical inputs give identical bytes."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, float_format="%.6g", lineterminator="\n")


PROBE_COLUMNS = [*KEY, "layer", "probe", "target", "metric", "value"]
#: the linear probe along its complexity (bioprobe.probing.sweep): `complexity` C or rank, its
#: `setting`; `target` task, control or selectivity (task − control of the same metric)
PROBE_SWEEP_COLUMNS = [*KEY, "layer", "complexity", "setting", "target", "metric", "value"]
ATTENTION_COLUMNS = [*KEY, "layer", "head", "metric", "value"]
#: causal erasure (bioprobe.analysis.erasure): `target` task (LEACE) or control (random)
ERASURE_COLUMNS = [*KEY, "layer", "target", "metric", "value"]
#: representation similarity to pretrained per layer: `metric` is cka, procrustes or svcca
REPRESENTATION_SIMILARITY_COLUMNS = [*KEY, "layer", "metric", "value"]
#: the BLURB table (bioprobe.blurb): a score per run across tasks, so no task column. `level`:
#: dataset (`name` = the task, `metric` = its official one), category (the mean over its `n`
#: datasets) or blurb (the mean over `n` categories); `coverage` says what a mean is over.
BLURB_KEY = ["model", "method", "size", "seed"]
BLURB_COLUMNS = [*BLURB_KEY, "level", "category", "name", "metric", "value", "n", "coverage"]


def key_of(wildcards) -> dict:
    """The key columns of an artifact from its Snakemake wildcards."""
    return {
        "task": wildcards.task,
        "model": wildcards.model,
        "method": wildcards.method,
        "size": int(wildcards.size),
        "seed": int(wildcards.seed),
    }


def write_keyed_rows(rows: list[dict], key: dict, columns: list[str], path: str | Path) -> None:
    """Rows of one artifact plus its key columns, as a sorted tidy TSV."""
    df = pd.DataFrame([{**key, **row} for row in rows], columns=columns)
    write_tsv(sort_tidy(df, columns), path)


def concat_tsv(paths: Iterable[str | Path], columns: list[str]) -> pd.DataFrame:
    frames = [pd.read_csv(p, sep="\t") for p in paths]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return sort_tidy(df, columns)
