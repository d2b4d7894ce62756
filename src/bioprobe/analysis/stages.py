"""The analysis stages on dumps: probes per layer, attention similarity, representation
similarity: CKA, Procrustes, SVCCA (tidy rows each).

Everything here reads dumps from disk (memory-mapped) and never touches a model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bioprobe import tasks
from bioprobe.analysis.attention import AttentionComparison, EntropyAccumulator, to_tidy_rows
from bioprobe.analysis.dumpio import ATTENTION, open_dump, read_attention, read_meta, units_file
from bioprobe.analysis.repsim import similarity_per_layer
from bioprobe.io import read_json
from bioprobe.settings import CkaSettings, ProbeSettings, ProbeSweepSettings

if TYPE_CHECKING:  # probing imports scikit-learn: the other analysis jobs start faster without it
    from bioprobe.probing import ProbeData

log = logging.getLogger("bioprobe.analysis")


def features_file(dump_dir: Path, split: str, task_type: str, pair_mode: str) -> Path:
    """The dump file of a split's probing units that probes and representation similarity read."""
    return Path(dump_dir) / tasks.get(task_type).features_file(split, pair_mode)


def load_probe_data(
    dump_dir: str | Path, split: str, labels_info: Mapping[str, Any], pair_mode: str
) -> ProbeData:
    """One split of a dump as probing units (words, pairs, sentences: the task type's)."""
    dump_dir = Path(dump_dir)
    task_type = labels_info["task_type"]
    features = open_dump(features_file(dump_dir, split, task_type, pair_mode))
    units = read_json(dump_dir / units_file(split))
    return tasks.get(task_type).probe_data(features, units, labels_info)


def probe_variant(
    dump_dir: str | Path,
    labels_info: Mapping[str, Any],
    probe: ProbeSettings,
    seed: int,
    threads: int = 1,
) -> list[dict]:
    """Rows (layer, probe, target, metric, value) for every configured probe kind that fits
    the task type (a kind that does not is skipped, and the log says so), and with `probe.mdl`
    the MDL rows (probe `mdl`)."""
    task_type = tasks.get(labels_info["task_type"])
    fit = load_probe_data(dump_dir, probe.fit_split, labels_info, probe.pair_mode)
    score = load_probe_data(dump_dir, probe.score_split, labels_info, probe.pair_mode)
    rows: list[dict] = []
    started = time.monotonic()
    for kind in probe.kinds:
        if kind not in task_type.probe_kinds:
            log.warning(
                "probe kind %s does not fit a %s task (it has %s): skipped",
                kind,
                task_type.name,
                ", ".join(task_type.probe_kinds),
            )
            continue
        log.info(
            "probing %d layers with %s (%d fit units)",
            fit.features.shape[0],
            kind,
            fit.features.shape[1],
        )
        rows += task_type.probe(fit, score, kind, probe, seed, threads)
    log.info(
        "%d probe rows: %d layers x targets %s, fitted on %s (%d units), scored on %s (%d units)"
        " in %.1f s",
        len(rows),
        fit.features.shape[0],
        "/".join(probe.targets),
        probe.fit_split,
        fit.features.shape[1],
        probe.score_split,
        score.features.shape[1],
        time.monotonic() - started,
    )
    if probe.mdl:
        rows += _mdl_rows(task_type, fit, score, probe, seed, threads)
    return with_model_layers(rows, dump_dir)


def with_model_layers(rows: list[dict], dump_dir: str | Path) -> list[dict]:
    """Rows whose `layer` is a row of the dumps' first axis, numbered as the model's layers
    (0 = embeddings): the same where the dump kept every layer, else `extract.layers`' kept
    layers (the dump's meta)."""
    layers = read_meta(dump_dir).get("layers")
    if layers is None or layers == list(range(len(layers))):
        return rows
    return [{**r, "layer": layers[r["layer"]]} for r in rows]


def _mdl_rows(task_type, fit, score, probe: ProbeSettings, seed: int, threads: int) -> list[dict]:
    """The MDL rows (`probe.mdl`) of the fit split, where the task type's targets are classes."""
    if not task_type.mdl_probe:
        log.info("probe.mdl: skipped, a %s task's targets are not classes", task_type.name)
        return []
    started = time.monotonic()
    rows = task_type.probe_mdl(fit, score, probe, seed, threads)
    log.info(
        "MDL online codes of %d layers x targets %s on %s (%d units) in %.1f s",
        fit.features.shape[0],
        "/".join(probe.targets),
        probe.fit_split,
        fit.features.shape[1],
        time.monotonic() - started,
    )
    return rows


