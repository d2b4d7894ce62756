"""Zero- and few-shot prompting through `snakemake` on the task types beyond NER and pairs
(relation, PICO, similarity, multi-label), for a scratch LLaMA (decoder) and a scratch T5
(encoder-decoder): a grid of prompting methods alone plans evaluations only, and each run's
rows land in the downstream table. NER and pairs are prompted beside fine-tuning in
tests/workflow/test_llm_families.py; each piece is checked at library level in
tests/unit/test_prompting_*.py.

Tiny models with random weights: the scores are chance-level; what is tested is that every
task type's prompts run and land where the tables read them.
"""

import json

import pandas as pd
import pytest

from bioprobe.data import demo

from .conftest import LLM_MODELS, PROMPTING, snakemake, write_config

pytestmark = pytest.mark.workflow

MODELS = LLM_MODELS
#: a task of each type but ner and pair: (demo corpus, type, its sizes)
DOCUMENTS = {"n_train": 8, "n_validation": 3, "n_test": 3}  # PICO and HoC count documents
SENTENCES = {"n_train": 40, "n_validation": 16, "n_test": 16}
TASKS = {
    "rel": ("relation", "relation", SENTENCES),
    "pico": ("pico", "pico", DOCUMENTS),
    "sim": ("similarity", "similarity", SENTENCES),
    "hoc": ("multilabel", "multilabel", DOCUMENTS),
}
CONFIG = {
    "tasks": {task: demo.task_config(kind, f"raw/{task}") for task, (_, kind, _) in TASKS.items()},
    "models": MODELS,
    "methods": PROMPTING,
    "sizes": [100],  # no size 0 and no training method: nothing but the prompts runs
    "seeds": [1],
    "random_init": False,
    "training": {"max_length": 64},
}
CONFIG["tasks"]["sim"]["prompt"] = {"instruction": "Score the similarity (0-4)."}


@pytest.fixture(scope="module")
def prompt_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("prompting-run")
    for task, (corpus, _, sizes) in TASKS.items():
        demo.write_corpus(corpus, workdir / "raw" / task, **sizes)
    write_config(workdir, CONFIG)
    target = "results/tables/downstream.tsv"
    dry = snakemake(workdir, "-n", target, "--quiet", "rules")
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    result = snakemake(workdir, "--cores", "2", target)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir, dry.stdout


def test_a_prompting_grid_plans_evaluations_only(prompt_run):
    """One prompt job per task x model x prompting method x seed, and nothing trained,
    dumped or probed."""
    _, plan = prompt_run
    counts = {
        line.split()[0]: int(line.split()[1])
        for line in plan.splitlines()
        if len(line.split()) == 2 and line.split()[1].isdigit()
    }
    assert counts["prompt"] == len(TASKS) * len(MODELS) * len(PROMPTING)
    assert not {"finetune", "evaluate", "extract", "probe"} & set(counts)


def test_every_task_type_has_prompting_rows(prompt_run):
    workdir, _ = prompt_run
    table = pd.read_csv(workdir / "results" / "tables" / "downstream.tsv", sep="\t")
    test = table[table.split == "test"]
    main = {"rel": "positive_micro_f1", "pico": "word_macro_f1", "sim": "pearson"}
    main["hoc"] = "document_micro_f1"
    for task in TASKS:
        for model in MODELS:
            rows = test[(test.task == task) & (test.model == model)]
            assert set(rows.method) == set(PROMPTING), (task, model)
            assert set(rows["size"]) == {0}
            assert main[task] in set(rows.metric), (task, model)
    for model in MODELS:
        sim = json.loads(
            (workdir / f"results/eval/sim/{model}/few-shot-2/size0/seed1.json").read_text()
        )
        assert sim["prompting"]["scoring"] == "rank classification"
        assert sim["prompting"]["splits"]["test"]["questions"] == SENTENCES["n_test"]
        hoc = json.loads(
            (workdir / f"results/eval/hoc/{model}/zero-shot/size0/seed1.json").read_text()
        )
        labels = hoc["prompting"]["splits"]["test"]
        assert labels["questions"] % labels["examples"] == 0, "a question per label and text"
        assert labels["questions"] > labels["examples"]
        pico = json.loads(
            (workdir / f"results/eval/pico/{model}/few-shot-2/size0/seed1.json").read_text()
        )
        assert pico["prompting"]["scoring"] == "generation"
