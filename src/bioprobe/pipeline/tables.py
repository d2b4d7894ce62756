"""Tidy tables: every artifact carries its own key columns, so collecting is a concat."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from bioprobe.io import atomic_path, read_json

KEY = ["task", "model", "method", "size", "seed"]
DOWNSTREAM_COLUMNS = [*KEY, "split", "metric", "value"]


def eval_rows(record: dict) -> list[dict]:
    """One evaluation JSON -> rows (task, model, method, size, seed, split, metric, value)."""
    key = {k: record[k] for k in KEY}
    return [
        {**key, "split": split, "metric": metric, "value": value}
        for split, scores in sorted(record["scores"].items())
        for metric, value in sorted(scores.items())
    ]


def sort_tidy(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Deterministic row order over the key columns (value excluded)."""
    keys = [c for c in columns if c != "value"]
    return df[columns].sort_values(keys, kind="mergesort").reset_index(drop=True)


def collect_downstream(paths: Iterable[str | Path]) -> pd.DataFrame:
    rows = [row for p in paths for row in eval_rows(read_json(p))]
    return sort_tidy(pd.DataFrame(rows, columns=DOWNSTREAM_COLUMNS), DOWNSTREAM_COLUMNS)


def write_tsv(df: pd.DataFrame, path: str | Path) -> None:
    """Tab-separated, fixed float format: identical inputs give identical bytes."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, float_format="%.6g", lineterminator="\n")


PROBE_COLUMNS = [*KEY, "layer", "probe", "target", "metric", "value"]
ATTENTION_COLUMNS = [*KEY, "layer", "head", "metric", "value"]
CKA_COLUMNS = [*KEY, "layer", "value"]
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
