"""Data stage: readers for raw corpora, the canonical prepared task, nested subsets, demo data."""

from bioprobe.data.prepare import SPLITS, corpus_text, load_labels, load_split, prepare_task
from bioprobe.data.readers import read_bio_tsv, read_hf, read_pairs_jsonl
from bioprobe.data.subsample import read_subset, subset_order, take, write_subsets

__all__ = [
    "SPLITS",
    "corpus_text",
    "load_labels",
    "load_split",
    "prepare_task",
    "read_bio_tsv",
    "read_hf",
    "read_pairs_jsonl",
    "read_subset",
    "subset_order",
    "take",
    "write_demo_ner",
    "write_demo_nli",
    "write_subsets",
]


def __getattr__(name: str):
    # demo is imported lazily so `python -m bioprobe.data.demo` does not import it twice
    if name in ("write_demo_ner", "write_demo_nli"):
        from bioprobe.data import demo

        return getattr(demo, name)
    raise AttributeError(f"module 'bioprobe.data' has no attribute {name!r}")
