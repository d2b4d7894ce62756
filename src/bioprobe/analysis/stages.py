"""The analysis stages on dumps: probes per layer, attention similarity, CKA (tidy rows each).

Everything here reads dumps from disk (memory-mapped) and never touches a model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bioprobe.analysis.attention import AttentionComparison, EntropyAccumulator, to_tidy_rows
from bioprobe.analysis.cka import cka_per_layer
from bioprobe.analysis.dumpio import open_dump, read_attention
from bioprobe.io import read_json

if TYPE_CHECKING:  # probing imports scikit-learn: attention and CKA jobs start faster without it
    from bioprobe.probing import ProbeData

log = logging.getLogger("bioprobe.analysis")


def features_file(dump_dir: Path, split: str, task_type: str, pair_mode: str) -> Path:
    suffix = "separate" if task_type == "pair" and pair_mode == "separate" else "hidden"
    return Path(dump_dir) / f"{split}.{suffix}.npy"


def load_probe_data(
    dump_dir: str | Path, split: str, labels_info: Mapping[str, Any], pair_mode: str
) -> ProbeData:
    """One split of a dump as probing units (words for NER, pairs for pair tasks)."""
    dump_dir = Path(dump_dir)
    task_type = labels_info["task_type"]
    units = read_json(dump_dir / f"{split}.units.json")
    names = list(labels_info["labels"])
    index = {name: i for i, name in enumerate(names)}
    from bioprobe.probing import ProbeData

    return ProbeData(
        features=open_dump(features_file(dump_dir, split, task_type, pair_mode)),
        labels=np.array([index[label] for label in units["labels"]], dtype=np.int64),
        label_names=names,
        sentence_lengths=units.get("sentence_lengths"),
        word_types=units.get("word_types"),
    )


def probe_variant(
    dump_dir: str | Path,
    labels_info: Mapping[str, Any],
    probe_cfg: Mapping[str, Any],
    seed: int,
    threads: int = 1,
) -> list[dict]:
    """Rows (layer, probe, target, metric, value) for every configured probe kind."""
    from bioprobe.probing import probe_all_layers

    fit = load_probe_data(dump_dir, probe_cfg["fit_split"], labels_info, probe_cfg["pair_mode"])
    score = load_probe_data(dump_dir, probe_cfg["score_split"], labels_info, probe_cfg["pair_mode"])
    targets = ("task", "control") if probe_cfg["control"] else ("task",)
    rows = []
    for kind in probe_cfg["kinds"]:
        log.info(
            "probing %d layers with %s (%d fit units)",
            fit.features.shape[0],
            kind,
            fit.features.shape[1],
        )
        rows += probe_all_layers(
            fit,
            score,
            kind=kind,
            hyper=probe_cfg.get(kind, {}),
            targets=targets,
            label_mode=probe_cfg["label_mode"],
            seed=seed,
            n_jobs=threads,
        )
    return rows


def attention_rows(variant_dump: str | Path, pretrained_dump: str | Path | None) -> list[dict]:
    """Per layer and head: entropy of the variant; cosine and JS against pretrained if given."""
    meta = read_json(Path(variant_dump) / "meta.json")
    info = meta["attention"]
    shape = (meta["n_layers"], meta["num_heads"])
    maps = read_attention(Path(variant_dump) / "attention.npy", info["lengths"], *shape)
    if pretrained_dump is None:
        acc = EntropyAccumulator()
        for m in maps:
            acc.update(m)
        return to_tidy_rows(acc.result(), {})
    ref_meta = read_json(Path(pretrained_dump) / "meta.json")
    if ref_meta["attention"]["lengths"] != info["lengths"]:
        raise ValueError("attention dumps of the two variants cover different examples")
    ref = read_attention(Path(pretrained_dump) / "attention.npy", info["lengths"], *shape)
    acc = AttentionComparison()
    for m, r in zip(maps, ref, strict=True):
        acc.update(m, r)
    result = acc.result()
    result.pop("entropy_reference", None)
    return to_tidy_rows(result, {})


def cka_rows(
    variant_dump: str | Path,
    pretrained_dump: str | Path,
    split: str,
    task_type: str,
    pair_mode: str,
) -> list[dict]:
    """Linear CKA per layer (0 = embeddings) between the two variants on the same units."""
    a = open_dump(features_file(Path(variant_dump), split, task_type, pair_mode))
    b = open_dump(features_file(Path(pretrained_dump), split, task_type, pair_mode))
    if a.shape[:2] != b.shape[:2]:
        raise ValueError(f"dumps differ in shape: {a.shape} vs {b.shape}")
    values = cka_per_layer(a, b)
    return [{"layer": layer, "value": float(v)} for layer, v in enumerate(values)]