def sweep_variant(
    dump_dir: str | Path,
    labels_info: Mapping[str, Any],
    probe: ProbeSettings,
    sweep: ProbeSweepSettings,
    seed: int,
    threads: int = 1,
) -> list[dict]:
    """Rows (layer, complexity, setting, target, metric, value) of the linear probe along its
    complexity (`probing.sweep`) on the probes' splits and labels; none, with a log line, for a
    task type whose probe is not a single-label classifier."""
    task_type = tasks.get(labels_info["task_type"])
    if not task_type.sweep_probe:
        log.info("probe_sweep: skipped, a %s task's probe is not one classifier", task_type.name)
        return []
    fit = load_probe_data(dump_dir, probe.fit_split, labels_info, probe.pair_mode)
    score = load_probe_data(dump_dir, probe.score_split, labels_info, probe.pair_mode)
    started = time.monotonic()
    rows = with_model_layers(
        task_type.probe_sweep(fit, score, probe, sweep, seed, threads), dump_dir
    )
    log.info(
        "linear probe of %d layers at C %s (full rank) and rank %s (C %g), fitted on %s (%d"
        " units), scored on %s (%d units) in %.1f s",
        fit.features.shape[0],
        "/".join(f"{c:g}" for c in sweep.C),
        "/".join(map(str, sweep.rank)),
        probe.hyper("linear").get("C", 1.0),
        probe.fit_split,
        fit.features.shape[1],
        probe.score_split,
        score.features.shape[1],
        time.monotonic() - started,
    )
    return rows


def attention_rows(variant_dump: str | Path, pretrained_dump: str | Path | None) -> list[dict]:
    """Per layer and head: entropy of the variant; cosine and JS against pretrained if given."""
    started = time.monotonic()
    rows = _attention_rows(variant_dump, pretrained_dump)
    log.info(
        "%d attention rows (%s) over %d examples in %.1f s",
        len(rows),
        "entropy only" if pretrained_dump is None else "cosine, JS and entropy vs pretrained",
        len(read_meta(variant_dump)["attention"]["lengths"]),
        time.monotonic() - started,
    )
    return rows


def _attention_rows(variant_dump: str | Path, pretrained_dump: str | Path | None) -> list[dict]:
    meta = read_meta(variant_dump)
    info = meta["attention"]
    shape = (meta["n_layers"], meta["num_heads"])
    maps = read_attention(Path(variant_dump) / ATTENTION, info["lengths"], *shape)
    if pretrained_dump is None:
        acc = EntropyAccumulator()
        for m in maps:
            acc.update(m)
        return to_tidy_rows(acc.result(), {})
    ref_meta = read_meta(pretrained_dump)
    if ref_meta["attention"]["lengths"] != info["lengths"]:
        raise ValueError("attention dumps of the two variants cover different examples")
    ref = read_attention(Path(pretrained_dump) / ATTENTION, info["lengths"], *shape)
    acc = AttentionComparison()
    for m, r in zip(maps, ref, strict=True):
        acc.update(m, r)
    result = acc.result()
    result.pop("entropy_reference", None)
    return to_tidy_rows(result, {})


def similarity_rows(
    variant_dump: str | Path, pretrained_dump: str | Path, cka: CkaSettings, task_type: str
) -> list[dict]:
    """Each of `cka.metrics` per layer (0 = embeddings) between the two variants on the same
    units: rows (layer, metric, value)."""
    a = open_dump(features_file(Path(variant_dump), cka.split, task_type, cka.pair_mode))
    b = open_dump(features_file(Path(pretrained_dump), cka.split, task_type, cka.pair_mode))
    if a.shape[:2] != b.shape[:2]:
        raise ValueError(f"dumps differ in shape: {a.shape} vs {b.shape}")
    started = time.monotonic()
    values = similarity_per_layer(a, b, cka.metrics)
    log.info(
        "%s of %d layers over %d %s units (%s split) in %.1f s",
        ", ".join(cka.metrics),
        a.shape[0],
        a.shape[1],
        task_type,
        cka.split,
        time.monotonic() - started,
    )
    for metric, per_layer in values.items():
        log.info("%s per layer: %s", metric, " ".join(f"{v:.3f}" for v in per_layer))
    rows = [
        {"layer": layer, "metric": metric, "value": float(v)}
        for metric, per_layer in values.items()
        for layer, v in enumerate(per_layer)
    ]
    return with_model_layers(rows, variant_dump)
